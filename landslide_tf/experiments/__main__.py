"""``python -m landslide_tf.experiments``: see ``landslide_tf.experiments.cli``."""

from landslide_tf.experiments.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
