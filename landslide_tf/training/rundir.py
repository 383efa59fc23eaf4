"""Prepare a run directory before training: check the config, find the data, guard the run dir.

``landslide_tf.training.train`` calls these before fitting (see ``landslide_tf.training.fit``); reading a
finished run directory back is ``landslide_tf.training.runs``'s job. Nothing here builds a model.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

from landslide_tf.errors import DataError, UserError
from landslide_tf.metrics.thresholds import THRESHOLD_FILE, validate_threshold
from landslide_tf.training import runstate as cb
from landslide_tf.training.config import (
    DEM_NORMS,
    DERIVED_CHANNELS,
    MODALITIES,
    STRATEGIES,
    TrainConfig,
    config_differences,
    config_type_problem,
)
from landslide_tf.training.precision import LEGACY_MIXED, PRECISIONS
from landslide_tf.training.recipe import validate_recipe
from landslide_tf.training.runs import CONFIG_FILE, SPLITS, read_run_config

logger = logging.getLogger(__name__)

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
    THRESHOLD_FILE,  # issue 12: the tuned threshold
    "split_lists",  # issue 12: copies of given split lists
    "selection.txt",  # issue 20: the selection split carved from train
)


#: Run files (besides ``runstate``'s own) whose temporaries a killed write may leave.
TEMPORARY_NAMES = (*(name for name in RUN_ARTIFACTS if Path(name).suffix), "metrics*.json")


def remove_stale_run_temporaries(run_dir: Path) -> list[Path]:
    """Remove the temporary files of the run's files left in ``run_dir`` by a killed process
    (``runstate.remove_stale_temporaries``); a live process's are kept."""
    return cb.remove_stale_temporaries(run_dir, TEMPORARY_NAMES)


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<model>-<loss>-s<seed>`` (relative to the working directory)."""
    config = config.resolved()
    model = f"{config.model}_{config.encoder}" if config.encoder else config.model
    return Path("runs") / f"{model}-{config.loss}-s{config.seed}"


def validated(config: TrainConfig) -> TrainConfig:
    """The one check of a run configuration, before anything is written: field types, names,
    ranges, loss arguments, the recipe (optimiser, schedule, augmentation) and the encoder.

    Returns:
        The resolved config (``loss`` filled in), which the rest of the code trusts.

    Raises:
        UserError: one line naming the first bad setting.
    """
    problem = config_type_problem(config.to_dict())
    if problem is not None:
        raise UserError(f"bad setting: {problem}")
    config = config.resolved()
    validate_config(config)
    validate_recipe(config)
    from landslide_tf.training.selection import validate_selection

    validate_selection(config)
    return config


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
    from landslide_tf.data.bijie import parse_negatives

    try:
        parse_negatives(config.negatives)
    except DataError:
        raise UserError(
            f"unknown --negatives {config.negatives!r}; expected 'off', 'on' or a positive "
            "ratio such as 0.5 (negative tiles per landslide tile)"
        ) from None
    if config.dem_norm not in DEM_NORMS:
        raise UserError(f"unknown --dem-norm {config.dem_norm!r}; expected {DEM_NORMS}")
    for name in config.derived:
        if name not in DERIVED_CHANNELS:
            raise UserError(f"unknown derived channel {name!r}; expected {DERIVED_CHANNELS}")
    if config.strategy not in STRATEGIES:
        raise UserError(
            f"unknown strategy {config.strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    if config.precision not in (*PRECISIONS, LEGACY_MIXED):
        raise UserError(
            f"unknown precision {config.precision!r}; expected one of {', '.join(PRECISIONS)}"
        )
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
        ("steps per execution", config.steps_per_execution, 0),  # 0 = auto
    ):
        if value < low:
            raise UserError(f"{field} must be at least {low}, got {value}")
    if config.deep_supervision and (not config.model.startswith("unetpp") or config.encoder):
        raise UserError(
            f"--deep-supervision needs a U-Net++ model (unetpp*) with its own encoder, "
            f"not {config.model!r}"
            + (f" with --encoder {config.encoder}" if config.encoder else "")
        )
    if config.image_size % (2**config.depth):
        raise UserError(
            f"image size {config.image_size} is not divisible by {2**config.depth} "
            f"(depth {config.depth})"
        )
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise UserError(f"learning rate must be a positive number, got {config.lr}")
    if not 0.0 <= config.dropout < 1.0:
        raise UserError(f"dropout must be in [0, 1), got {config.dropout}")
    validate_threshold(config.threshold)
    if isinstance(config.seed, bool) or not isinstance(config.seed, int):
        raise UserError(f"seed must be an integer, got {config.seed!r}")
    if not 0 <= config.seed < 2**32:
        raise UserError(f"seed must be in [0, 2**32 - 1], got {config.seed}")
    if config.dem_nodata is not None and not math.isfinite(config.dem_nodata):
        raise UserError(f"--dem-nodata must be a finite number, got {config.dem_nodata}")
    if config.pixel_size is not None and not (
        math.isfinite(config.pixel_size) and config.pixel_size > 0
    ):
        raise UserError(f"--pixel-size must be a positive number, got {config.pixel_size}")
    check_loss(config.loss, config.loss_kwargs)
    validate_finetune(config)
    from landslide_tf.training.encoder_phases import validate_encoder_config

    validate_encoder_config(config)


def validate_finetune(config: TrainConfig) -> None:
    """``--finetune-loss`` and ``--finetune-epochs``: both or neither, a known loss, fewer
    epochs than the run."""
    from landslide_tf.losses import LOSSES

    loss, n = config.finetune_loss, config.finetune_epochs
    if not loss and not n:
        return
    if not loss or n < 1:
        raise UserError("--finetune-loss and --finetune-epochs N (N >= 1) go together")
    if loss not in LOSSES:
        raise UserError(f"unknown --finetune-loss {loss!r}; expected one of {', '.join(LOSSES)}")
    if n >= config.epochs:
        raise UserError(
            f"--finetune-epochs {n} must be fewer than --epochs {config.epochs} "
            "(the fine-tuning refines a trained model)"
        )


def check_loss(name: str, kwargs: dict[str, Any]) -> None:
    """Build the loss once, so bad ``--loss-kwargs`` fail before anything is written."""
    from landslide_tf.losses import get_loss

    try:
        get_loss(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad --loss-kwargs for {name}: {exc}") from None


def resolve_data(data: str | None) -> Path:
    from landslide_tf import data as ldata

    if data is None:
        root = ldata.ensure_default_dataset()
        logger.info("using the synthetic dataset %s", root)
        return Path(root).resolve()
    path = Path(data).expanduser()
    if not path.exists():
        raise UserError(f"dataset {data} does not exist (give --data a Bijie folder or zip)")
    return Path(ldata.open_dataset(path)).resolve()


def check_same_config(run_dir: Path, new: dict[str, Any]) -> dict[str, Any]:
    """The stored config of ``run_dir``; ``UserError`` naming the differences if it holds
    another run than ``new`` describes."""
    _, stored = read_run_config(run_dir)
    diff = config_differences(stored, new)
    if diff:
        details = ", ".join(diff)
        raise UserError(
            f"{run_dir} holds a run with a different config ({details}); use another "
            "--run-dir, the same options, or --force to overwrite it"
        )
    return stored


def is_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run of this package (its ``config.json`` or ``state.json``)."""
    return (run_dir / CONFIG_FILE).is_file() or (run_dir / cb.STATE_FILE).is_file()


