"""TEMP"""

from landslide_tf.inference.export import main  # noqa: F401
