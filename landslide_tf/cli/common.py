"""The one place where command-line entry points turn failures into one line and an exit code.

Every ``main(argv)`` of the package runs its body through ``run_cli``:

- ``UserError`` (and ``DataError``): ``error: <message>`` on stderr, exit 2;
- ``OSError`` (unwritable folder, path under a regular file, disk full, ...): ``error:`` with
  the path it concerns and what went wrong, exit 2;
- ``KeyboardInterrupt``: the command's own ``interrupted: ...`` hint, exit 130;
- SIGTERM: raised as ``Terminated`` (a ``KeyboardInterrupt``, ``sigterm_as_interrupt``) in the
  main thread, so every ``finally`` and ``except KeyboardInterrupt`` that cleans up after Ctrl-C
  runs after ``kill`` too (a study stops the training processes it started instead of leaving
  them running with no parent); the same hint, exit 143;
- a damaged JSON or zip file that no reader turned into a ``UserError``: one line, exit 2.

``ArgumentParser`` is every command's parser: a bad flag is one line too (``error: ... (see
--help)``, exit 2), not argparse's usage block. ``add_tta_arg`` and ``add_precision_arg`` are
the inference commands' shared flags.

Library code raises; it never prints. Damaged files (a truncated ``config.json``, a corrupt
``.keras`` or zip) are turned into ``UserError`` where they are read, naming the file.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from landslide_tf.errors import UserError, describe_os_error
from landslide_tf.training.precision import LEGACY_MIXED, PRECISIONS

#: Exit status for bad input, bad options and I/O problems.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Exit status after SIGTERM (128 + 15), as a shell reports a process killed by it.
EXIT_TERMINATED = 128 + signal.SIGTERM


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``error: ... (see --help)``, exit 2
    (its subcommand parsers are of this class too)."""

    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"error: {message} (see --help)\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised where the main thread was, and handled like Ctrl-C."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signum} (SIGTERM)")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated``; the previous handler comes back after.

    Outside the main thread it changes nothing (Python runs signal handlers there only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_cli(
    body: Callable[[], int],
    *,
    interrupted: str = "interrupted",
) -> int:
    """Run a CLI body; return its exit status, or 2 / 130 / 143 after printing one line.

    Args:
        body: the command's work, returning its exit status (0 on success).
        interrupted: the message printed after Ctrl-C or SIGTERM.
    """
    try:
        with sigterm_as_interrupt():
            return body()
    except UserError as exc:
        message = " ".join(str(exc).split("\n"))
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (json.JSONDecodeError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        # a safety net: readers turn these into UserError naming the file; one missed
        # here still ends in one line rather than a traceback
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"error: a damaged file ({type(exc).__name__}: {reason}); restore it or "
            "regenerate it (--force for a run directory)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except Terminated:
        print(f"{interrupted} (terminated by SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED


def add_precision_args(
    parser: argparse.ArgumentParser, default: str | None = "auto", legacy: bool = True
) -> None:
    """Add ``--precision`` (and the ``--mixed-precision`` alias) to an argparse parser."""
    shown = default or "the run's recorded precision"
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help=f"auto = bfloat16/float16 where the hardware is fast at it (default {shown})",
    )
    if legacy:
        parser.add_argument(
            "--mixed-precision",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="alias: float16 on GPU, bfloat16 elsewhere (--no-...: --precision float32)",
        )


def precision_from_args(args: argparse.Namespace) -> str | None:
    """``--precision``, else the ``--mixed-precision`` alias, else ``None`` (not given)."""
    if getattr(args, "precision", None):
        return args.precision
    mixed = getattr(args, "mixed_precision", None)
    if mixed is None:
        return None
    return LEGACY_MIXED if mixed else "float32"


def add_tta_arg(parser: Any) -> None:
    """``--tta/--no-tta`` and ``--tta-transforms`` (default None: the run's own settings) for
    the inference commands."""
    from landslide_tf.inference.tta import TTA_TRANSFORMS

    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average over the 4 flips of each input (default: the run's setting)",
    )
    parser.add_argument(
        "--tta-transforms",
        choices=tuple(TTA_TRANSFORMS),
        help="what --tta averages: flips (4 passes) or dihedral (8: the flips of the tile "
        "and of its transpose); default: the run's",
    )


def add_precision_arg(parser: Any, default: str = "float32") -> None:
    """``--precision`` for the inference commands (predict, scene, export).

    Inference computes in float32 unless asked otherwise, so every path gives the same
    probabilities for the same run (issue 22); ``auto`` is this machine's fast choice.
    """
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=default,
        help=f"arithmetic of the model (default {default}: the same answer on every path; "
        "auto = bfloat16/float16 where the hardware is fast at it)",
    )


def seed_type(text: str) -> int:
    """argparse ``type`` of a ``--seed``: an integer in [0, 2**32), as numpy's generators
    take (a usage error, exit 2, instead of numpy's traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer seed") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value}: a seed must be in [0, 2**32 - 1]")
    return value
