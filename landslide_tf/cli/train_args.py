"""The ``python -m landslide_tf.train`` command line: presets, flags and the config they give.

``PRESETS`` (``paper``, ``quick``, ``strong``), ``build_parser`` (unset options stay
``None``) and ``config_from_args``: ``TrainConfig`` defaults, then the preset, then the flags
given explicitly. No TensorFlow import: ``--help`` stays fast. ``landslide_tf.training.train``
re-exports every name here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from landslide_tf.data.formats import add_data_format_args
from landslide_tf.errors import UserError
from landslide_tf.training.acceleration import add_speed_args
from landslide_tf.training.config import DEM_NORMS, DERIVED_CHANNELS, MODALITIES, TrainConfig
from landslide_tf.training.encoder_phases import add_encoder_args as _add_encoder_args
from landslide_tf.training.encoder_phases import apply_encoder_defaults
from landslide_tf.training.precision import precision_from_args
from landslide_tf.training.recipe import STRONG, add_recipe_args

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
        # A slope channel and light dropout let 8 small epochs tell landslide scars (steep)
        # from the bare-soil look-alikes on flat ground: test precision 0.68 -> 0.82 on the
        # synthetic set at the same CPU time (docs/readme_training.md).
        "derived": ["slope"],
        "dropout": 0.1,
    },
    "strong": STRONG,
}


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
        help="paper (default), quick (a couple of CPU minutes) or strong (real imagery: "
        "augmentation, AdamW + cosine, TTA, tuned threshold); flags override it",
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
    add_speed_args(p)  # issue 14: --precision, --mixed-precision, --steps-per-execution
    p.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA: compile(jit_compile=True)",
    )
    _add_encoder_args(p)
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
    """TrainConfig defaults, then the preset, then the flags given explicitly."""
    values = TrainConfig().to_dict()
    values.update(PRESETS[args.preset])
    for field in dataclasses.fields(TrainConfig):
        if field.name == "loss_kwargs":
            continue
        given = getattr(args, field.name, None)
        if given is not None:
            values[field.name] = list(given) if field.name == "derived" else given
    if values.get("modalities") == "rgb" and getattr(args, "derived", None) is None:
        values["derived"] = []  # a preset's DEM-derived channels need a DEM; RGB runs drop them
    values["loss_kwargs"] = _parse_loss_kwargs(args.loss_kwargs)
    apply_encoder_defaults(values, args)
    values["precision"] = precision_from_args(args) or values["precision"]
    return TrainConfig.from_dict(values)


def _add_faults_args(p: argparse.ArgumentParser) -> None:
    """Issue 15: input-repair options (stored in config.json, applied by every tool)."""
    p.add_argument(
        "--dem-nodata",
        type=float,
        help="DEM value marking missing cells, e.g. 65535 or -9999 (NaN always is); filled "
        "with the tile's valid mean before resampling and left out of the DEM statistics",
    )
