"""landslide_tf: U-Net-family landslide segmentation (Keras 3 / TensorFlow).

Reference implementation of Hegde et al., "A comparative study of loss functions and
attention mechanisms in landslide semantic segmentation using U-Net" (Sci. Rep. 16:2102).
"""

__version__ = "0.1.0"
