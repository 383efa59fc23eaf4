"""The Lovasz hinge loss (Berman et al. 2018): a convex surrogate of the landslide IoU.

Registered as ``lovasz_hinge`` in ``landslide_tf.losses.LOSSES``. Per image, with logits
``z_i = log(v_i / (1 - v_i))`` of the probabilities ``v_i`` and signs ``s_i = 2 y_i - 1``,
the hinge errors ``e_i = max(0, 1 - z_i s_i)`` are sorted in decreasing order and weighted by
the gradient of the Lovasz extension of the Jaccard loss at that order:

``L = sum_k e_(k) g_k``, ``g = diff(1 - (P - cumsum(y_sorted)) / (P + cumsum(1 - y_sorted)))``

with ``P`` the landslide pixels of the image. The mean over the images of the batch is
returned (per-image, as the paper recommends for small objects: a tile with one small scar
weighs as much as a tile with a big one). ``bce_weight > 0`` adds that much mean BCE, which
helps training from scratch (Lovasz alone refines a model more than it starts one).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from landslide_tf.losses.checks import check_nonneg
from landslide_tf.losses.classes import whole_batch_loss
from landslide_tf.losses.functions import as_float32, binary_crossentropy, clip_probabilities


def lovasz_grad(gt_sorted: Any) -> Any:
    """``(B, N)`` labels sorted by decreasing error -> ``(B, N)`` Lovasz-Jaccard weights."""
    gts = ops.sum(gt_sorted, axis=-1, keepdims=True)  # (B, 1)
    intersection = gts - ops.cumsum(gt_sorted, axis=-1)
    union = gts + ops.cumsum(1.0 - gt_sorted, axis=-1)
    jaccard = 1.0 - intersection / union  # (B, N), non-decreasing
    return ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)


def lovasz_hinge(y_true: Any, y_pred: Any) -> Any:
    """Mean per-image Lovasz hinge of probabilities ``y_pred`` against ``y_true`` in {0, 1}.

    Args:
        y_true: ``(B, H, W, 1)`` (or any ``(B, ...)``) labels.
        y_pred: probabilities of the same shape.

    Returns:
        A float32 scalar, 0 when every pixel is on the right side of the margin.

    Example:
        A confident, correct prediction costs nothing; the wrong one costs the most:

        >>> y = [[[1.0], [0.0]]]
        >>> right, wrong = [[[1.0], [0.0]]], [[[0.0], [1.0]]]
        >>> float(lovasz_hinge(y, right)), round(float(lovasz_hinge(y, wrong)), 2)
        (0.0, 17.12)
    """
    y_true, y_pred = as_float32(y_true, y_pred)
    batch = ops.shape(y_pred)[0]
    labels = ops.reshape(y_true, (batch, -1))  # (B, N)
    prob = ops.reshape(clip_probabilities(y_pred), (batch, -1))
    logits = ops.log(prob) - ops.log(1.0 - prob)
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    n = ops.shape(errors)[-1]
    errors_sorted, order = ops.top_k(errors, k=n, sorted=True)  # (B, N), decreasing
    gt_sorted = ops.take_along_axis(labels, order, axis=-1)
    grad = ops.stop_gradient(lovasz_grad(gt_sorted))
    return ops.mean(ops.sum(ops.relu(errors_sorted) * grad, axis=-1))


@keras.saving.register_keras_serializable(package="landslide_tf")
class LovaszHingeLoss(keras.losses.Loss):
    """``lovasz_hinge`` (+ ``bce_weight`` * mean BCE).

    Args:
        bce_weight: weight of an added mean BCE term, default 0 (pure Lovasz hinge).
        name: loss name.
        reduction: Keras reduction of the one batch value (see ``whole_batch_loss``).
        dtype: computation dtype, default float32.

    Example:
        >>> float(LovaszHingeLoss()([[[1.0], [0.0]]], [[[1.0], [0.0]]])) < 1e-5
        True
    """

    def __init__(
        self,
        bce_weight: float = 0.0,
        name: str = "lovasz_hinge",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.bce_weight = check_nonneg("bce_weight", bce_weight, loss="lovasz_hinge")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        loss = lovasz_hinge(y_true, y_pred)
        if self.bce_weight:
            loss = loss + self.bce_weight * ops.mean(binary_crossentropy(y_true, y_pred))
        return whole_batch_loss(loss)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"bce_weight": self.bce_weight})
        return config
