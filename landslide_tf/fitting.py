"""Fit one model in a prepared run directory: splits, build + compile, resume, fit, plots.

``landslide_tf.train.train`` calls these after ``landslide_tf.rundir`` has checked the config
and the run directory; the test evaluation afterwards is ``landslide_tf.evaluate``'s.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

from landslide_tf import callbacks as cb
from landslide_tf.config import TrainConfig
from landslide_tf.errors import UserError
from landslide_tf.runs import SPLITS

logger = logging.getLogger(__name__)


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


def _prepare_splits(config: TrainConfig, data_root: Path, run_dir: Path) -> tuple:
    """Samples, split (reused or written), strategy and global batch; checks sizes."""
    from landslide_tf import data as ldata
    from landslide_tf import distribute

    samples = ldata.find_samples(
        data_root, modalities=config.modalities, negatives=config.negatives
    )
    splits = ldata.make_split(samples, seed=config.seed, out_dir=config.split_dir or run_dir)
    for split in SPLITS:
        if not splits[split]:
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
    return splits, strategy, global_batch


def _derived_entries(config: TrainConfig, train_samples: list) -> dict[str, Any]:
    from landslide_tf import data as ldata

    stats = None
    if config.modalities != "rgb":
        stats = [float(v) for v in ldata.dem_statistics(train_samples)]
    return {
        "dem_stats": stats,
        "landslide_fraction": float(ldata.landslide_fraction(train_samples)),
        "auto_loss_kwargs": [],
        "channels": config.channels,
    }


def _fit(
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
    from landslide_tf import data as ldata
    from landslide_tf.losses import get_loss
    from landslide_tf.metrics import keras_metrics
    from landslide_tf.models import build_model

    done = int(state["epochs_done"]) if state else 0
    with strategy.scope():
        model = build_model(
            config.model,
            input_shape=(config.image_size, config.image_size, config.channels),
            base_filters=config.base_filters,
            depth=config.depth,
            dropout=config.dropout,
        )
        try:
            loss = get_loss(config.loss, **loss_kwargs)
        except (TypeError, ValueError) as exc:
            raise UserError(f"bad --loss-kwargs for {config.loss}: {exc}") from None
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.lr),
            loss=loss,
            metrics=keras_metrics(threshold=config.threshold),
            jit_compile=config.jit,
            steps_per_execution=max(1, config.steps_per_execution),  # issue 14: train decides
        )
        if done:
            # Build the optimizer's slots first so load_weights restores them (Adam moments,
            # iteration count) along with the model weights.
            model.optimizer.build(model.trainable_variables)
            model.load_weights(run_dir / cb.LAST_MODEL)
            logger.info("resuming %s after epoch %d of %d", run_dir, done, config.epochs)

    train_ds = ldata.make_dataset(
        splits["train"],
        batch_size=global_batch,
        shuffle=True,
        augment=config.augment,
        seed=config.seed,
        cache=True,
        **options,
    )
    val_ds = ldata.make_dataset(
        splits["val"], batch_size=global_batch, shuffle=False, cache=True, **options
    )
    history = cb.read_history(run_dir / cb.HISTORY_FILE)
    history = [row for row in history if row["epoch"] <= done]
    guard = cb.NaNGuard()
    checkpoint = cb.ResumeCheckpoint(
        run_dir,
        monitor="val_miou",
        history=history,
        best_value=float(state["best_value"]) if state else -math.inf,
        best_epoch=int(state["best_epoch"]) if state else 0,
        nan_guard=guard,
        extra_state={"epochs": config.epochs},
    )
    tensorboard = cb.EpochScalars(run_dir / "logs")
    if done < config.epochs:
        from landslide_tf.distribute import prepare_multiworker_fit

        prepare_multiworker_fit(model, strategy, train_ds)  # issue 14: Keras 3 workaround
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            initial_epoch=done,
            callbacks=[guard, checkpoint, tensorboard],
            shuffle=False,  # the dataset reshuffles itself, seeded
            verbose=verbose,
        )
    if guard.nan_at is not None:
        epoch, batch = guard.nan_at
        raise TrainingDiverged(
            f"the training loss became NaN at epoch {epoch}, batch {batch} "
            f"(lr {config.lr:g}, loss {config.loss}): lower --lr or check the input data; "
            f"epochs 1..{epoch - 1} are kept in {run_dir}"
        )
    return config.epochs - done


def _plot_test_predictions(
    config: TrainConfig, run_dir: Path, test: list, options: dict[str, Any], n: int = 4
) -> None:
    from landslide_tf.data import make_dataset
    from landslide_tf.plots import plot_predictions
    from landslide_tf.runs import load_model_file

    tiles = test[:n]
    model = load_model_file(run_dir / cb.BEST_MODEL)
    x, y = next(iter(make_dataset(tiles, batch_size=len(tiles), cache=False, **options)))
    x = np.asarray(x)  # (n, H, W, C)
    prob = np.asarray(model(x, training=False), dtype=np.float32)  # (n, H, W, 1)
    images = x[..., :3] if config.modalities != "dem" else None
    dem_channel = {"rgb+dem": 3, "dem": 0}.get(config.modalities)
    dems = x[..., dem_channel] if dem_channel is not None else None
    plot_predictions(
        images,
        dems,
        np.asarray(y),
        {f"{config.model} ({config.loss})": prob},
        run_dir / "predictions.png",
        names=[s.stem for s in tiles],
    )
