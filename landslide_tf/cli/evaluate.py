"""TEMP"""

from landslide_tf.evaluation.evaluate import main  # noqa: F401
