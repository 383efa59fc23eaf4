"""TEMP"""

from landslide_tf.inference.predict import main  # noqa: F401
