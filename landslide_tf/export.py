"""Export a training run as a TensorFlow SavedModel that plain TensorFlow can serve.

The SavedModel needs neither landslide_tf nor Keras to load (``tf.saved_model.load``):

- ``serving_default``: raw inputs ``image`` (uint8 ``[N, H, W, 3]``) and ``dem`` (float32
  ``[N, H', W']``, any grid: it is resampled) of any size -> ``probability`` (float32
  ``[N, H, W]``) at the image size. The training preprocessing runs inside the graph: the
  traced ``landslide_tf.inference.raw_probability`` (resize to the training size, normalize,
  stack, network, bilinear resize back). RGB-only models take no ``dem``, DEM-only models no
  ``image`` (then the output is on the DEM grid).
- ``normalized``: ``inputs`` (float32 ``[N, S, S, C]``, already preprocessed at the training
  size ``S``) -> ``probability`` (float32 ``[N, S, S]``).

Wrong dtypes are rejected by the signatures; wrong channel counts, ranks and mismatched
batch sizes fail inside the graph with a message (``tf.debugging`` asserts). NaN DEM cells
are always nodata (filled with the tile's valid mean); ``--dem-nodata V`` bakes one more
nodata value into the graph.

A model card (``assets/model_card.json`` and ``assets/MODEL_CARD.md``) records the model,
loss, channels, normalization, threshold, training data and test metrics.

Usage::

    python -m landslide_tf.export RUN_DIR --out DIR [--dem-nodata V] [--overwrite]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import tensorflow as tf

from landslide_tf import __version__
from landslide_tf.errors import UserError
from landslide_tf.inference import (
    MODEL_CARD_JSON,
    MODEL_CARD_MD,
    InferenceSettings,
    input_signature,
    raw_probability,
)

logger = logging.getLogger(__name__)

_IMAGE_NORMALIZATION = (
    "uint8 RGB / 255 -> [0, 1], bilinear (antialiased) resize to the training size"
)
_DEM_NORMALIZATION = {
    "minmax": "per tile: (dem - min) / (max - min) -> [0, 1] (flat tile -> 0)",
    "dataset": "(dem - mean) / std with the training split's DEM statistics",
}


class ServingModule(tf.Module):
    """A Keras model plus its preprocessing, with the two serving functions.

    Attributes:
        model: the Keras network (its variables are what the SavedModel stores).
        serving_default: raw inputs -> ``{"probability": (N, H, W)}``.
        normalized: ``inputs`` ``(N, S, S, C)`` -> ``{"probability": (N, S, S)}``.
    """

    def __init__(self, model: Any, settings: InferenceSettings) -> None:
        super().__init__(name="landslide_tf_serving")
        self.model = model
        self._settings = settings

        def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
            named = dict(zip([s.name for s in input_signature(settings)], args, strict=True))
            prob = raw_probability(
                lambda x: self.model(x, training=False),
                named.get("image"),
                named.get("dem"),
                settings,
            )
            return {"probability": tf.identity(prob, name="probability")}

        size, channels = settings.image_size, settings.channels

        def normalized(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            prob = tf.cast(self.model(inputs, training=False), tf.float32)[..., 0]
            return {"probability": tf.identity(prob, name="probability")}

        self.serving_default = tf.function(serve, input_signature=input_signature(settings))
        self.normalized = tf.function(
            normalized,
            input_signature=[tf.TensorSpec([None, size, size, channels], tf.float32, "inputs")],
        )


def _count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        logger.warning("ignoring unreadable %s", path)
        return None


def model_card(
    config: dict[str, Any],
    settings: InferenceSettings,
    *,
    metrics: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    parameters: int | None = None,
) -> dict[str, Any]:
    """The model card as a JSON-ready dict.

    Args:
        config: the run's ``config.json`` contents.
        settings: the preprocessing baked into the export.
        metrics: the run's ``metrics.json`` (test metrics), if any.
        run_dir: the run directory (for split sizes and provenance).
        parameters: the network's parameter count.
    """
    run = Path(run_dir) if run_dir is not None else None
    split = {
        name: _count_lines(run / f"{name}.txt") if run is not None else None
        for name in ("train", "val", "test")
    }
    loss = config.get("loss")
    if loss is None and config.get("model"):
        from landslide_tf.config import default_loss_for

        loss = default_loss_for(str(config["model"]))
    return {
        "format": "landslide_tf model card 1",
        "landslide_tf_version": __version__,
        "tensorflow_version": tf.__version__,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run) if run is not None else None,
        "model": {
            "name": config.get("model"),
            "base_filters": config.get("base_filters"),
            "depth": config.get("depth"),
            "dropout": config.get("dropout"),
            "parameters": parameters,
        },
        "loss": {"name": loss, "kwargs": config.get("loss_kwargs") or {}},
        "channels": settings.channel_names,
        "normalization": {
            "image_size": settings.image_size,
            "image": _IMAGE_NORMALIZATION if settings.uses_image else None,
            "dem": _DEM_NORMALIZATION.get(settings.dem_norm) if settings.uses_dem else None,
            "dem_norm": settings.dem_norm,
            "dem_stats": list(settings.dem_stats) if settings.dem_stats else None,
            "dem_nodata": settings.nodata,
            "derived": list(settings.derived),
            "output": "probabilities resized bilinearly back to the input size",
        },
        "threshold": settings.threshold,
        "training_data": {
            "data": config.get("data"),
            "modalities": settings.modalities,
            "negatives": config.get("negatives"),
            "augment": config.get("augment"),
            "split_sizes": split,
            "epochs": config.get("epochs"),
            "batch_size": config.get("batch_size"),
            "lr": config.get("lr"),
            "seed": config.get("seed"),
        },
        "test_metrics": metrics,
        "signatures": signature_summary(settings),
        "settings": settings.to_dict(),
        "config": config,
    }


def signature_summary(settings: InferenceSettings) -> dict[str, Any]:
    """Human-readable description of the two signatures."""
    inputs = {}
    if settings.uses_image:
        inputs["image"] = "uint8 [N, H, W, 3] RGB"
    if settings.uses_dem:
        inputs["dem"] = "float32 [N, H', W'] elevation on any grid (NaN = nodata)"
    size, channels = settings.image_size, settings.channels
    return {
        "serving_default": {"inputs": inputs, "outputs": {"probability": "float32 [N, H, W]"}},
        "normalized": {
            "inputs": {"inputs": f"float32 [N, {size}, {size}, {channels}] normalized"},
            "outputs": {"probability": f"float32 [N, {size}, {size}]"},
        },
    }


def model_card_markdown(card: dict[str, Any]) -> str:
    """Render the model card dict as Markdown."""
    m, norm, data = card["model"], card["normalization"], card["training_data"]
    lines = [
        f"# Model card: {m['name']}",
        "",
        f"Exported by landslide_tf {card['landslide_tf_version']} "
        f"(TensorFlow {card['tensorflow_version']}) on {card['exported']}.",
        "",
        "## Model",
        f"- architecture: `{m['name']}`, base filters {m['base_filters']}, depth {m['depth']}, "
        f"dropout {m['dropout']}, {m['parameters']} parameters",
        f"- loss: `{card['loss']['name']}` {card['loss']['kwargs'] or ''}".rstrip(),
        f"- decision threshold: {card['threshold']}",
        "",
        "## Inputs and normalization",
        f"- channels: {', '.join(card['channels'])}",
        f"- training size: {norm['image_size']} x {norm['image_size']}",
    ]
    if norm["image"]:
        lines.append(f"- image: {norm['image']}")
    if norm["dem"]:
        extra = (
            f" and cells equal to {norm['dem_nodata']}" if norm["dem_nodata"] is not None else ""
        )
        lines.append(f"- DEM: {norm['dem']}; NaN cells{extra} are nodata (filled with the mean)")
        if norm["dem_stats"]:
            lines.append(f"- DEM statistics (mean, std): {norm['dem_stats']}")
    if norm["derived"]:
        lines.append(f"- derived channels: {', '.join(norm['derived'])}")
    lines += ["", "## Signatures"]
    for name, sig in card["signatures"].items():
        ins = ", ".join(f"`{k}` {v}" for k, v in sig["inputs"].items())
        outs = ", ".join(f"`{k}` {v}" for k, v in sig["outputs"].items())
        lines.append(f"- `{name}`: {ins} -> {outs}")
    lines += [
        "",
        "## Training data",
        f"- data: {data['data']}",
        f"- modalities: {data['modalities']}, negatives: {data['negatives']}, "
        f"augment: {data['augment']}",
        f"- split sizes (tiles): {data['split_sizes']}",
        f"- epochs {data['epochs']}, batch size {data['batch_size']}, lr {data['lr']}, "
        f"seed {data['seed']}",
        "",
        "## Test metrics",
    ]
    metrics = card["test_metrics"]
    if metrics:
        for key, value in metrics.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            lines.append(f"- {key}: {shown}")
    else:
        lines.append("- none recorded (no metrics.json in the run)")
    return "\n".join(lines) + "\n"


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

    Returns:
        The output directory.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"{out} exists and is not empty (use --overwrite)")
        shutil.rmtree(out)
    got = model.input_shape[-1]
    if got is not None and got != settings.channels:
        raise UserError(
            f"the model takes {got} channels but {settings.modalities} "
            f"(derived={list(settings.derived)}) gives {settings.channels}"
        )
    if card is None:
        card = model_card({}, settings, parameters=int(model.count_params()))
    module = ServingModule(model, settings)
    with tempfile.TemporaryDirectory() as tmp:
        card_json = Path(tmp) / MODEL_CARD_JSON
        card_md = Path(tmp) / MODEL_CARD_MD
        card_json.write_text(json.dumps(card, indent=2, default=str) + "\n")
        card_md.write_text(model_card_markdown(card))
        module.model_card_json = tf.saved_model.Asset(str(card_json))
        module.model_card_md = tf.saved_model.Asset(str(card_md))
        tf.saved_model.save(
            module,
            str(out),
            signatures={
                "serving_default": module.serving_default.get_concrete_function(),
                "normalized": module.normalized.get_concrete_function(),
            },
        )
    logger.info("wrote SavedModel %s", out)
    return out


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    dem_nodata: float | None = None,
    overwrite: bool = False,
    precision: str = "float32",
) -> Path:
    """Export a training run's best model as a SavedModel with a model card.

    Args:
        run_dir: a run directory (``config.json``, ``best.keras``, ``metrics.json``).
        out: output directory for the SavedModel.
        dem_nodata: a DEM value to treat as missing, baked into the graph.
        overwrite: replace an existing non-empty ``out``.
        precision: the SavedModel's arithmetic: ``float32`` (default: runs on any
            hardware), ``bfloat16``, ``float16`` or ``auto`` (this machine's choice).

    Returns:
        The output directory.
    """
    from landslide_tf.precision import model_precision
    from landslide_tf.predictor import Predictor

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json)")
    predictor = Predictor.load(run_dir, nodata=dem_nodata, precision=precision)
    settings = predictor.settings
    if dem_nodata is not None:
        settings = dataclasses.replace(settings, nodata=float(dem_nodata))
    config = json.loads((run_dir / "config.json").read_text())
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
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16",
                        "float16", "auto"), help="SavedModel arithmetic (default float32)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = export_run(args.run_dir, args.out, dem_nodata=args.dem_nodata,
                         overwrite=args.overwrite, precision=args.precision)  # fmt: skip
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    print(describe(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
