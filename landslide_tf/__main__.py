"""``python -m landslide_tf``: the ``landslide-tf`` console script (see ``landslide_tf.cli.main``)."""

from landslide_tf.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
