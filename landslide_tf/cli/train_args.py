"""The ``python -m landslide_tf.train`` command line: presets, flags and the config they give.

``PRESETS`` (``paper``, ``quick``, ``strong``, ``fast``), ``build_parser`` (unset options stay
``None``) and ``config_from_args``: ``TrainConfig`` defaults, then the preset, then the flags
given explicitly, merged by ``landslide_tf.training.recipe.preset_config`` as the notebooks'
are. No TensorFlow import: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from landslide_tf.cli.common import ArgumentParser, add_precision_args, precision_from_args
from landslide_tf.data.formats import add_data_format_args
from landslide_tf.errors import UserError
from landslide_tf.training.acceleration import SMALL_BATCH
from landslide_tf.training.config import (
    DEM_NORMS,
    DERIVED_CHANNELS,
    MODALITIES,
    STRATEGIES,
    TrainConfig,
)
from landslide_tf.training.recipe import (
    AUGMENT_POLICIES,
    OPTIMIZER_NAMES,
    PRESETS,
    SCHEDULE_NAMES,
    TEST_SPLITS,
    TTA_TRANSFORM_NAMES,
    preset_config,
)


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


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m landslide_tf.train`` argument parser (unset options stay ``None``)."""
    d = TrainConfig()
    p = ArgumentParser(
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
        help="paper (default), quick (a couple of CPU minutes), strong (real imagery: "
        "augmentation, AdamW + cosine, TTA, tuned threshold) or fast (strong's choices on a "
        "depth-3 U-Net for 30 epochs: under a third of strong's CPU time, lower F1); flags "
        "override it",
    )
    p.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    p.add_argument("--batch-size", type=int, help=f"per replica, default {d.batch_size}")
    p.add_argument("--lr", type=float, help=f"Adam learning rate, default {d.lr:g}")
    p.add_argument("--base-filters", type=int, help=f"default {d.base_filters}")
    p.add_argument("--depth", type=int, help=f"encoder levels, default {d.depth}")
    p.add_argument("--dropout", type=float, help=f"default {d.dropout}")
    p.add_argument(
        "--deep-supervision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="U-Net++ only: a 1x1 head on every first-row decoder node, the output (and the "
        "loss) on their mean (default off)",
    )
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
        choices=STRATEGIES,
        help="tf.distribute strategy (default: default)",
    )
    add_speed_args(p)  # issue 14: --precision, --mixed-precision, --steps-per-execution
    p.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA: compile(jit_compile=True)",
    )
    add_encoder_args(p)
    p.add_argument(
        "--force", action="store_true", help="retrain from scratch in an existing run dir"
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="Keras progress: 1 = a bar per epoch (default on a terminal), 2 = a line per epoch "
        "(default otherwise) and every file behind a summarised data note",
    )
    _add_faults_args(p)
    add_recipe_args(p)
    add_data_format_args(p)  # issue 13
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig defaults, then the preset, then the flags given explicitly (``preset_config``)."""
    given = {
        field.name: getattr(args, field.name, None)
        for field in dataclasses.fields(TrainConfig)
        if field.name not in ("loss_kwargs", "precision")
    }
    if given["derived"] is not None:
        given["derived"] = list(given["derived"])
    return preset_config(
        args.preset,
        **given,
        loss_kwargs=_parse_loss_kwargs(args.loss_kwargs),
        precision=precision_from_args(args),
    )


def _add_faults_args(p: argparse.ArgumentParser) -> None:
    """Issue 15: input-repair options (stored in config.json, applied by every tool)."""
    p.add_argument(
        "--dem-nodata",
        type=float,
        help="DEM value marking missing cells, e.g. 65535 or -9999 (NaN always is); filled "
        "with the tile's valid mean before resampling and left out of the DEM statistics",
    )
    p.add_argument(
        "--pixel-size",
        type=float,
        metavar="METRES",
        help="ground size of a DEM pixel, in the DEM's elevation unit, for --derived slope: "
        "slope in true degrees whatever the tile's size (default: per working pixel)",
    )


def add_recipe_args(p: argparse.ArgumentParser) -> None:
    """The issue-12 flags of ``python -m landslide_tf.train`` (unset ones stay None)."""
    d = TrainConfig()
    p.add_argument(
        "--test-split",
        choices=TEST_SPLITS,
        help="split scored after training (default test; skipped with a note if absent)",
    )
    p.add_argument(
        "--augment-policy",
        choices=AUGMENT_POLICIES,
        help=f"with --augment: {d.augment_policy} (default) or strong (+jitter, RGB colour)",
    )
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, help=f"default {d.optimizer}")
    p.add_argument("--weight-decay", type=float, help="AdamW decoupled weight decay (default 0)")
    p.add_argument("--lr-schedule", choices=SCHEDULE_NAMES, help=f"default {d.lr_schedule}")
    p.add_argument("--warmup-epochs", type=float, help="linear warm-up before the cosine decay")
    p.add_argument(
        "--ema",
        type=float,
        metavar="MOMENTUM",
        help="keep a moving average of the weights (e.g. 0.99) for validation, best.keras and "
        "the final model (default 0: off)",
    )
    p.add_argument(
        "--finetune-loss",
        metavar="LOSS",
        help="train the last --finetune-epochs epochs with this loss instead, e.g. lovasz_hinge "
        "(same optimizer, its schedule goes on; default: off)",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        metavar="N",
        help="how many final epochs --finetune-loss trains (default 0)",
    )
    p.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="flip-averaged evaluation, stored in the run for predict/export (default off)",
    )
    p.add_argument(
        "--tta-transforms",
        choices=TTA_TRANSFORM_NAMES,
        help="what --tta averages: flips (4 passes, default) or dihedral (8: the flips of "
        "the tile and of its transpose)",
    )
    p.add_argument(
        "--tune-threshold",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after training, tune the threshold on val and store it in the run",
    )
    p.add_argument(
        "--select-from-train",
        type=float,
        metavar="FRACTION",
        help="honest protocol for train+val split lists: carve a seeded selection split of "
        "FRACTION of train (checkpoint and threshold chosen there) and score the given val "
        "once, as 'val (untouched)' (default off)",
    )
    p.add_argument(
        "--select-seed",
        type=int,
        metavar="N",
        help="seed of the --select-from-train selection (default 0; independent of --seed)",
    )


def add_speed_args(parser: argparse.ArgumentParser) -> None:
    """``--precision``/``--mixed-precision`` and ``--steps-per-execution`` for ``train``."""
    add_precision_args(parser)
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        default=None,
        help="training steps per compiled call (default 0 = auto: several on GPU/TPU at "
        f"global batch <= {SMALL_BATCH}, else 1)",
    )


def add_encoder_args(p: argparse.ArgumentParser) -> None:
    """The ``--encoder``, ``--encoder-weights`` and ``--freeze-encoder-epochs`` flags."""
    p.add_argument(
        "--encoder",
        help="pretrained keras-hub encoder for unet*/unetpp*: resnet18, resnet50, "
        "efficientnet_b0 (default: none; needs pip install landslide_tf[encoders])",
    )
    p.add_argument(
        "--encoder-weights",
        metavar="imagenet|none|PATH",
        help="imagenet (default; fetched once and cached), none (random), a keras-hub "
        "preset folder or a .weights.h5 file",
    )
    p.add_argument(
        "--freeze-encoder-epochs",
        type=int,
        metavar="N",
        help="train the decoder first: the encoder stays frozen for N epochs (default 0)",
    )
