"""Fit one model in a prepared run directory: plan the splits, build, compile, resume, fit.

``landslide_tf.training.train.train`` calls these after ``landslide_tf.training.rundir`` has checked the config
and the run directory; the test evaluation afterwards is ``landslide_tf.evaluation.evaluate``'s.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landslide_tf.errors import UserError
from landslide_tf.metrics.thresholds import threshold_path
from landslide_tf.training import runstate as cb
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.runs import SPLITS

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

#: The validation value that selects ``best.keras`` (higher is better).
MONITOR = "val_miou"


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


def prepare_splits(config: TrainConfig, data_root: Path, run_dir: Path) -> tuple:
    """Samples, split, strategy and global batch; checks sizes. Writes nothing.

    Returns:
        ``(splits, strategy, global_batch, plan)``: ``plan`` is the new split to write with
        ``write_planned_split`` once every check of the run passed (None: lists in
        ``--split-dir``, or the run directory, are reused), so a run that fails leaves no
        split files to be reused by the next one.
    """
    from landslide_tf import data as ldata
    from landslide_tf.data.split import (
        check_lone_test_list,
        given_split_files,
        shipped_lists_note,
    )
    from landslide_tf.training import distribute

    samples = ldata.find_format_samples(
        config.data_format, data_root, modalities=config.modalities, negatives=config.negatives
    )
    out_dir = config.split_dir or run_dir
    new_split = given_split_files(out_dir) is None
    planned = ldata.plan_splits(config.data_format, samples, config.seed, out_dir, write=False)
    if new_split:  # refused now, before the run directory holds anything
        check_lone_test_list(out_dir, planned)
        shipped = shipped_lists_note(data_root, config.split_dir)
        if shipped:  # a published split the user may have meant to train on
            logger.warning(shipped)
    from landslide_tf.training.recipe import given_test_missing
    from landslide_tf.training.selection import apply_selection

    splits = apply_selection(config, planned)  # issue 20: --select-from-train
    no_test_list = given_test_missing(config) and not config.select_from_train
    for split in SPLITS:
        if not splits[split] and not (split == "test" and no_test_list):
            raise UserError(
                f"the {split} split is empty ({len(samples)} tiles in {data_root}): use more tiles"
            )
    strategy = distribute.get_strategy(config.strategy)
    global_batch = distribute.global_batch_size(config.batch_size, strategy)
    if global_batch > len(splits["train"]):
        raise UserError(
            f"batch size {global_batch} is larger than the training split "
            f"({len(splits['train'])} tiles of {len(samples)})"
        )
    return splits, strategy, global_batch, planned if new_split else None


def write_planned_split(config: TrainConfig, run_dir: Path, plan: dict | None) -> None:
    """Write ``prepare_splits``' new ``plan`` (if any) to ``--split-dir`` or ``run_dir``."""
    from landslide_tf.data.split import write_split

    if plan is not None:
        out_dir = config.split_dir or run_dir
        write_split(out_dir, plan)
        logger.info("wrote the split to %s", out_dir)


def derived_entries(config: TrainConfig, train_samples: list) -> dict[str, Any]:
    from landslide_tf import data as ldata

    entries = ldata.training_statistics(
        train_samples,
        config.data_format,
        root=config.data,
        bands=config.bands,
        band_norm=config.band_norm,
        dem=config.modalities != "rgb",
        nodata=config.dem_nodata,
        seed=config.seed,
    )
    return {**entries, "auto_loss_kwargs": [], "channels": config.channels}


