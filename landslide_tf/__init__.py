"""landslide_tf: U-Net-family landslide segmentation (Keras 3 / TensorFlow).

Reference implementation of Hegde et al., "A comparative study of loss functions and
attention mechanisms in landslide semantic segmentation using U-Net" (Sci. Rep. 16:2102).

Importing the package does not import TensorFlow (``python -m landslide_tf.data check`` and
every ``--help`` start without it). The custom layers and losses register with Keras when
``landslide_tf.models`` (or ``landslide_tf.models.layers`` / ``landslide_tf.losses``) is imported;
every loader of this package imports them, and
``import landslide_tf.models; keras.saving.load_model("best.keras")`` works.
"""

__version__ = "0.1.0"

from landslide_tf import console  # noqa: E402

if console.wanted():  # a ``python -m landslide_tf.X`` command: keep TensorFlow's noise out
    console.install()
