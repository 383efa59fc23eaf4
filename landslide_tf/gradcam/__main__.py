"""``python -m landslide_tf.gradcam``: see ``landslide_tf.gradcam``."""

from landslide_tf.gradcam.explain import main

if __name__ == "__main__":
    raise SystemExit(main())
