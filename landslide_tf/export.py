"""``python -m landslide_tf.export``: write a run as a SavedModel that plain TensorFlow loads (see ``landslide_tf.cli.export``)."""

from landslide_tf.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
