"""TEMP"""

from landslide_tf.training.train import main  # noqa: F401
