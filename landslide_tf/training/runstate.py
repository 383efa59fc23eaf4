"""The files of a run directory that make training resumable, and how they are committed.

A run directory is written so that killing the process at any moment (Ctrl-C, ``kill -9``)
loses at most the epoch in progress:

- ``epoch-NNNN.keras``: weights **and** optimizer state after epoch NNNN, a new file per
  epoch, written first;
- ``.best-NNNN.keras``: the new best model, when epoch NNNN improved, written next;
- ``history.csv``: one row per completed epoch;
- ``state.json``: ``{"epochs_done", "checkpoint", "best_pending", "best_epoch", ...}``,
  written last, atomically. It is the commit point: resume loads exactly the checkpoint it
  names, and rows of ``history.csv`` beyond ``state["epochs_done"]`` are dropped, so every
  epoch is trained and recorded exactly once, wherever a ``kill -9`` lands;
- after the commit (and again on resume, ``roll_forward``): the pending best is moved onto
  ``best.keras``, ``last.keras`` becomes a link to (or copy of) the committed checkpoint,
  and checkpoints older than the previous one are removed. The previous one is kept as a
  fallback for a checkpoint damaged later (``resume_checkpoint``).

Every file is written to a temporary name and moved into place with ``os.replace``
(atomic on POSIX), so a reader never sees a half-written file. ``LANDSLIDE_TF_FAULT``
(``after-checkpoint:N``, ``after-best:N``, ``after-state:N``) makes the process kill itself
with SIGKILL at that point of epoch N's save: the tests' fault-injection point.

``landslide_tf.training.callbacks.ResumeCheckpoint`` writes them after every epoch; nothing here
imports TensorFlow.
"""

from __future__ import annotations

import csv
import fcntl
import fnmatch
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from landslide_tf.files import atomic_write_text, process_alive, staged, temporary_of

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
HISTORY_FILE = "history.csv"
LAST_MODEL = "last.keras"
BEST_MODEL = "best.keras"
#: Environment variable naming a fault-injection point, e.g. ``after-checkpoint:2``.
FAULT_ENV = "LANDSLIDE_TF_FAULT"
_CHECKPOINT = re.compile(r"^epoch-(\d{4,})\.keras$")
_PENDING_BEST = re.compile(r"^\.best-(\d{4,})\.keras$")


def checkpoint_name(epoch: int) -> str:
    """File name of the checkpoint after ``epoch`` (1-based)."""
    return f"epoch-{epoch:04d}.keras"


def checkpoint_files(run_dir: str | Path) -> list[Path]:
    """Per-epoch checkpoints and pending best models of a run directory, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [
        p for p in run_dir.iterdir() if _CHECKPOINT.match(p.name) or _PENDING_BEST.match(p.name)
    ]
    return sorted(found, key=lambda p: p.name.lstrip("."))


def fault_point(name: str, epoch: int) -> None:
    """Kill this process (SIGKILL, like ``kill -9``) when ``$LANDSLIDE_TF_FAULT`` names this
    point of this epoch; a no-op otherwise."""
    if os.environ.get(FAULT_ENV) == f"{name}:{epoch}":
        logger.warning("%s=%s: killing the process", FAULT_ENV, os.environ[FAULT_ENV])
        os.kill(os.getpid(), signal.SIGKILL)


def atomic_save_model(model: Any, path: str | Path) -> None:
    """``model.save`` to a temporary ``.keras`` file, then move it onto ``path``; a failed
    save (a full disk) removes the temporary file and raises ``OSError`` naming ``path``."""
    with staged(path) as tmp:
        model.save(tmp)


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The committed training state of a run directory, or ``None`` before epoch 1 ends.

    Every entry a resume reads is checked here, so a damaged file is one line naming it
    rather than a ``KeyError`` or ``ValueError`` later: ``epochs_done`` and ``best_epoch``
    (integers ``>= 0``, the best epoch not after the last one), ``best_value`` (a number),
    ``checkpoint`` and ``best_pending`` (plain file names or absent) and ``last_row`` (the
    committed epoch's history row: numbers, its ``epoch`` the last one, or absent).

    Raises:
        DataError: ``state.json`` is damaged (not JSON, or an entry missing or invalid).
    """
    from landslide_tf.errors import DataError

    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    hint = "rerun with --force to start this run over"
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is damaged ({exc}); {hint}") from None
    if not isinstance(state, dict):
        raise DataError(f"{path} is damaged (not a JSON object); {hint}")
    problem = state_problem(state)
    if problem is not None:
        raise DataError(f"{path} is damaged ({problem}); {hint}")
    return state


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def state_problem(state: Mapping[str, Any]) -> str | None:
    """What is wrong with the entries of a ``state.json`` (``"key=value"``), or None.

    >>> state_problem({"epochs_done": 1, "best_epoch": 1, "best_value": 0.4})
    >>> state_problem({"checkpoint": "epoch-0001.keras"})
    'no epochs_done'
    >>> state_problem({"epochs_done": 1, "best_epoch": 1, "best_value": None})
    'best_value=None'
    """
    for key in ("epochs_done", "best_epoch", "best_value"):
        if key not in state:
            return f"no {key}"
        value = state[key]
        if key == "best_value":  # -inf: no epoch scored yet
            if not _is_number(value) or math.isnan(value) or value == math.inf:
                return f"{key}={value!r}"
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key}={value!r}"
    if state["best_epoch"] > state["epochs_done"]:
        return f"best_epoch={state['best_epoch']!r} after epochs_done={state['epochs_done']!r}"
    for key in ("checkpoint", "best_pending"):
        name = state.get(key)
        if name is not None and (not isinstance(name, str) or Path(name).name != name):
            return f"{key}={name!r}"
    row = state.get("last_row")
    if row is None:
        return None
    if not isinstance(row, dict) or row.get("epoch") != state["epochs_done"]:
        return f"last_row={row!r}"[:120]
    for key, value in row.items():
        if not _is_number(value):
            return f"last_row[{key!r}]={value!r}"[:120]
    return None


