"""Training callbacks: crash-safe checkpoints for resuming, a NaN guard, TensorBoard scalars.

``ResumeCheckpoint`` commits each epoch with the protocol of ``landslide_tf.training.runstate``
(per-epoch checkpoint, then ``state.json`` atomically, then roll forward), so a ``kill -9``
anywhere loses at most the epoch in progress and a resume trains no epoch twice.

With ``--ema`` (an optimizer that keeps a moving average of the weights) the per-epoch
checkpoint keeps the raw weights and the optimizer's average, so a resume goes on with both, while
``best.keras`` holds the averaged weights (``averaged_weights``) that validation scored
(``validation_callbacks`` swaps them in for validation). Keras ``fit`` ends by copying the
average into the weights; between the fits of one run (frozen encoder, fine-tuning loss)
``KeepRawWeights`` puts the raw weights back, so the next phase starts from them, as a run
resumed at that boundary does from its checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras

from landslide_tf.files import atomic_write_json
from landslide_tf.training.runstate import (
    HISTORY_FILE,
    STATE_FILE,
    atomic_save_model,
    checkpoint_name,
    fault_point,
    roll_forward,
    write_history,
)

logger = logging.getLogger(__name__)


def uses_ema(model: keras.Model) -> bool:
    """Whether the model's optimizer keeps a moving average of the weights."""
    opt = model.optimizer
    return bool(getattr(getattr(opt, "inner_optimizer", opt), "use_ema", False))


@contextlib.contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """The optimizer's moving average in the model's weights for the block (no-op without
    EMA); the raw weights are put back exactly afterwards."""
    if not uses_ema(model):
        yield
        return
    variables = model.trainable_variables
    raw = [keras.ops.convert_to_numpy(v) for v in variables]
    model.optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, raw, strict=True):
            variable.assign(value)


def moving_averages(model: keras.Model) -> dict[int, Any]:
    """The optimizer's moving average of each trainable weight, keyed by ``id(variable)``
    (empty without EMA or before the optimizer is built); the weights are left as they are."""
    if not uses_ema(model) or not model.optimizer.built:
        return {}
    with averaged_weights(model):
        return {id(v): keras.ops.convert_to_numpy(v) for v in model.trainable_variables}


def start_moving_averages(model: keras.Model, averages: Mapping[int, Any]) -> None:
    """Build a fresh EMA optimizer and start its moving averages from ``averages``
    (``moving_averages`` of the optimizer it replaces), else from the weights themselves.

    Keras creates the averages as zeros and copies the weights into them only on the step
    where ``optimizer.iterations`` is 0. An optimizer that goes on with an earlier step count
    (the fresh one after the frozen-encoder phase) never has that step, so its averages would
    start from zeros and validation, ``best.keras`` and the final model would score weights
    shrunk toward 0. A no-op without EMA.
    """
    if not uses_ema(model):
        return
    variables = model.trainable_variables
    model.optimizer.build(variables)
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    # Keras keeps them in this attribute only (its SwapEMAWeights callback reads it too),
    # one per variable of ``build``, None where a variable has no average
    slots = inner._model_variables_moving_average
    for variable, average in zip(variables, slots, strict=True):
        if average is not None:
            value = averages.get(id(variable))
            average.assign(keras.ops.convert_to_numpy(variable) if value is None else value)


def validation_callbacks(model: keras.Model) -> list[keras.callbacks.Callback]:
    """Callbacks that make validation score the averaged weights (empty without EMA)."""
    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=False)] if uses_ema(model) else []


class KeepRawWeights(keras.callbacks.Callback):
    """Put the raw weights back when ``fit`` ends, undoing its copy of the moving average.

    With EMA, Keras ``fit`` ends with ``optimizer.finalize_variable_values``, which overwrites
    the weights with the average. A run that fits once per phase (frozen encoder, then
    unfrozen; the base loss, then ``--finetune-loss``) adds this callback to every fit but the
    last, so the next phase starts from the raw weights of the last epoch, exactly as that
    epoch's checkpoint keeps them and as a run resumed at the boundary starts. The last fit
    keeps the average (the final model holds it).
    """

    def __init__(self) -> None:
        super().__init__()
        self._raw: list[Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 == self.params.get("epochs"):  # the fit's last epoch, as checkpointed
            self._raw = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._raw is None:
            return
        for variable, value in zip(self.model.trainable_variables, self._raw, strict=True):
            variable.assign(value)
        self._raw = None


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
        pending = f".best-{number:04d}.keras" if improved else None
        try:
            atomic_save_model(self.model, self.run_dir / checkpoint)
            fault_point("after-checkpoint", number)
            if pending is not None:
                with averaged_weights(self.model):  # what validation scored
                    atomic_save_model(self.model, self.run_dir / pending)
                fault_point("after-best", number)
        except BaseException:
            # nothing of this epoch is committed (state.json is the commit point): remove
            # what it started, so a full disk leaves the run as the last committed epoch
            for name in (checkpoint, pending):
                if name is not None:
                    (self.run_dir / name).unlink(missing_ok=True)
            raise
        if pending is not None:
            self.best_value, self.best_epoch = float(value), number
        write_history(self.run_dir / HISTORY_FILE, self.history)
        state = {
            **self.extra_state,
            "epochs_done": number,
            "checkpoint": checkpoint,
            "best_pending": pending,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "monitor": self.monitor,
            "last_row": row,  # the committed epoch's history row (reconcile_history)
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
