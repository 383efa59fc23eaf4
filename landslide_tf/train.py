"""Train one model with the paper's defaults; resumable, seeded, with a test evaluation at the end.

Command line::

    python -m landslide_tf.train --model unetpp_spatial_ctx            # paper settings
    python -m landslide_tf.train --model unet --preset quick           # a few CPU minutes
    python -m landslide_tf.train --model resunet --loss focal --loss-kwargs alpha=0.25 gamma=2

Defaults (``--preset paper``) are ``TrainConfig``'s, i.e. the paper's: Adam with learning rate
1e-5, batch size 2, 50 epochs, 128x128 inputs, dropout 0.5, RGB + DEM, and the loss each
family did best with (U-Net: BCE, ResUNet: WCE, U-Net++ variants: Dice). ``--preset quick``
(64x64, 8 base filters, depth 3, batch 8, lr 1e-3, 8 epochs) runs in a couple of CPU minutes;
explicit flags override the preset.

The run directory (default ``runs/<model>-<loss>-s<seed>``) receives ``config.json``, the
split files, ``best.keras`` (highest validation mIoU), ``last.keras`` + ``state.json``
(resume), ``history.csv``, TensorBoard ``logs/``, ``loss_curve.png``, ``predictions.png`` and
``metrics.json`` (test split, ``best.keras``). Rerunning the same command resumes after the
last completed epoch; a finished run is not retrained (``--force`` starts over).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

from landslide_tf import callbacks as cb
from landslide_tf.config import DEM_NORMS, DERIVED_CHANNELS, MODALITIES, TrainConfig
from landslide_tf.errors import UserError
from landslide_tf.runs import (  # noqa: F401  (load_run re-exported: the documented name)
    CONFIG_FILE,
    SPLITS,
    dataset_options,
    load_run,
    read_run_config,
)

logger = logging.getLogger(__name__)

#: Named option sets; explicit command-line flags override them.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {
        "image_size": 64,
        "base_filters": 8,
        "depth": 3,
        "batch_size": 8,
        "lr": 1e-3,
        "epochs": 8,
    },
}

#: Config fields that may differ when resuming (they do not change what is learned).
RESUME_FREE_FIELDS = ("run_dir", "epochs", "strategy", "jit")

#: Files and folders of a run directory removed by ``--force``.
RUN_ARTIFACTS = (
    CONFIG_FILE,
    cb.STATE_FILE,
    cb.LAST_MODEL,
    cb.BEST_MODEL,
    cb.HISTORY_FILE,
    "loss_curve.png",
    "predictions.png",
    "logs",
)


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<model>-<loss>-s<seed>`` (relative to the working directory)."""
    config = config.resolved()
    return Path("runs") / f"{config.model}-{config.loss}-s{config.seed}"


def validate_config(config: TrainConfig) -> None:
    """Check names and ranges, raising a one-line ``UserError`` on the first problem."""
    from landslide_tf.losses import LOSSES
    from landslide_tf.models import MODELS

    if config.model not in MODELS:
        raise UserError(f"unknown model {config.model!r}; expected one of {', '.join(MODELS)}")
    if config.loss not in LOSSES:
        raise UserError(f"unknown loss {config.loss!r}; expected one of {', '.join(LOSSES)}")
    if config.modalities not in MODALITIES:
        raise UserError(
            f"unknown modalities {config.modalities!r}; expected one of {', '.join(MODALITIES)}"
        )
    if config.dem_norm not in DEM_NORMS:
        raise UserError(f"unknown --dem-norm {config.dem_norm!r}; expected {DEM_NORMS}")
    for name in config.derived:
        if name not in DERIVED_CHANNELS:
            raise UserError(f"unknown derived channel {name!r}; expected {DERIVED_CHANNELS}")
    try:
        config.channels  # noqa: B018  (validates modalities + derived)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    for field, value, low in (
        ("epochs", config.epochs, 1),
        ("batch size", config.batch_size, 1),
        ("base filters", config.base_filters, 1),
        ("depth", config.depth, 1),
        ("image size", config.image_size, 8),
    ):
        if value < low:
            raise UserError(f"{field} must be at least {low}, got {value}")
    if config.image_size % (2**config.depth):
        raise UserError(
            f"image size {config.image_size} is not divisible by {2**config.depth} "
            f"(depth {config.depth})"
        )
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise UserError(f"learning rate must be a positive number, got {config.lr}")
    if not 0.0 <= config.dropout < 1.0:
        raise UserError(f"dropout must be in [0, 1), got {config.dropout}")
    if not 0.0 <= config.threshold <= 1.0:
        raise UserError(f"threshold must be in [0, 1], got {config.threshold}")


def _resolve_data(data: str | None) -> Path:
    from landslide_tf import data as ldata

    if data is None:
        root = ldata.ensure_default_dataset()
        logger.info("using the synthetic dataset %s", root)
        return Path(root).resolve()
    path = Path(data).expanduser()
    if not path.exists():
        raise UserError(f"dataset {data} does not exist (give --data a Bijie folder or zip)")
    return Path(ldata.open_dataset(path)).resolve()


