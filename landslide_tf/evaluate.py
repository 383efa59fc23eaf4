"""``python -m landslide_tf.evaluate``: score a run on a split (see ``landslide_tf.cli.evaluate``)."""

from landslide_tf.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
