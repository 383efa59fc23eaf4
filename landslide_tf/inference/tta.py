"""Test-time flip averaging: the one place a model is applied to flipped copies of its input.

``flip_average(model_fn, x)`` runs the model on the tile, its left-right, up-down and
both-ways flips, flips each probability map back and averages the four. It is plain
TensorFlow, so ``landslide_tf.inference.predictor.raw_probability`` (hence ``predict``, ``scene`` and
the exported SavedModel) and ``landslide_tf.evaluation.evaluate`` use the same code when a run's
``tta`` is on (``--tta``; the strong preset turns it on). It costs four forward passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf

#: The flips averaged: image axes reversed (1 = rows/up-down, 2 = columns/left-right).
FLIP_AXES: tuple[tuple[int, ...], ...] = ((), (2,), (1,), (1, 2))


def flip_average(model_fn: Callable[[Any], Any], x: tf.Tensor) -> tf.Tensor:
    """Mean of ``model_fn`` over the four flips of ``x``, each mapped back.

    Args:
        model_fn: maps ``(N, H, W, C)`` to ``(N, H, W, 1)`` probabilities.
        x: ``(N, H, W, C)`` network input.

    Returns:
        float32 ``(N, H, W, 1)`` probabilities.
    """
    import tensorflow as tf

    total = None
    for axes in FLIP_AXES:
        flipped = tf.reverse(x, axis=list(axes)) if axes else x
        prob = tf.cast(model_fn(flipped), tf.float32)  # (N, H, W, 1)
        prob = tf.reverse(prob, axis=list(axes)) if axes else prob
        total = prob if total is None else total + prob
    return total / float(len(FLIP_AXES))


def apply_model(model_fn: Callable[[Any], Any], x: Any, tta: bool) -> tf.Tensor:
    """``model_fn(x)`` as float32, flip-averaged when ``tta``."""
    import tensorflow as tf

    if tta:
        return flip_average(model_fn, x)
    return tf.cast(model_fn(x), tf.float32)
