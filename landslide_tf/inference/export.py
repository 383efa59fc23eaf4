"""Export a training run as a TensorFlow SavedModel that plain TensorFlow can serve.

The SavedModel needs neither landslide_tf nor Keras to load (``tf.saved_model.load``):

- ``serving_default``: raw inputs ``image`` (uint8 ``[N, H, W, 3]``) and ``dem`` (float32
  ``[N, H', W']``, any grid: it is resampled) of any size -> ``probability`` (float32
  ``[N, H, W]``) at the image size and ``mask`` (uint8 ``[N, H, W]``, 1 where
  ``probability >= threshold``: the run's tuned threshold if ``threshold.json`` exists,
  else its ``config.json`` one, unless ``--threshold`` overrides). The training preprocessing runs inside the graph: the
  traced ``landslide_tf.inference.core.raw_probability`` (resize to the training size, normalize,
  stack, network, bilinear resize back). RGB-only models take no ``dem``, DEM-only models no
  ``image`` (then the output is on the DEM grid).
- ``normalized``: ``inputs`` (float32 ``[N, S, S, C]``, already preprocessed at the training
  size ``S``) -> ``probability`` (float32 ``[N, S, S]``) and ``mask`` (uint8 ``[N, S, S]``).

Wrong dtypes are rejected by the signatures; wrong channel counts, ranks and mismatched
batch sizes fail inside the graph with a message (``tf.debugging`` asserts). NaN DEM cells
are always nodata (filled with the tile's valid mean); ``--dem-nodata V`` bakes one more
nodata value into the graph.

A model card (``assets/model_card.json`` and ``assets/MODEL_CARD.md``) records the model,
loss, channels, normalization, threshold, training data and test metrics.

Usage::

    python -m landslide_tf.export RUN_DIR --out DIR [--dem-nodata V] [--threshold T] [--overwrite]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from landslide_tf.cli.common import run_cli
from landslide_tf.errors import UserError
from landslide_tf.inference.core import InferenceSettings
from landslide_tf.inference.model_card import (  # noqa: F401  (re-exported: defined here before)
    _read_json,
    model_card,
    model_card_markdown,
    signature_summary,
)
from landslide_tf.inference.tta import add_tta_arg

logger = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    """``ServingModule`` and ``save_module`` (re-exported from ``landslide_tf.inference.serving``) load
    TensorFlow, so they are imported on first use: ``--help`` starts without it."""
    if name in ("ServingModule", "save_module"):
        from landslide_tf.inference import serving

        return getattr(serving, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def export_model(
    model: Any,
    settings: InferenceSettings,
    out: str | Path,
    *,
    card: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` with its preprocessing as a SavedModel.

    Args:
        model: a Keras model taking ``(N, S, S, C)`` normalized inputs.
        settings: the training preprocessing (and threshold, DEM nodata).
        out: output directory.
        card: model card dict (default: a minimal one from ``settings``).
        overwrite: replace an existing non-empty ``out``.
        tta: bake flip averaging into ``serving_default`` (default: the run's ``tta``).

    Returns:
        The output directory.
    """
    out = Path(out)
    replace = _check_out(out, overwrite)
    got = model.input_shape[-1]
    if got is not None and got != settings.channels:
        raise UserError(
            f"the model takes {got} channels but {settings.modalities} "
            f"(derived={list(settings.derived)}) gives {settings.channels}"
        )
    if card is None:
        card = model_card({}, settings, parameters=int(model.count_params()))
    from landslide_tf.inference.serving import ServingModule, save_module

    module = ServingModule(model, settings)
    out.parent.mkdir(parents=True, exist_ok=True)  # OSError: reported with its path
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        save_module(module, card, staging, model_card_markdown)
        if replace:  # an existing SavedModel (checked above), replaced on --overwrite
            shutil.rmtree(out)
        elif out.is_dir():
            out.rmdir()  # empty
        os.replace(staging, out)
    finally:
        if staging.exists():  # ours (mkdtemp above); only left by a failure
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote SavedModel %s", out)
    return out


