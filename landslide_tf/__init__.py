"""landslide_tf: U-Net-family landslide segmentation (Keras 3 / TensorFlow).

Reference implementation of Hegde et al., "A comparative study of loss functions and
attention mechanisms in landslide semantic segmentation using U-Net" (Sci. Rep. 16:2102).
"""

__version__ = "0.1.0"

# Register the custom layers and losses with Keras on import, so that
# ``keras.saving.load_model("best.keras")`` works after a plain ``import landslide_tf``.
from landslide_tf import layers as _layers  # noqa: E402, F401
from landslide_tf import losses as _losses  # noqa: E402, F401
