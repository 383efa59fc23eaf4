"""Keep TensorFlow's start-up noise out of the command-line tools' output.

TensorFlow's C++ runtime writes its start-up lines (the absl pre-init warning, the oneDNN
notice, "Could not find cuda drivers", a ``cuInit`` error on CPU-only machines) straight to
file descriptor 2 while ``import tensorflow`` runs and when devices are first listed;
``TF_CPP_MIN_LOG_LEVEL`` does not reach the lines written before absl is initialised.

:func:`install` (called by ``landslide_tf/__init__.py`` when a ``python -m landslide_tf.X``
command starts) therefore, unless the user set ``TF_CPP_MIN_LOG_LEVEL`` (then nothing is
changed: the user's level wins):

- sets ``TF_CPP_MIN_LOG_LEVEL=2`` (C++ errors still print) before TensorFlow loads;
- hooks the import of ``tensorflow`` (wherever it happens, usually via Keras) so that file
  descriptor 2 points at a temporary file only while ``import tensorflow`` and the first
  ``tf.config.list_physical_devices()`` run, then restores it (what was held back is
  dropped, or replayed when the import raised);
- lowers TensorFlow's Python logger (absl) to errors, which silences ``export``'s INFO lines.

Nothing here imports TensorFlow: commands that do not need it never load it. A failing import
still raises its exception after file descriptor 2 is restored, so the traceback is shown.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

_ENV = "TF_CPP_MIN_LOG_LEVEL"
_MARK = "LANDSLIDE_TF_QUIET"  # set by install(): child processes (experiments --jobs) follow
_installed = False


@contextlib.contextmanager
def silenced_fd2() -> Iterator[None]:
    """Hold back what is written to file descriptor 2 inside the block (C-level writes too).

    It goes to a temporary file that is dropped when the block succeeds and replayed on the
    real stderr when the block raises, so a failing import still shows what it printed.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to silence
        yield
        return
    held = tempfile.TemporaryFile()
    failed = True
    try:
        os.dup2(held.fileno(), 2)
        yield
        failed = False
    finally:
        with contextlib.suppress(ValueError, AttributeError, OSError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        if failed:
            with contextlib.suppress(OSError):
                held.seek(0)
                os.write(2, held.read())
        held.close()


def _quiet_python_logging(tf: Any) -> None:
    with contextlib.suppress(Exception):
        tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(Exception):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


class _QuietTensorFlowFinder:
    """A ``sys.meta_path`` finder that wraps the real ``tensorflow`` loader once."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # one shot; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            with silenced_fd2():
                real_exec(module)
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices()  # device init prints cuInit errors
            _quiet_python_logging(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> bool:
    """Quiet TensorFlow for this process unless the user chose a log level; True if applied.

    Does nothing when ``TF_CPP_MIN_LOG_LEVEL`` is already set or TensorFlow is already loaded.
    """
    global _installed
    if _installed or (_ENV in os.environ and os.environ.get(_MARK) != "1"):
        return False
    _installed = True
    os.environ[_ENV] = os.environ.get(_ENV, "2")
    os.environ[_MARK] = "1"
    if "tensorflow" in sys.modules:
        _quiet_python_logging(sys.modules["tensorflow"])
    else:
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
    return True


def wanted() -> bool:
    """True while ``python -m landslide_tf...`` starts (``sys.argv[0]`` is ``-m``) or in a
    worker process of such a command (it inherits ``LANDSLIDE_TF_QUIET=1``)."""
    return os.environ.get(_MARK) == "1" or (bool(sys.argv) and sys.argv[0] == "-m")


def interactive_stdout() -> bool:
    """True when stdout is a terminal or a notebook: progress bars (escape codes) belong there,
    not in redirected output and log files."""
    try:
        return sys.stdout.isatty() or "ipykernel" in sys.modules
    except (AttributeError, ValueError):
        return False
