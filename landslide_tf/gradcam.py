"""``python -m landslide_tf.gradcam``: GradCAM maps of a run (see ``landslide_tf.cli.gradcam``)."""

from landslide_tf.cli.gradcam import main

if __name__ == "__main__":
    raise SystemExit(main())