def fit_model(
    config: TrainConfig,
    run_dir: Path,
    splits: dict[str, list],
    options: dict[str, Any],
    loss_kwargs: dict[str, Any],
    strategy: Any,
    global_batch: int,
    state: dict[str, Any] | None,
    verbose: int | str,
) -> int:
    """Build, compile, restore (when resuming) and fit; returns the number of epochs run."""
    from landslide_tf.data import pipeline
    from landslide_tf.losses import get_loss
    from landslide_tf.metrics.keras_metrics import keras_metrics
    from landslide_tf.models import build_model
    from landslide_tf.training import callbacks
    from landslide_tf.training import encoder_phases as et
    from landslide_tf.training.optim import build_optimizer

    done = int(state["epochs_done"]) if state else 0
    try:
        loss = get_loss(config.loss, **loss_kwargs)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad --loss-kwargs for {config.loss}: {exc}") from None

    finetune = get_loss(config.finetune_loss) if config.finetune_loss else None
    steps_per_epoch = math.ceil(len(splits["train"]) / global_batch)

    def compile_model(model: keras.Model, loss: Any = loss, optimizer: Any = None) -> None:
        model.compile(
            optimizer=optimizer or build_optimizer(config, steps_per_epoch),
            loss=loss,
            metrics=keras_metrics(threshold=config.threshold),
            jit_compile=config.jit,
            steps_per_execution=max(1, config.steps_per_execution),  # issue 14: train decides
        )

    with strategy.scope():
        model = build_model(
            config.model,
            input_shape=(config.image_size, config.image_size, config.channels),
            base_filters=config.base_filters,
            depth=config.depth,
            dropout=config.dropout,
            deep_supervision=config.deep_supervision,
            **et.build_kwargs(config, resuming=bool(done)),
        )
        encoder_frozen = et.frozen_at_checkpoint(config, done)
        et.set_encoder_frozen(model, encoder_frozen)
        compile_model(model)
        if done:
            # Build the optimizer's slots first so load_weights restores them (Adam moments,
            # iteration count) along with the model weights.
            model.optimizer.build(model.trainable_variables)
            done = _restore(model, run_dir, state)
            logger.info("resuming %s after epoch %d of %d", run_dir, done, config.epochs)

    def train_passes(start: int) -> Any:
        """The training data of a fit from epoch ``start`` on: one pass an epoch.

        The shuffle and augmentation draws are seeded and drawn anew for each pass over the
        data (each new iterator of it): a fresh dataset that skips ``start`` passes, read
        through one endless iterator (repeat + ``steps_per_epoch``, however Keras makes its
        iterators), gives epoch k the same draws in a run unbroken, resumed or fitted in
        phases, not epoch 1's again after a resume.
        """
        ds = pipeline.make_dataset(
            splits["train"],
            batch_size=global_batch,
            shuffle=True,
            augment=config.augment,
            augment_policy=config.augment_policy,
            seed=config.seed,
            cache=True,
            **options,
        )
        for _ in range(start):
            iter(ds)
        return ds.repeat()

    val_ds = pipeline.make_dataset(
        splits["val"], batch_size=global_batch, shuffle=False, cache=True, **options
    )
    history = cb.read_history(run_dir / cb.HISTORY_FILE)
    if state and done == int(state["epochs_done"]):  # a torn last row is rewritten from state
        history = cb.reconcile_history(history, state, run_dir / cb.HISTORY_FILE)
    history = [row for row in history if row["epoch"] <= done]
    best_value = float(state["best_value"]) if state else -math.inf
    best_epoch = int(state["best_epoch"]) if state else 0
    if best_epoch > done:  # fell back past the best epoch: best.keras holds discarded weights
        best_value, best_epoch = _best_after_fallback(model, run_dir, history, done, best_epoch)
    guard = callbacks.NaNGuard()
    checkpoint = callbacks.ResumeCheckpoint(
        run_dir,
        monitor=MONITOR,
        history=history,
        best_value=best_value,
        best_epoch=best_epoch,
        nan_guard=guard,
        extra_state={"epochs": config.epochs},
    )
    tensorboard = callbacks.EpochScalars(run_dir / "logs")
    from landslide_tf.training.distribute import prepare_multiworker_fit

    # Only a model built frozen (a fresh run, or one resumed inside the frozen phase) is
    # unfrozen and recompiled: one resumed after it was built unfrozen and its optimizer
    # restored from the checkpoint (Adam moments included), which a recompile would discard.
    compiled_with = loss
    if done < config.epochs:  # a finished run continued: its metrics.json scored the old
        # best model; gone before a new epoch commits, so a run stopped before it is scored
        # is scored on the next call, never reported with the old figures (kept when the
        # resume itself fails: a damaged checkpoint changes nothing)
        (run_dir / "metrics.json").unlink(missing_ok=True)
        if state:  # tuned on the old best.keras, which the coming epochs may replace
            threshold_path(run_dir).unlink(missing_ok=True)
    fits = loss_phases(et.phases(config, done), config)
    for number, (start, stop, frozen, tuning) in enumerate(fits, 1):
        phase_loss = finetune if tuning else loss
        if encoder_frozen and not frozen:
            averages = callbacks.moving_averages(model)  # the frozen phase's, with --ema
            et.set_encoder_frozen(model, False)
            encoder_frozen = False
            with strategy.scope():
                compile_model(model, phase_loss)  # trainable weights changed: a fresh optimizer...
                compiled_with = phase_loss
                # ...on the same schedule: its step count goes on from the frozen phase, so
                # the warm-up is not repeated and the cosine still ends at the last epoch.
                model.optimizer.iterations.assign(start * steps_per_epoch)
                # Keras starts a moving average from the weights only at step 0, which this
                # optimizer never sees: without this it would start from zeros
                callbacks.start_moving_averages(model, averages)
            logger.info("epoch %d: encoder unfrozen", start + 1)
        elif tuning and compiled_with is not finetune:
            with strategy.scope():  # the same optimizer (state, step count, schedule) goes on
                compile_model(model, finetune, optimizer=model.optimizer)
            compiled_with = finetune
        if tuning:
            logger.info("epoch %d: fine-tuning with %s", start + 1, config.finetune_loss)
        train_ds = train_passes(start)
        prepare_multiworker_fit(model, strategy, train_ds)  # issue 14: Keras 3 workaround
        # with EMA, fit ends on the average: the next phase starts from the raw weights, as
        # one resumed at this boundary does from the checkpoint (only the last fit keeps it)
        last = number == len(fits)
        keep_raw = [] if last or not callbacks.uses_ema(model) else [callbacks.KeepRawWeights()]
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=stop,
            initial_epoch=start,
            steps_per_epoch=steps_per_epoch,
            callbacks=[
                guard,
                *callbacks.validation_callbacks(model),
                checkpoint,
                tensorboard,
                *keep_raw,
            ],
            shuffle=False,  # the dataset reshuffles itself, seeded
            verbose=progress_verbosity(verbose),
        )
        if guard.nan_at is not None:
            break
    if guard.nan_at is not None:
        epoch, batch = guard.nan_at
        raise TrainingDiverged(
            f"the training loss became NaN at epoch {epoch}, batch {batch} "
            f"(lr {config.lr:g}, loss {config.loss}): lower --lr or check the input data; "
            f"epochs 1..{epoch - 1} are kept in {run_dir}"
        )
    return config.epochs - done


