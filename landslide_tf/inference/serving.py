"""The TensorFlow side of an export: the serving module and writing it as a SavedModel.

Signatures (for every input the run's ``InputSpec`` describes):

- ``serving_default``: the raw inputs of ``landslide_tf.inference.predictor.input_signature``
  (Bijie: ``image`` uint8 ``[N, H, W, 3]`` and ``dem`` float32 ``[N, H', W']``; multi-band:
  ``image`` float32 ``[N, H, W, bands]``) -> ``probability`` float32 ``[N, H, W]`` and
  ``mask``; the traced ``raw_probability`` (the predictor's graph) runs inside.
- ``normalized``: ``inputs`` float32 ``[N, S, S, C]`` already preprocessed -> the same at
  ``[N, S, S]``.

``mask`` is uint8, 1 where ``probability >= threshold``, else 0.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tensorflow as tf

from landslide_tf.inference.predictor import input_signature, raw_probability
from landslide_tf.inference.settings import MODEL_CARD_JSON, MODEL_CARD_MD, InferenceSettings


def serving_outputs(prob: tf.Tensor, threshold: float) -> dict[str, tf.Tensor]:
    """``probability`` (float32) and ``mask`` (uint8 0/1 at ``threshold``) of a signature."""
    threshold = tf.constant(float(threshold), tf.float32)
    return {
        "probability": tf.identity(prob, name="probability"),
        "mask": tf.cast(prob >= threshold, tf.uint8, name="mask"),
    }


class ServingModule(tf.Module):
    """A Keras model plus its preprocessing, with the two serving functions.

    Attributes:
        model: the Keras network (its variables are what the SavedModel stores).
        serving_default: raw inputs -> ``{"probability": (N, H, W), "mask": (N, H, W)}``.
        normalized: ``inputs`` ``(N, S, S, C)`` -> the same at ``(N, S, S)``.
    """

    def __init__(self, model: Any, settings: InferenceSettings) -> None:
        super().__init__(name="landslide_tf_serving")
        self.model = model
        signature = input_signature(settings)
        names = [s.name for s in signature]

        def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
            named = dict(zip(names, args, strict=True))
            prob = raw_probability(
                lambda x: self.model(x, training=False),
                named.get("image"),
                named.get("dem"),
                settings,
            )
            return serving_outputs(prob, settings.threshold)

        size, channels = settings.image_size, settings.channels

        def normalized(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            prob = tf.cast(self.model(inputs, training=False), tf.float32)[..., 0]
            return serving_outputs(prob, settings.threshold)

        self.serving_default = tf.function(serve, input_signature=signature)
        self.normalized = tf.function(
            normalized,
            input_signature=[tf.TensorSpec([None, size, size, channels], tf.float32, "inputs")],
        )


def save_module(
    module: Any, card: dict[str, Any], out: Path, markdown: Callable[[dict[str, Any]], str]
) -> None:
    """Save ``module`` (``serving_default`` + ``normalized``) with the model card in assets/.

    Args:
        module: a ``tf.Module`` with ``serving_default`` and ``normalized`` tf.functions.
        card: the model card dict (``assets/model_card.json``).
        out: the SavedModel directory (written by ``tf.saved_model.save``).
        markdown: renders the card as ``assets/MODEL_CARD.md``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        card_json = Path(tmp) / MODEL_CARD_JSON
        card_md = Path(tmp) / MODEL_CARD_MD
        card_json.write_text(json.dumps(card, indent=2, default=str) + "\n")
        card_md.write_text(markdown(card))
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
