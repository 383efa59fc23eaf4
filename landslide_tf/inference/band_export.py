"""Export a multi-band run (``l4s``, ``folder``) as a SavedModel plain TensorFlow can serve.

``landslide_tf.inference.export.export_run`` hands multi-band runs here. Signatures:

- ``serving_default``: ``image`` float32 ``[N, H, W, bands]`` in the user's units (the run's
  bands in its order; NaN = nodata) -> ``probability`` float32 ``[N, H, W]`` and ``mask``
  uint8 ``[N, H, W]`` (1 at or above the run's threshold). The per-band
  normalisation with the training statistics, the resize to the training size and back run
  inside the graph (the traced ``landslide_tf.inference.band_inference.band_probability``).
- ``normalized``: ``inputs`` float32 ``[N, S, S, bands]`` already normalised -> ``probability``, ``mask``.

The model card (``assets/model_card.json``, ``assets/MODEL_CARD.md``) lists the bands and
their normalisation parameters.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf

from landslide_tf.errors import UserError
from landslide_tf.inference.band_inference import (  # is_band_model: used by export.export_run
    BandPredictor,
    BandSettings,
    band_probability,
    band_signature,
    is_band_model,
)
from landslide_tf.inference.export import _read_json, model_card, model_card_markdown
from landslide_tf.inference.model_card import mask_summary
from landslide_tf.inference.serving import save_module, serving_outputs

logger = logging.getLogger(__name__)

__all__ = ["BandServingModule", "band_model_card", "export_band_run", "is_band_model"]

_NORMALIZATION = {
    "standard": "(x - mean) / std per band, training-split statistics",
    "percentile": "clip((x - p2) / (p98 - p2), 0, 1) per band, training-split percentiles",
}


class BandServingModule(tf.Module):
    """A multi-band Keras model plus its preprocessing, with the two serving functions."""

    def __init__(self, model: Any, settings: BandSettings) -> None:
        super().__init__(name="landslide_tf_band_serving")
        self.model = model

        def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
            prob = band_probability(lambda x: self.model(x, training=False), image, settings)
            return serving_outputs(prob, settings.threshold)

        def normalized(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            prob = tf.cast(self.model(inputs, training=False), tf.float32)[..., 0]
            return serving_outputs(prob, settings.threshold)

        size, channels = settings.image_size, settings.channels
        self.serving_default = tf.function(serve, input_signature=band_signature(settings))
        self.normalized = tf.function(
            normalized,
            input_signature=[tf.TensorSpec([None, size, size, channels], tf.float32, "inputs")],
        )


def band_model_card(
    config: dict[str, Any], settings: BandSettings, **kwargs: Any
) -> dict[str, Any]:
    """``export.model_card`` with the band list, the normalisation and the band signature."""
    card = model_card(config, settings, **kwargs)
    norm = settings.band_norm
    size, channels = settings.image_size, settings.channels
    card["normalization"] = {
        "image_size": size,
        "image": f"{_NORMALIZATION[norm['method']]}; NaN -> 0; bilinear resize to {size} px",
        "dem": None,
        "dem_norm": None,
        "dem_stats": None,
        "dem_nodata": None,
        "derived": [],
        "bands": list(settings.bands),
        "band_norm": norm["method"],
        "band_params": {b: p for b, p in zip(settings.bands, norm["params"], strict=True)},
        "output": "probabilities resized bilinearly back to the input size",
    }
    card["training_data"]["modalities"] = f"{settings.data_format}: {', '.join(settings.bands)}"
    card["signatures"] = {
        "serving_default": {
            "inputs": {
                "image": f"float32 [N, H, W, {channels}] bands {', '.join(settings.bands)} "
                "in the training data's units (NaN = nodata)"
            },
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
    return card


def _markdown(card: dict[str, Any]) -> str:
    lines = [model_card_markdown(card), "## Bands and normalisation", ""]
    lines.append("| band | a (mean or p2) | b (std or p98) |")
    lines.append("|---|---|---|")
    for band, (a, b) in card["normalization"]["band_params"].items():
        lines.append(f"| {band} | {a:.6g} | {b:.6g} |")
    return "\n".join(lines) + "\n"


def export_band_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    threshold: float | None = None,
) -> Path:
    """Write a multi-band run's ``best.keras`` with its preprocessing as a SavedModel.

    ``threshold`` (default: the run's, tuned if ``threshold.json`` exists) sets the ``mask``
    output and the model card's threshold.
    """
    run_dir, out = Path(run_dir), Path(out)
    predictor = BandPredictor.load(run_dir)  # validates the settings before writing
    settings, model = predictor.settings, predictor.model
    if threshold is not None:
        settings = dataclasses.replace(settings, threshold=float(threshold))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise UserError(f"{out} exists and is not empty (use --overwrite)")
        shutil.rmtree(out)
    config = json.loads((run_dir / "config.json").read_text())
    card = band_model_card(
        config,
        settings,
        metrics=_read_json(run_dir / "metrics.json"),
        run_dir=run_dir,
        parameters=int(model.count_params()),
    )
    module = BandServingModule(model, settings)
    save_module(module, card, out, _markdown)
    logger.info("wrote SavedModel %s (%d bands)", out, settings.channels)
    return out