def _link_or_copy(source: Path, dest: Path) -> None:
    if dest.exists() and os.path.samefile(source, dest):
        return  # already linked (rename between two links of one file would do nothing)
    tmp = dest.with_name(f".{dest.stem}.tmp.keras")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def roll_forward(run_dir: str | Path, state: Mapping[str, Any]) -> None:
    """Finish a committed save: promote the pending best, point ``last.keras`` at the
    checkpoint, remove checkpoints older than the previous one. Idempotent."""
    run_dir = Path(run_dir)
    pending = state.get("best_pending")
    if pending and (run_dir / pending).is_file():
        os.replace(run_dir / pending, run_dir / BEST_MODEL)
    name = state.get("checkpoint")
    if not name or not (run_dir / name).is_file():
        return
    _link_or_copy(run_dir / name, run_dir / LAST_MODEL)
    checkpoints = [p for p in checkpoint_files(run_dir) if _CHECKPOINT.match(p.name)]
    keep = {name}
    older = [p for p in checkpoints if p.name < name]
    if older:
        keep.add(older[-1].name)  # the previous good one: a fallback
    for path in checkpoint_files(run_dir):
        if path.name not in keep and path.name != pending:
            path.unlink(missing_ok=True)


#: ``landslide_tf.files.staged``'s temporary name of a file: ``.NAME.PID.tmp.SUFFIX``.
def stale_temporaries(run_dir: str | Path, names: Sequence[str] = ()) -> list[Path]:
    """Temporary files of a run's files that a killed process left in ``run_dir``.

    A save killed midway (``kill -9`` inside ``model.save``) leaves its temporary file
    (``files.staged``: ``.NAME.PID.tmp.SUFFIX``, a whole model for a checkpoint) that no
    later save reuses. Only the temporaries of this module's files (per-epoch checkpoints,
    pending and public best models, ``last.keras``, ``state.json``, ``history.csv``) and of
    ``names`` (``fnmatch`` patterns) count, and only those whose process is gone: a live
    process may still be writing its own.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    own = (BEST_MODEL, LAST_MODEL, STATE_FILE, HISTORY_FILE)
    found = []
    for path in run_dir.iterdir():
        temporary = temporary_of(path)
        if temporary is None or not path.is_file() or path.is_symlink():
            continue
        name, pid = temporary
        ours = name in own or _CHECKPOINT.match(name) or _PENDING_BEST.match(name)
        if not (ours or any(fnmatch.fnmatchcase(name, pattern) for pattern in names)):
            continue
        if not process_alive(pid):
            found.append(path)
    return sorted(found)


def remove_stale_temporaries(run_dir: str | Path, names: Sequence[str] = ()) -> list[Path]:
    """Remove ``stale_temporaries(run_dir, names)``; the paths removed (logged)."""
    removed = []
    for path in stale_temporaries(run_dir, names):
        path.unlink(missing_ok=True)
        removed.append(path)
        logger.info("removed %s, left by a killed save", path)
    return removed


def resume_checkpoint(run_dir: str | Path, state: Mapping[str, Any]) -> list[tuple[int, Path]]:
    """Checkpoints to try on resume, best first: ``(epochs_done, path)``.

    The one ``state.json`` names (or ``last.keras`` for runs written before per-epoch
    checkpoints), then the previous epoch's, if kept.
    """
    run_dir = Path(run_dir)
    done = int(state["epochs_done"])
    name = state.get("checkpoint")
    if not name:
        return [(done, run_dir / LAST_MODEL)]
    options = [(done, run_dir / name)]
    older = [p for p in checkpoint_files(run_dir) if _CHECKPOINT.match(p.name) and p.name < name]
    if older:
        options.append((int(_CHECKPOINT.match(older[-1].name).group(1)), older[-1]))
    return options


def read_history(path: str | Path) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` as dicts of floats (``epoch`` as int); ``[]`` if absent."""
    path = Path(path)
    if not path.is_file():
        return []
    from landslide_tf.errors import UserError

    rows = []
    with open(path, newline="") as f:
        try:
            for row in csv.DictReader(f):
                parsed: dict[str, float] = {}
                for key, value in row.items():
                    if value in (None, "") or key is None:
                        continue
                    parsed[key] = int(value) if key == "epoch" else float(value)
                if "epoch" not in parsed:
                    raise ValueError(f"a row without an epoch: {row}")
                rows.append(parsed)
        except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise UserError(
                f"{path} is damaged ({reason}); restore it, or retrain the run with --force"
            ) from None
    return rows


