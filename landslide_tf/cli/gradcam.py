"""TEMP"""

from landslide_tf.explain.explain import main  # noqa: F401
