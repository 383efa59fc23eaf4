"""``python -m landslide_tf.train``: train one run, then score it (see ``landslide_tf.cli.train``)."""

from landslide_tf.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