def run_to_clear(run_dir: Path) -> bool:
    """Whether ``--force`` has a run to clear in ``run_dir``.

    Args:
        run_dir: the run directory asked for.

    Returns:
        True when it holds a run (``is_run``); False when it is missing or empty (but for
        the run lock).

    Raises:
        UserError: it is a folder that holds files but no run: they are not this package's
            to delete.
    """
    if is_run(run_dir):
        return True
    if not run_dir.exists():
        return False
    if run_dir.is_dir() and all(p.name == cb.LOCK_FILE for p in run_dir.iterdir()):
        return False  # empty but for the lock ``train`` holds
    raise UserError(
        f"--force clears a run, but {run_dir} holds none (no {CONFIG_FILE} or "
        f"{cb.STATE_FILE}) and is not empty: nothing was deleted; use a new or empty "
        "--run-dir, or drop --force"
    )


def clear_run(run_dir: Path, split_dir: str | None) -> None:
    """Delete the files of the run in ``run_dir`` (``--force``); callers check ``run_to_clear``
    first. Its split lists go too unless they live in ``split_dir``, and so do the temporary
    files a killed save left (``remove_stale_run_temporaries``)."""
    for name in RUN_ARTIFACTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for path in [*run_dir.glob("metrics*.json"), *cb.checkpoint_files(run_dir)]:
        path.unlink()
    remove_stale_run_temporaries(run_dir)
    if split_dir is None:
        for split in SPLITS:
            (run_dir / f"{split}.txt").unlink(missing_ok=True)
