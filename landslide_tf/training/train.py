"""Fit one run: check the config and the run directory, write config.json, fit (or resume).

``fit_run`` does everything ``python -m landslide_tf.train`` does before the model is scored:
the config is resolved and validated before anything is written, a run directory that holds
another run is refused, an interrupted run resumes after its last completed epoch, and a
finished one is reported (scored again when asked with other scoring options), not
retrained (``force`` starts over; a folder that holds no run is never cleared). Scoring the
result (threshold tuning, test metrics, pictures) is ``landslide_tf.experiments.run.train``'s,
which calls this.

The run directory (default ``runs/<model>-<loss>-s<seed>``) receives ``config.json``, the
split files, ``best.keras`` (highest validation mIoU), ``last.keras`` + ``state.json``
(resume), ``history.csv`` and TensorBoard ``logs/``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from landslide_tf.data.formats import resolve_data_config
from landslide_tf.errors import UserError
from landslide_tf.files import atomic_write_json, missing_folders, remove_created
from landslide_tf.training import runstate as cb
from landslide_tf.training.acceleration import run_steps_per_execution
from landslide_tf.training.config import (
    GLOBAL_BATCH,
    SCORING_FIELDS,
    TrainConfig,
    epochs_fixed_by,
    scoring_differences,
)
from landslide_tf.training.fit import (
    derived_entries,
    fit_model,
    prepare_splits,
    write_planned_split,
)
from landslide_tf.training.precision import apply_precision, run_precision
from landslide_tf.training.recipe import check_split_lists, record_split_lists
from landslide_tf.training.rundir import (
    check_loss,
    check_same_config,
    clear_run,
    default_run_dir,
    remove_stale_run_temporaries,
    resolve_data,
    run_to_clear,
    validated,
)
from landslide_tf.training.runs import (
    CONFIG_FILE,
    dataset_options,
    read_run_config,
    run_splits,
)
from landslide_tf.training.selection import record_selection

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What ``fit_run`` did: the resolved config, the run directory and the splits it used.

    ``metrics`` is set (the stored ``metrics.json``) when the run was already finished and
    nothing was fitted; ``options`` are the dataset options of ``landslide_tf.data.make_dataset``.
    """

    config: TrainConfig
    run_dir: Path
    splits: dict[str, list] | None
    options: dict[str, Any] | None
    epochs_trained: int
    resumed_from: int
    metrics: dict[str, Any] | None = None


def run_directory(config: TrainConfig) -> Path:
    """The absolute run directory of ``config`` (``runs/<model>-<loss>-s<seed>`` by default)."""
    config = config.resolved()
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    return run_dir.expanduser().resolve()