def loss_phases(
    phases: list[tuple[int, int, bool]], config: TrainConfig
) -> list[tuple[int, int, bool, bool]]:
    """The fits of ``phases`` split where ``--finetune-loss`` takes over; ``tuning`` flags
    the fits that train with it (the last ``finetune_epochs`` epochs).

    >>> loss_phases([(0, 2, True), (2, 5, False)],
    ...             TrainConfig(epochs=5, finetune_loss="lovasz_hinge", finetune_epochs=2))
    [(0, 2, True, False), (2, 3, False, False), (3, 5, False, True)]
    >>> loss_phases([(4, 5, False)], TrainConfig(epochs=5))
    [(4, 5, False, False)]
    """
    boundary = config.epochs - (config.finetune_epochs if config.finetune_loss else 0)
    out = []
    for start, stop, frozen in phases:
        if start < boundary < stop:
            out += [(start, boundary, frozen, False), (boundary, stop, frozen, True)]
        else:
            out.append((start, stop, frozen, start >= boundary))
    return out


def _restore(model: keras.Model, run_dir: Path, state: dict[str, Any]) -> int:
    """Load the checkpoint ``state.json`` commits (else the previous one); its epoch.

    Raises:
        UserError: no loadable checkpoint; names the file and suggests ``--force``.
    """
    problems = []
    for epoch, path in cb.resume_checkpoint(run_dir, state):
        if not path.is_file():
            problems.append(f"{path.name} is missing")
            continue
        try:
            model.load_weights(path)
        except Exception as exc:  # noqa: BLE001  (keras raises many types for damaged files)
            problems.append(f"{path.name} is damaged ({type(exc).__name__})")
            logger.warning("%s: cannot load (%s); trying the previous checkpoint", path, exc)
            continue
        if problems:
            logger.warning("resuming from %s instead: %s", path.name, "; ".join(problems))
        return epoch
    raise UserError(
        f"{run_dir}: cannot resume ({'; '.join(problems)}) and no earlier checkpoint is "
        "left; rerun with --force to start this run over (nothing was deleted)"
    )


def _best_after_fallback(
    model: keras.Model, run_dir: Path, history: list[dict], done: int, lost: int
) -> tuple[float, int]:
    """The best value and epoch after a resume fell back to epoch ``done``, before the best
    epoch ``lost`` (whose weights ``best.keras`` holds, from a discarded epoch).

    ``best.keras`` is rewritten from the restored model (its averaged weights, as validation
    scored them), so it, the best value and the best epoch all describe epoch ``done``; the
    weights of an earlier, better epoch were replaced by epoch ``lost``'s and cannot be
    brought back (a warning says so).

    Returns:
        ``(best_value, best_epoch)`` for ``ResumeCheckpoint``: epoch ``done``'s, or
        ``(-inf, 0)`` when its history row has no finite value (the next epoch then
        rewrites ``best.keras``).
    """
    from landslide_tf.training.callbacks import averaged_weights

    row = next((r for r in history if r["epoch"] == done), {})
    value = row.get(MONITOR)
    if value is None or not math.isfinite(value):
        logger.warning(
            "best.keras holds epoch %d, discarded by the fallback; epoch %d has no %s: "
            "the next epoch replaces it",
            lost,
            done,
            MONITOR,
        )
        return -math.inf, 0
    with averaged_weights(model):  # what validation scored
        cb.atomic_save_model(model, run_dir / cb.BEST_MODEL)
    scored = [r for r in history if math.isfinite(r.get(MONITOR, -math.inf))]
    earlier = max(scored, key=lambda r: r[MONITOR])
    lost_note = ""
    if earlier[MONITOR] > value:
        lost_note = (
            f"; epoch {earlier['epoch']}'s better weights ({MONITOR} "
            f"{earlier[MONITOR]:.4f}) were replaced by epoch {lost}'s and are lost"
        )
    logger.warning(
        "best.keras held epoch %d, discarded by the fallback: it now holds the restored epoch "
        "%d (%s %.4f)%s",
        lost,
        done,
        MONITOR,
        value,
        lost_note,
    )
    return float(value), done


def progress_verbosity(verbose: int | str) -> int | str:
    """Keras ``fit`` verbosity: ``"auto"`` is a progress bar on a terminal, else one line per
    epoch (no ANSI escape codes in redirected output and log files)."""
    if verbose != "auto":
        return verbose
    from landslide_tf.console import interactive_stdout

    return 1 if interactive_stdout() else 2
