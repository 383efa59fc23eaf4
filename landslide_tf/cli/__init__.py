"""Command lines: argument parsing and printing only, over the library functions.

Every ``main(argv) -> int`` runs its body through ``common.run_cli`` (UserError, OSError and
damaged files become one line and exit code 2). ``python -m landslide_tf.X`` and the
``landslide-tf`` console script (``main.py``) land here.
"""
