"""``python -m landslide_tf.experiments``: see ``landslide_tf.cli.experiments``."""

from landslide_tf.cli.experiments import main

if __name__ == "__main__":
    raise SystemExit(main())
