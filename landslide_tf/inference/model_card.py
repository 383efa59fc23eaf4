"""The model card of an exported SavedModel: what it is, how it preprocesses, how it scored.

``landslide_tf.inference.export`` writes it as ``assets/model_card.json`` and ``assets/MODEL_CARD.md``;
``Predictor.from_saved_model`` reads the JSON back for the preprocessing settings.
"""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path
from typing import Any

from landslide_tf import __version__
from landslide_tf.inference.core import InferenceSettings

logger = logging.getLogger(__name__)

_IMAGE_NORMALIZATION = (
    "uint8 RGB / 255 -> [0, 1], bilinear (antialiased) resize to the training size"
)
_DEM_NORMALIZATION = {
    "minmax": "per tile: (dem - min) / (max - min) -> [0, 1] (flat tile -> 0)",
    "dataset": "(dem - mean) / std with the training split's DEM statistics",
}


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
        from landslide_tf.training.config import default_loss_for

        loss = default_loss_for(str(config["model"]))
    import tensorflow as tf

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


def mask_summary(settings: Any, size: int | None = None) -> str:
    """The ``mask`` output of a signature: shape, dtype and the threshold baked in."""
    shape = "[N, H, W]" if size is None else f"[N, {size}, {size}]"
    return f"uint8 {shape}: 1 where probability >= {settings.threshold:g}, else 0"


def signature_summary(settings: InferenceSettings) -> dict[str, Any]:
    """Human-readable description of the two signatures."""
    inputs = {}
    if settings.uses_image:
        inputs["image"] = "uint8 [N, H, W, 3] RGB"
    if settings.uses_dem:
        inputs["dem"] = "float32 [N, H', W'] elevation on any grid (NaN = nodata)"
    size, channels = settings.image_size, settings.channels
    return {
        "serving_default": {
            "inputs": inputs,
            "outputs": {"probability": "float32 [N, H, W]", "mask": mask_summary(settings)},
        },
        "normalized": {
            "inputs": {"inputs": f"float32 [N, {size}, {size}, {channels}] normalized"},
            "outputs": {
                "probability": f"float32 [N, {size}, {size}]",
                "mask": mask_summary(settings, size),
            },
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
        f"- decision threshold: {card['threshold']} (the SavedModel's `mask` output: 1 where "
        "probability >= threshold)",
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
