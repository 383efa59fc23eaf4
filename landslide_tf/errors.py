"""Errors meant for people: one line, naming the file and what was expected.

Command-line entry points catch ``UserError``, print ``error: <message>`` and exit 2.
"""

from __future__ import annotations

import errno
import importlib
import os
from types import ModuleType


class UserError(Exception):
    """A problem with the user's input or arguments, reported as one line."""


class DataError(UserError, ValueError):
    """A dataset that cannot be read as the Bijie layout, with the file and the expectation."""


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: the path(s) it concerns, the reason and a hint."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, getattr(exc, "filename2", None)) if p is not None]
    where = " -> ".join(os.fsdecode(p) for p in paths)
    hint = {
        errno.EACCES: "check its permissions or choose another location",
        errno.EPERM: "check its permissions or choose another location",
        errno.EROFS: "the file system is read-only: choose another location",
        errno.ENOSPC: "free some disk space",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "expected a file, got a folder",
        errno.ENOENT: "check the path",
        errno.EEXIST: "remove it or choose another name",
    }.get(exc.errno or -1)
    if exc.errno == errno.EEXIST and paths and os.path.isfile(paths[0]):
        hint = "a file is in the way where a folder is needed: move it or choose another path"
    line = f"{where}: {reason}" if where else reason
    return f"{line} ({hint})" if hint else line


def require_module(name: str, hint: str) -> ModuleType:
    """Import an optional dependency, or raise a one-line ``UserError`` with ``hint``.

    ``hint`` says what needs the module and how to install it (for example the extra).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        raise UserError(hint) from None