def _check_out(out: Path, overwrite: bool) -> bool:
    """Refuse an ``--out`` that is a file, or a non-empty folder that --overwrite may not
    replace; True when an existing SavedModel is to be replaced."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; give a new or empty folder")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not overwrite:
        raise UserError(f"{out} exists and is not empty (use --overwrite)")
    if not (out / "saved_model.pb").is_file():
        raise UserError(
            f"{out} is not empty and not a SavedModel; --overwrite replaces only a "
            "SavedModel: choose another --out"
        )
    return True


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    dem_nodata: float | None = None,
    overwrite: bool = False,
    tta: bool | None = None,
    threshold: float | None = None,
    precision: str = "float32",
) -> Path:
    """Export a training run's best model as a SavedModel with a model card.

    Args:
        run_dir: a run directory (``config.json``, ``best.keras``, ``metrics.json``).
        out: output directory for the SavedModel.
        dem_nodata: a DEM value to treat as missing, baked into the graph.
        overwrite: replace an existing non-empty ``out``.
        tta: bake flip averaging into ``serving_default`` (default: the run's ``tta``).
        threshold: the threshold of the ``mask`` output and the model card (default: the
            run's, the tuned one when ``threshold.json`` exists).
        precision: the SavedModel's arithmetic: ``float32`` (default: runs on any
            hardware), ``bfloat16``, ``float16`` or ``auto`` (this machine's choice).

    Returns:
        The output directory.
    """
    from landslide_tf.inference.predictor import Predictor
    from landslide_tf.training.precision import model_precision

    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"--threshold must be in [0, 1], got {threshold}")

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json)")
    from landslide_tf.inference import band_export  # issue 13: multi-band runs take float32 bands

    if band_export.is_band_model(run_dir):
        return band_export.export_band_run(run_dir, out, overwrite=overwrite, threshold=threshold)
    predictor = Predictor.load(run_dir, nodata=dem_nodata, tta=tta, precision=precision)
    settings = predictor.settings
    if dem_nodata is not None:
        settings = dataclasses.replace(settings, nodata=float(dem_nodata))
    if threshold is not None:
        settings = dataclasses.replace(settings, threshold=float(threshold))
    from landslide_tf.training.runs import read_config_json

    config = read_config_json(run_dir / "config.json")
    config["exported_precision"] = model_precision(predictor.model)
    metrics = _read_json(run_dir / "metrics.json")
    model = predictor.model
    card = model_card(
        config,
        settings,
        metrics=metrics,
        run_dir=run_dir,
        parameters=int(model.count_params()),
    )
    return export_model(model, settings, out, card=card, overwrite=overwrite)


def describe(saved_model: str | Path) -> str:
    """One line per signature of a SavedModel: inputs and outputs with dtypes and shapes."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model))
    lines = []
    for name, fn in loaded.signatures.items():
        ins = ", ".join(
            f"{k}: {v.dtype.name}{v.shape.as_list()}"
            for k, v in sorted(fn.structured_input_signature[1].items())
        )
        outs = ", ".join(
            f"{k}: {v.dtype.name}{v.shape.as_list()}" for k, v in fn.structured_outputs.items()
        )
        lines.append(f"{name}({ins}) -> {outs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m landslide_tf.export",
        description="Write a run's best model as a TensorFlow SavedModel with preprocessing.",
    )
    parser.add_argument("run_dir", help="training run directory (config.json + best.keras)")
    parser.add_argument("--out", required=True, help="SavedModel directory to write")
    parser.add_argument(
        "--dem-nodata", type=float, default=None, help="DEM nodata value (NaN always is)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="threshold of the 'mask' output (default: the run's, tuned if threshold.json)",
    )
    add_tta_arg(parser)
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16",
                        "float16", "auto"), help="SavedModel arithmetic (default float32)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def body() -> int:
        out = export_run(
            args.run_dir,
            args.out,
            dem_nodata=args.dem_nodata,
            overwrite=args.overwrite,
            tta=args.tta,
            threshold=args.threshold,
            precision=args.precision,
        )
        print(f"wrote {out}")
        print(describe(out))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
