"""Segmentation losses by name: the paper's four (BCE, focal, Dice, weighted CE) and three more.

Every loss takes ``y_true (N, H, W, 1)`` in {0, 1} and ``y_pred (N, H, W, 1)`` sigmoid
probabilities (the models end in a float32 sigmoid) and returns a scalar. Inputs are cast to
float32, so the losses work unchanged under the ``mixed_float16`` policy, and probabilities
are clipped to ``[eps, 1 - eps]`` (``eps = keras.config.epsilon()``) before any logarithm.

Names (``LOSSES`` / ``get_loss``):

==============  ==========================================================================
``bce``         ``-(1/X) sum_i [y_i log v_i + (1 - y_i) log(1 - v_i)]``
                (``keras.losses.BinaryCrossentropy``; identical maths)
``focal``       ``-(1/X) sum_i a_t (1 - v_t)^gamma log(v_t)``, ``v_t = y v + (1 - y)(1 - v)``,
                ``a_t = alpha`` for landslide and ``1 - alpha`` for background pixels
                (Lin et al. 2017; ``FocalLoss``: ``keras.losses.BinaryFocalCrossentropy``
                with class balancing, identical maths, the factor ``(1 - v_t)^gamma`` from
                clipped probabilities). ``alpha=None`` drops the balancing term.
``dice``        ``1 - (2 sum(y v) + s) / (sum y + sum v + s)`` over the whole batch
``wce``         ``-(1/X) sum_i sum_c w_c y_ic log v_ic`` over the classes {background,
                landslide} with ``v_i1 = v_i``, ``v_i0 = 1 - v_i``
``bce_dice``    ``bce_weight * BCE + dice_weight * Dice``
``tversky``     ``1 - (TP + s) / (TP + alpha FP + beta FN + s)``, soft counts over the batch
``focal_tversky`` ``(1 - TI)^gamma`` with TI the Tversky index above
``lovasz_hinge``  per-image Lovasz hinge, a convex IoU surrogate (``landslide_tf.losses.lovasz``)
==============  ==========================================================================

``X`` is the number of pixels in the batch and ``s`` a smoothing constant (default 1.0).
Under several replicas a whole-batch loss (Dice, Tversky, ...) is taken over each replica's
batch and averaged (``whole_batch_loss``).

Modules: :mod:`~landslide_tf.losses.functions` (the pure functions and ``wce_weights``),
:mod:`~landslide_tf.losses.classes` (the Keras ``Loss`` classes),
:mod:`~landslide_tf.losses.lovasz` (Lovasz hinge), :mod:`~landslide_tf.losses.checks`
(argument checks) and :mod:`~landslide_tf.losses.registry` (``LOSSES``, ``get_loss``). The
names below are the package's public API.
"""

from __future__ import annotations

from landslide_tf.losses.classes import (
    BCEDiceLoss,
    DiceLoss,
    FocalLoss,
    FocalTverskyLoss,
    TverskyLoss,
    WeightedCrossentropy,
    whole_batch_loss,
)
from landslide_tf.losses.functions import (
    DEFAULT_LANDSLIDE_FRACTION,
    DEFAULT_SMOOTH,
    binary_crossentropy,
    dice_loss,
    focal_crossentropy,
    focal_tversky_loss,
    tversky_index,
    tversky_loss,
    wce_weights,
    weighted_crossentropy,
)
from landslide_tf.losses.lovasz import LovaszHingeLoss, lovasz_hinge
from landslide_tf.losses.registry import LOSSES, get_loss, loss_arguments

__all__ = [
    "DEFAULT_LANDSLIDE_FRACTION",
    "DEFAULT_SMOOTH",
    "LOSSES",
    "BCEDiceLoss",
    "DiceLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "LovaszHingeLoss",
    "TverskyLoss",
    "WeightedCrossentropy",
    "binary_crossentropy",
    "dice_loss",
    "focal_crossentropy",
    "focal_tversky_loss",
    "get_loss",
    "loss_arguments",
    "lovasz_hinge",
    "tversky_index",
    "tversky_loss",
    "wce_weights",
    "weighted_crossentropy",
    "whole_batch_loss",
]
