"""The TensorFlow side of an export: the serving module and writing it as a SavedModel.

Signatures (for every input the run's ``InputSpec`` describes):

- ``serving_default``: the raw inputs of ``landslide_tf.inference.predictor.input_signature``
  (Bijie: ``image`` uint8 ``[N, H, W, 3]`` and ``dem`` float32 ``[N, H', W']``; multi-band:
  ``image`` float32 ``[N, H, W, bands]``) -> ``probability`` float32 ``[N, H, W]`` and
  ``mask``; the traced ``raw_probability`` (the predictor's graph) runs inside.
- ``normalized``: ``inputs`` float32 ``[N, S, S, C]`` already preprocessed -> the same at
  ``[N, S, S]``, averaged over the same TTA transforms as ``serving_default`` when the export
  has ``tta`` on.

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
from landslide_tf.inference.tta import apply_model


def serving_outputs(prob: tf.Tensor, threshold: float) -> dict[str, tf.Tensor]:
    """``probability`` (float32) and ``mask`` (uint8 0/1 at ``threshold``) of a signature."""
    threshold = tf.constant(float(threshold), tf.float32)
    return {
        "probability": tf.identity(prob, name="probability"),
        "mask": tf.cast(prob >= threshold, tf.uint8, name="mask"),
    }


class ServingModule(tf.Module):
    """A Keras model (or an ensemble of them) plus its preprocessing, with the two serving
    functions. An ensemble's probability is the mean of its members' probabilities.

    Attributes:
        model: the Keras network (the first member of an ensemble).
        members: the ensemble's networks, or None for one model.
        serving_default: raw inputs -> ``{"probability": (N, H, W), "mask": (N, H, W)}``.
        normalized: ``inputs`` ``(N, S, S, C)`` -> the same at ``(N, S, S)`` (flip-averaged
            like ``serving_default`` when ``settings.tta``).
    """

    def __init__(self, model: Any, settings: InferenceSettings) -> None:
        super().__init__(name="landslide_tf_serving")
        if isinstance(model, (list, tuple)):
            self.members = list(model)  # an ensemble: tracked, so its variables are saved
            self.model = self.members[0]
        else:
            self.members = None
            self.model = model
        signature = input_signature(settings)
        names = [s.name for s in signature]

        def network(x: tf.Tensor) -> tf.Tensor:
            if self.members is None:
                return self.model(x, training=False)
            outs = [tf.cast(m(x, training=False), tf.float32) for m in self.members]
            return tf.add_n(outs) / float(len(outs))

        def serve(*args: tf.Tensor) -> dict[str, tf.Tensor]:
            named = dict(zip(names, args, strict=True))
            prob = raw_probability(
                network,
                named.get("image"),
                named.get("dem"),
                settings,
            )
            return serving_outputs(prob, settings.threshold)

        size, channels = settings.image_size, settings.channels

        def normalized(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            prob = apply_model(network, inputs, settings.tta, settings.tta_transforms)[..., 0]
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
