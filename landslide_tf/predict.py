"""``python -m landslide_tf.predict``: landslide maps from a model, for tiles and whole scenes (see ``landslide_tf.cli.predict``)."""

from landslide_tf.cli.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