def fit_run(config: TrainConfig, *, force: bool = False, verbose: int | str = "auto") -> FitResult:
    """Fit (or resume, or just report) one run; see the module docstring.

    Args:
        config: the run configuration; ``loss=None`` is the paper's best loss for the family,
            ``data=None`` the synthetic dataset (generated on first use), ``run_dir=None``
            ``runs/<model>-<loss>-s<seed>``.
        force: delete an existing run in ``run_dir`` and train from scratch.
        verbose: Keras ``fit`` verbosity (1 = a progress bar per epoch, 2 = a line per epoch,
            ``"auto"`` = 1 when stdout is a terminal, else 2).

    Returns:
        A ``FitResult``.

    Raises:
        UserError: bad options, missing data, a different run in ``run_dir``, other
            ``epochs`` for a run whose schedule is laid out over them (``epochs_fixed_by``),
            another global batch for a run that trained epochs (``--strategy`` with the same
            ``--batch-size`` per replica on another number of replicas), ``force`` on a
            non-empty folder that holds no run.
        TrainingDiverged: the loss became NaN or infinite.
    """
    config = validated(config)
    run_dir = run_directory(config)
    data_root = resolve_data(config.data)
    config = dataclasses.replace(config, data=str(data_root), run_dir=str(run_dir))
    config = resolve_data_config(config, data_root)  # issue 13: format + bands

    clearing = force and run_to_clear(run_dir)  # a folder that holds no run is not cleared
    stored = None
    if not clearing and (run_dir / CONFIG_FILE).is_file():
        stored = check_same_config(run_dir, _requested(run_dir, config))
    state = cb.read_state(run_dir) if stored is not None else None
    if state is not None:
        cb.roll_forward(run_dir, state)  # finish a save interrupted after its commit
    if stored is not None:  # a save killed midway left its temporary file (a whole model)
        remove_stale_run_temporaries(run_dir)
    done = int(state["epochs_done"]) if state else 0
    if done > config.epochs:
        raise UserError(
            f"{run_dir} already has {done} epochs, more than --epochs {config.epochs}; "
            "use --force to retrain"
        )
    planned = TrainConfig.from_dict(stored).epochs if stored is not None else config.epochs
    fixed_by = epochs_fixed_by(config)
    if done and planned != config.epochs and fixed_by:
        raise UserError(
            f"{run_dir} trained {done} epochs with {fixed_by} laid out over {planned} "
            f"epochs; --epochs {config.epochs} would change it mid-run: use --force to "
            "retrain, or a new --run-dir"
        )
    if done == config.epochs and (run_dir / "metrics.json").is_file():
        if config.batch_size != TrainConfig.from_dict(stored).batch_size:  # else: as trained
            _check_global_batch(config, run_dir, stored, done, _global_batch(config))
        changed = scoring_differences(stored, config.to_dict())
        if changed:  # other scoring options: score it again, train nothing
            check_split_lists(config, run_dir, done)
            return _rescore(config, run_dir, stored, done, changed)
        logger.info("%s is already trained (%d epochs): reporting its metrics", run_dir, done)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return FitResult(config, run_dir, None, None, 0, done, metrics)

    if done:  # the epochs trained saw the recorded lists: refused before anything is written
        check_split_lists(config, run_dir, done)

    import keras

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    made = missing_folders(run_dir)  # the run folder and parents this call creates
    if clearing:  # checked before the old run goes
        splits, strategy, global_batch, raw, loss_kwargs = _force_fresh(config, data_root, run_dir)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        try:  # everything checked before config.json is written
            splits, strategy, global_batch, plan = prepare_splits(config, data_root, run_dir)
            _check_global_batch(config, run_dir, stored, done, global_batch)
            raw, loss_kwargs = _run_entries(config, stored, splits["train"])
            write_planned_split(config, run_dir, plan)  # every check passed
        except UserError:
            remove_created(made)  # no half-made run directory behind a bad argument
            raise

    raw.update({**config.to_dict(), "loss_kwargs": loss_kwargs})
    if not done:  # a resumed run keeps the global batch its epochs trained with
        raw[GLOBAL_BATCH] = global_batch
    raw.update(record_split_lists(config, run_dir))
    raw.update(record_selection(config, run_dir, splits))  # issue 20: --select-from-train
    raw.update(run_precision(config, stored))  # issue 14: precision_used + precision_reason
    raw.update(run_steps_per_execution(config, global_batch, len(splits["train"])))
    config = dataclasses.replace(config, steps_per_execution=raw["steps_per_execution_used"])
    atomic_write_json(run_dir / CONFIG_FILE, raw)
    options = dataset_options(config, raw)

    apply_precision(raw["precision_used"])
    try:
        epochs_trained = fit_model(
            config, run_dir, splits, options, loss_kwargs, strategy, global_batch, state, verbose
        )
    finally:
        apply_precision("float32")

    return FitResult(config, run_dir, splits, options, epochs_trained, done)


def _requested(run_dir: Path, config: TrainConfig) -> dict[str, Any]:
    """``config`` as ``check_same_config`` compares it with the run in ``run_dir``.

    Where ``config.json`` records the run's global batch (``GLOBAL_BATCH``), ``--batch-size``
    is compared as stored: another per-replica batch may keep that global batch under another
    ``--strategy``, which ``_check_global_batch`` decides once the strategy is built.
    """
    requested = config.to_dict()
    _, raw = read_run_config(run_dir)
    if _recorded_global_batch(raw) is not None:
        requested["batch_size"] = TrainConfig.from_dict(raw).batch_size
    return requested


def _recorded_global_batch(stored: dict[str, Any] | None) -> int | None:
    """The global batch ``config.json`` records; None for a run from before the record."""
    value = (stored or {}).get(GLOBAL_BATCH)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _global_batch(config: TrainConfig) -> int:
    """The global batch of ``config`` on this machine (builds its ``--strategy``)."""
    from landslide_tf.training import distribute

    strategy = distribute.get_strategy(config.strategy)
    return distribute.global_batch_size(config.batch_size, strategy)


