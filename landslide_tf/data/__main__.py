"""``python -m landslide_tf.data``: synth, check, chip (see ``landslide_tf.cli.data``)."""

from landslide_tf.cli.data import main

if __name__ == "__main__":
    raise SystemExit(main())