def write_history(path: str | Path, rows: Sequence[Mapping[str, float]]) -> None:
    """Write history rows (the union of their keys as columns, ``epoch`` first), atomically."""
    columns: list[str] = ["epoch"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    atomic_write_text(path, buf.getvalue())


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.6g}"


def reconcile_history(
    rows: Sequence[Mapping[str, float]], state: Mapping[str, Any] | None, path: str | Path
) -> list[dict[str, float]]:
    """History rows of the committed epochs, the last one checked against ``state.json``.

    ``state.json`` (the commit point) carries the committed epoch's row (``last_row``). A
    ``history.csv`` whose row for that epoch is missing or differs (a torn or edited file) is
    repaired from it, with a warning; rows beyond the committed epoch are dropped.
    """
    done = int(state["epochs_done"]) if state else 0
    kept = [dict(r) for r in rows if int(r["epoch"]) <= done]
    record = (state or {}).get("last_row")
    if not done or not isinstance(record, Mapping):
        return kept
    record = {k: (int(v) if k == "epoch" else float(v)) for k, v in record.items()}
    current = next((r for r in kept if int(r["epoch"]) == done), None)
    if current is None or not _same_row(current, record):
        logger.warning(
            "%s: the row of epoch %d %s state.json; rewritten from the checkpoint's record",
            path,
            done,
            "is missing from" if current is None else "disagrees with",
        )
        kept = [r for r in kept if int(r["epoch"]) != done] + [record]
        kept.sort(key=lambda r: int(r["epoch"]))
        write_history(path, kept)
    return kept


def _same_row(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    if set(a) != set(b):
        return False
    return all(_fmt(a[k]) == _fmt(b[k]) for k in a)


class RunLock:
    """An exclusive lock on a run directory while a process writes it.

    The lock file ``.lock`` holds the owner's pid, host and start time and is locked with
    ``fcntl.flock``: the kernel releases it when the owner dies (even by ``kill -9``), so a
    stale lock file is simply taken over. A second process gets a one-line ``UserError``
    naming the owner.
    """

    def __init__(self, run_dir: str | Path, purpose: str = "training") -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        from landslide_tf.errors import UserError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = _read_owner(fd)
                os.close(fd)
                raise UserError(
                    f"{self.path.parent} is in use: {owner}; wait for it to finish or stop it "
                    "(the lock frees itself when that process ends)"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the owner removed the file as we locked it: lock the new one
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "purpose": self.purpose,
        }
        os.write(fd, (json.dumps(info) + "\n").encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_owner(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process holds its lock"
    return (
        f"{info.get('purpose', 'a process')} by pid {info.get('pid')} on {info.get('host')} "
        f"since {info.get('since')}"
    )