def _comparable(values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    out = {k: v for k, v in values.items() if k in names and k not in RESUME_FREE_FIELDS}
    auto = set(values.get("auto_loss_kwargs", ()))
    out["loss_kwargs"] = {k: v for k, v in (out.get("loss_kwargs") or {}).items() if k not in auto}
    out["derived"] = list(out.get("derived") or [])
    return out


def _check_same_config(run_dir: Path, new: dict[str, Any]) -> dict[str, Any]:
    _, stored = read_run_config(run_dir)
    old_c, new_c = _comparable(stored), _comparable(new)
    diff = [k for k in sorted(set(old_c) | set(new_c)) if old_c.get(k) != new_c.get(k)]
    if diff:
        details = ", ".join(f"{k}: {old_c.get(k)!r} -> {new_c.get(k)!r}" for k in diff)
        raise UserError(
            f"{run_dir} holds a run with a different config ({details}); use another "
            "--run-dir, the same options, or --force to overwrite it"
        )
    return stored


def _clear_run(run_dir: Path, split_dir: str | None) -> None:
    for name in RUN_ARTIFACTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in run_dir.glob("metrics*.json"):
        path.unlink()
    if split_dir is None:
        for split in SPLITS:
            (run_dir / f"{split}.txt").unlink(missing_ok=True)


def _parse_loss_kwargs(items: list[str] | None) -> dict[str, Any]:
    """``['{"alpha": 0.25}']`` or ``['alpha=0.25', 'gamma=2']`` -> dict (values JSON-parsed)."""
    if not items:
        return {}
    if len(items) == 1 and items[0].lstrip().startswith("{"):
        try:
            value = json.loads(items[0])
        except json.JSONDecodeError as exc:
            raise UserError(f"--loss-kwargs is not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise UserError("--loss-kwargs JSON must be an object")
        return value
    out: dict[str, Any] = {}
    for item in items:
        for part in item.split(",") if "[" not in item else [item]:
            if "=" not in part:
                raise UserError(f"--loss-kwargs expects key=value or JSON, got {part!r}")
            key, raw = part.split("=", 1)
            try:
                out[key.strip()] = json.loads(raw)
            except json.JSONDecodeError:
                out[key.strip()] = raw
    return out


def train(config: TrainConfig, *, force: bool = False, verbose: int | str = "auto") -> dict:
    """Train (or resume, or just report) one run and evaluate it on the test split.

    Args:
        config: the run configuration; ``loss=None`` is the paper's best loss for the family,
            ``data=None`` the synthetic dataset (generated on first use), ``run_dir=None``
            ``runs/<model>-<loss>-s<seed>``.
        force: delete an existing run in ``run_dir`` and train from scratch.
        verbose: Keras ``fit`` verbosity (1 = a progress bar per epoch).

    Returns:
        Test metrics of ``best.keras`` (also in ``run_dir/metrics.json``): ``miou`` (mean of
        background and landslide IoU), ``iou_background``, ``iou_landslide``, ``auc``,
        ``precision``, ``recall``, ``f1``, ``accuracy``, ``threshold``, ``n_tiles``, plus
        ``run_dir``, ``epochs_trained`` (this call) and ``resumed_from`` (epochs done before).

    Raises:
        UserError: bad options, missing data, a different run in ``run_dir``.
        TrainingDiverged: the loss became NaN or infinite.
    """
    config = config.resolved()
    validate_config(config)
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    run_dir = run_dir.expanduser().resolve()
    data_root = _resolve_data(config.data)
    config = dataclasses.replace(config, data=str(data_root), run_dir=str(run_dir))

    if force and run_dir.exists():
        logger.info("--force: clearing %s", run_dir)
        _clear_run(run_dir, config.split_dir)
    stored = None
    if (run_dir / CONFIG_FILE).is_file():
        stored = _check_same_config(run_dir, config.to_dict())
    state = cb.read_state(run_dir) if stored is not None else None
    done = int(state["epochs_done"]) if state else 0
    if done > config.epochs:
        raise UserError(
            f"{run_dir} already has {done} epochs, more than --epochs {config.epochs}; "
            "use --force to retrain"
        )
    if done == config.epochs and (run_dir / "metrics.json").is_file():
        logger.info("%s is already trained (%d epochs): reporting its metrics", run_dir, done)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return {**metrics, "run_dir": str(run_dir), "epochs_trained": 0, "resumed_from": done}

    from landslide_tf import distribute

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        splits, strategy, global_batch = _prepare_splits(config, data_root, run_dir)
    except UserError:
        if created:  # do not leave a half-made run directory behind a bad argument
            shutil.rmtree(run_dir, ignore_errors=True)
        raise

    if stored is not None:
        raw = stored
        loss_kwargs = dict(stored.get("loss_kwargs") or {})
    else:
        raw = _derived_entries(config, splits["train"])
        loss_kwargs = dict(config.loss_kwargs)
        if config.loss == "wce" and "class_weights" not in loss_kwargs:
            from landslide_tf.losses import wce_weights

            loss_kwargs["class_weights"] = [
                float(w) for w in wce_weights(raw["landslide_fraction"])
            ]
            raw["auto_loss_kwargs"] = ["class_weights"]
    raw.update({**config.to_dict(), "loss_kwargs": loss_kwargs})
    cb.atomic_write_json(run_dir / CONFIG_FILE, raw)
    options = dataset_options(config, raw)

    policy = distribute.apply_mixed_precision(config.mixed_precision)
    try:
        epochs_trained = _fit(
            config, run_dir, splits, options, loss_kwargs, strategy, global_batch, state, verbose
        )
    finally:
        if policy is not None:
            distribute.apply_mixed_precision(False)

    from landslide_tf.evaluate import evaluate_run
    from landslide_tf.plots import plot_loss_curves

    plot_loss_curves(
        {config.model: run_dir / cb.HISTORY_FILE},
        run_dir / "loss_curve.png",
        title=f"{config.model} ({config.loss})",
    )
    metrics = evaluate_run(run_dir, split="test")
    metrics.pop("file", None)
    _plot_test_predictions(config, run_dir, splits["test"], options)
    return {
        **metrics,
        "run_dir": str(run_dir),
        "epochs_trained": epochs_trained,
        "resumed_from": done,
    }


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


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m landslide_tf.train`` argument parser (unset options stay ``None``)."""
    d = TrainConfig()
    p = _Parser(
        prog="python -m landslide_tf.train",
        description="Train a U-Net-family landslide segmentation model (paper defaults).",
    )
    p.add_argument("--model", help=f"registry name (default {d.model})")
    p.add_argument(
        "--loss", help="bce, focal, dice, wce, ... (default: the paper's best per family)"
    )
    p.add_argument(
        "--loss-kwargs",
        nargs="+",
        metavar="K=V",
        help="loss options as key=value or JSON, e.g. alpha=0.25 gamma=2",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="paper",
        help="paper (default) or quick (a couple of CPU minutes); flags override it",
    )
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, help=f"per replica, default {d.batch_size}")
    p.add_argument("--lr", type=float, help=f"Adam learning rate, default {d.lr:g}")
    p.add_argument("--base-filters", type=int, help=f"default {d.base_filters}")
    p.add_argument("--depth", type=int, help=f"encoder levels, default {d.depth}")
    p.add_argument("--dropout", type=float, help=f"default {d.dropout}")
    p.add_argument("--image-size", type=int, help=f"default {d.image_size}")
    p.add_argument("--data", help="Bijie-layout folder or zip (default: synthetic, made once)")
    p.add_argument("--modalities", choices=MODALITIES, help=f"default {d.modalities}")
    p.add_argument(
        "--derived",
        nargs="*",
        choices=DERIVED_CHANNELS,
        help="extra DEM channels (beyond the paper)",
    )
    p.add_argument("--dem-norm", choices=DEM_NORMS, help=f"default {d.dem_norm}")
    p.add_argument("--negatives", help="off (default), on, or negatives per landslide tile")
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random flips/rotations (default off)",
    )
    p.add_argument("--split-dir", help="where split files are read/written (default: run dir)")
    p.add_argument("--seed", type=int, help=f"default {d.seed}")
    p.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="TF op determinism (slower)",
    )
    p.add_argument("--run-dir", help="default runs/<model>-<loss>-s<seed>")
    p.add_argument("--threshold", type=float, help=f"for test metrics, default {d.threshold}")
    p.add_argument(
        "--strategy",
        choices=("default", "mirrored", "multiworker", "tpu"),
        help="tf.distribute strategy (default: default)",
    )
    p.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mixed_float16 on GPU, mixed_bfloat16 elsewhere",
    )
    p.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA: compile(jit_compile=True)",
    )
    p.add_argument(
        "--force", action="store_true", help="retrain from scratch in an existing run dir"
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="Keras progress: 1 = a bar per epoch (default), 2 = a line per epoch",
    )
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig defaults, then the preset, then the flags given explicitly."""
    values = TrainConfig().to_dict()
    values.update(PRESETS[args.preset])
    for field in dataclasses.fields(TrainConfig):
        if field.name == "loss_kwargs":
            continue
        given = getattr(args, field.name, None)
        if given is not None:
            values[field.name] = list(given) if field.name == "derived" else given
    values["loss_kwargs"] = _parse_loss_kwargs(args.loss_kwargs)
    return TrainConfig.from_dict(values)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: train, then print the test metrics."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = config_from_args(args)
        result = train(config, force=args.force, verbose=args.verbose)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: rerun the same command to resume after the last completed epoch",
            file=sys.stderr,
        )
        return 130
    from landslide_tf.metrics import format_metrics

    run_dir = result["run_dir"]
    if result["epochs_trained"] == 0:
        print(
            f"{run_dir} was already trained ({result['resumed_from']} epochs); "
            "reporting its metrics (--force retrains)"
        )
    print(f"test metrics of {run_dir}/best.keras (metrics.json):")
    print(format_metrics(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
