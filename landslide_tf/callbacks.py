"""Training callbacks: crash-safe checkpoints for resuming, a NaN guard, the history file.

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
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: str | Path, values: Mapping[str, Any]) -> None:
    """Write ``values`` as pretty JSON, atomically."""
    atomic_write_text(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def atomic_save_model(model: keras.Model, path: str | Path) -> None:
    """``model.save`` to a temporary ``.keras`` file, then move it onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem.lstrip('.')}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The committed training state of a run directory, or ``None`` before epoch 1 ends.

    Raises:
        UserError: ``state.json`` is damaged (not JSON, or without a valid ``epochs_done``).
    """
    from landslide_tf.errors import UserError

    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    hint = "rerun with --force to start this run over"
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is damaged ({exc}); {hint}") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is damaged (not a JSON object); {hint}")
    for key in ("epochs_done", "best_epoch"):
        value = state.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UserError(f"{path} is damaged ({key}={value!r}); {hint}")
    for key in ("checkpoint", "best_pending"):
        name = state.get(key)
        if name is not None and (not isinstance(name, str) or Path(name).name != name):
            raise UserError(f"{path} is damaged ({key}={name!r}); {hint}")
    return state


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


class NaNGuard(keras.callbacks.Callback):
    """Stop training as soon as the training loss is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN`` it remembers where it happened
    (``self.nan_at = (epoch, batch)``, 1-based epoch) so the caller can raise a clear error,
    and ``ResumeCheckpoint`` skips checkpointing the poisoned epoch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.nan_at: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or self.nan_at is not None:
            return
        if not math.isfinite(float(loss)):
            self.nan_at = (self._epoch, batch + 1)
            logger.error("loss is %s at epoch %d, batch %d: stopping", loss, *self.nan_at)
            self.model.stop_training = True


class ResumeCheckpoint(keras.callbacks.Callback):
    """After each epoch: save ``last.keras``, ``best.keras``, ``history.csv``, ``state.json``.

    Args:
        run_dir: the run directory.
        monitor: the log key that selects ``best.keras`` (``"val_miou"``); higher is better.
        history: rows of epochs already completed (on resume), kept in front of new rows.
        best_value: best monitored value so far (on resume), ``-inf`` for a fresh run.
        best_epoch: its epoch (1-based), 0 for a fresh run.
        nan_guard: when given, an epoch in which it fired is not checkpointed.
        extra_state: constant entries added to every ``state.json`` (e.g. the target epochs).
    """

    def __init__(
        self,
        run_dir: str | Path,
        monitor: str = "val_miou",
        history: Sequence[Mapping[str, float]] = (),
        best_value: float = -math.inf,
        best_epoch: int = 0,
        nan_guard: NaNGuard | None = None,
        extra_state: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.monitor = monitor
        self.history = [dict(r) for r in history]
        self.best_value = best_value
        self.best_epoch = best_epoch
        self.nan_guard = nan_guard
        self.extra_state = dict(extra_state or {})
        self._start = 0.0
        self._cpu_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        if self.nan_guard is not None and self.nan_guard.nan_at is not None:
            return
        if any(not math.isfinite(float(v)) for v in logs.values() if _is_number(v)):
            logger.warning("epoch %d has non-finite logs %s: not checkpointed", epoch + 1, logs)
            return
        number = epoch + 1
        row: dict[str, float] = {"epoch": number}
        row.update({k: float(v) for k, v in sorted(logs.items()) if _is_number(v)})
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = time.perf_counter() - self._start  # wall clock, incl. validation
        row["cpu_seconds"] = time.process_time() - self._cpu_start  # all threads of the process
        self.history = [r for r in self.history if r["epoch"] < number] + [row]

        value = logs.get(self.monitor)
        if value is None:
            raise KeyError(
                f"monitored value {self.monitor!r} missing from the epoch logs {sorted(logs)}"
            )
        improved = float(value) > self.best_value
        # Two-phase commit: new files first, state.json (the commit point) next, then
        # roll_forward moves them into their public names; see the module docstring.
        checkpoint = checkpoint_name(number)
        atomic_save_model(self.model, self.run_dir / checkpoint)
        fault_point("after-checkpoint", number)
        pending = None
        if improved:
            self.best_value, self.best_epoch = float(value), number
            pending = f".best-{number:04d}.keras"
            atomic_save_model(self.model, self.run_dir / pending)
            fault_point("after-best", number)
        write_history(self.run_dir / HISTORY_FILE, self.history)
        state = {
            **self.extra_state,
            "epochs_done": number,
            "checkpoint": checkpoint,
            "best_pending": pending,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "monitor": self.monitor,
            "optimizer_iterations": int(
                keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            ),
        }
        atomic_write_json(self.run_dir / STATE_FILE, state)
        fault_point("after-state", number)
        roll_forward(self.run_dir, state)
        if improved:
            logger.info(
                "epoch %d: %s improved to %.4f, saved best.keras", number, self.monitor, value
            )


class EpochScalars(keras.callbacks.Callback):
    """Per-epoch TensorBoard scalars in ``log_dir/train`` and ``log_dir/validation``.

    Writes the same tags as ``keras.callbacks.TensorBoard`` (``epoch_loss``, ``epoch_miou``,
    ...) through ``tf.summary.write``, which is part of TensorFlow itself, so logs are written
    even where the ``tensorboard`` package (needed only to *view* them) is not installed.

    Args:
        log_dir: the run's ``logs/`` folder; view with ``tensorboard --logdir RUN_DIR/logs``.
    """

    def __init__(self, log_dir: str | Path) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _writer(self, kind: str) -> Any:
        import tensorflow as tf

        if kind not in self._writers:
            self._writers[kind] = tf.summary.create_file_writer(str(self.log_dir / kind))
        return self._writers[kind]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
        )
        groups: dict[str, dict[str, float]] = {"train": {}, "validation": {}}
        for key, value in (logs or {}).items():
            if not _is_number(value):
                continue
            if key.startswith("val_"):
                groups["validation"][key[4:]] = float(value)
            else:
                groups["train"][key] = float(value)
        for kind, values in groups.items():
            if not values:
                continue
            writer = self._writer(kind)
            with writer.as_default():
                for name, value in values.items():
                    tf.summary.write(
                        f"epoch_{name}", tf.constant(value), step=epoch, metadata=metadata
                    )
            writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