def _check_global_batch(
    config: TrainConfig,
    run_dir: Path,
    stored: dict[str, Any] | None,
    done: int,
    global_batch: int,
) -> None:
    """Refuse to go on with another global batch than the run's epochs trained with.

    ``--batch-size`` is per replica, so another ``--strategy`` (or another number of devices)
    changes the global batch and the steps per epoch, while the restored optimizer's step
    count, which the learning-rate schedule follows, was counted with the recorded ones.
    Not checked: a run with no epoch done, one from before the record (``GLOBAL_BATCH``),
    and a finished one asked with its own ``--batch-size`` (nothing trains; it is scored).

    Raises:
        UserError: another global batch; names the ``--batch-size`` that keeps it, and
            ``--force``.
    """
    recorded = _recorded_global_batch(stored)
    if not done or recorded is None or recorded == global_batch:
        return
    if done >= config.epochs and config.batch_size == TrainConfig.from_dict(stored).batch_size:
        return
    replicas = global_batch // config.batch_size
    if recorded % replicas:
        how = f"no --batch-size keeps {recorded} on {replicas} replicas: use the run's --strategy"
    else:
        how = f"use --batch-size {recorded // replicas} so that the global batch stays {recorded}"
    raise UserError(
        f"{run_dir} trained {done} epochs with a global batch of {recorded}; --strategy "
        f"{config.strategy} with --batch-size {config.batch_size} on {replicas} replica(s) "
        f"makes it {global_batch}, which changes the steps per epoch its optimizer's step "
        f"count and learning-rate schedule were counted with: {how}, or --force to retrain"
    )


def _rescore(
    config: TrainConfig, run_dir: Path, stored: dict[str, Any], done: int, changed: list[str]
) -> FitResult:
    """A finished run asked with other scoring options (``SCORING_FIELDS``): record them in
    ``config.json``; the caller scores the run with them (``finish_run``), nothing is fitted.

    Returns:
        A ``FitResult`` with the splits and no ``metrics``, as after fitting 0 epochs.
    """
    logger.info(
        "%s is already trained (%d epochs): scoring it again (%s)",
        run_dir,
        done,
        ", ".join(changed),
    )
    raw = {**stored, **{key: getattr(config, key) for key in SCORING_FIELDS}}
    splits = run_splits(config, run_dir)  # checked before config.json changes
    options = dataset_options(config, raw)
    # metrics.json was scored with the old options: gone before config.json names the new
    # ones, so a scoring that fails leaves a run that is scored again, not reported stale
    (run_dir / "metrics.json").unlink(missing_ok=True)
    atomic_write_json(run_dir / CONFIG_FILE, raw)
    return FitResult(config, run_dir, splits, options, 0, done)


def _force_fresh(config: TrainConfig, data_root: Path, run_dir: Path) -> tuple:
    """``--force`` on a run: check the new run, then clear the old one.

    The split is planned as for a new run (the old run's own lists are not reused) and
    checked (split sizes, batch size, loss arguments) first, so a bad option leaves the old
    run whole; only then are the old run's files deleted and the new split written.

    Returns:
        ``(splits, strategy, global_batch, raw, loss_kwargs)`` as the unforced path has them.
    """
    with tempfile.TemporaryDirectory(prefix="landslide_tf-force-") as nowhere:  # no lists
        splits, strategy, global_batch, plan = prepare_splits(config, data_root, Path(nowhere))
    raw, loss_kwargs = _run_entries(config, None, splits["train"])
    logger.info("--force: clearing %s", run_dir)
    clear_run(run_dir, config.split_dir)
    write_planned_split(config, run_dir, plan)
    return splits, strategy, global_batch, raw, loss_kwargs


def _run_entries(
    config: TrainConfig, stored: dict[str, Any] | None, train_samples: list
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The derived ``config.json`` entries and the loss arguments, checked."""
    if stored is not None:
        return stored, dict(stored.get("loss_kwargs") or {})
    raw = derived_entries(config, train_samples)
    loss_kwargs = dict(config.loss_kwargs)
    if config.loss == "wce" and "class_weights" not in loss_kwargs:
        from landslide_tf.losses import wce_weights

        fraction = raw["landslide_fraction"]
        try:
            loss_kwargs["class_weights"] = [float(w) for w in wce_weights(fraction)]
        except ValueError:
            raise UserError(
                f"--loss wce: the training split has {100 * fraction:g} % landslide pixels, "
                "so class weights cannot be derived; give --loss-kwargs "
                "class_weights=[W0,W1] or use another --loss"
            ) from None
        raw["auto_loss_kwargs"] = ["class_weights"]
    check_loss(config.loss, loss_kwargs)
    return raw, loss_kwargs
