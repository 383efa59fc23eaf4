"""The Keras ``Loss`` classes of the package: thin wrappers over
:mod:`landslide_tf.losses.functions`, argument checks at construction, ``get_config`` = super
+ own arguments, registered for ``.keras`` files (package ``landslide_tf``).

The whole-batch losses (Dice, BCE + Dice, Tversky, focal Tversky and the Lovasz hinge of
:mod:`landslide_tf.losses.lovasz`) return their one value through :func:`whole_batch_loss`,
so that under a ``tf.distribute`` strategy Keras averages it over the replicas as it does a
per-pixel loss, instead of summing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from landslide_tf.losses.checks import check_class_weights, check_nonneg, check_unit
from landslide_tf.losses.functions import (
    DEFAULT_LANDSLIDE_FRACTION,
    DEFAULT_SMOOTH,
    binary_crossentropy,
    dice_loss,
    focal_crossentropy,
    focal_tversky_loss,
    tversky_loss,
    wce_weights,
    weighted_crossentropy,
)

__all__ = [
    "BCEDiceLoss",
    "DiceLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "TverskyLoss",
    "WeightedCrossentropy",
    "whole_batch_loss",
]


def whole_batch_loss(value: Any) -> Any:
    """A 0-d loss of the whole batch as a ``(1,)`` tensor, for ``Loss.call`` to return.

    Keras' reduction returns a 0-d value untouched, so under a ``tf.distribute`` strategy
    with ``N`` replicas it skips the division by ``N`` that it applies to per-pixel losses
    (``keras.src.losses.loss.reduce_values``): the all-reduce then sums the replicas'
    gradients, ``N`` times too large, and Keras logs ``N`` times the loss. Shape ``(1,)``
    takes the mean-reduction path: the sum of one element divided by 1 (bit-for-bit the
    value on one device), then by ``N``; so each replica's batch gets its own value and
    training follows the mean of them. ``Loss.__call__`` still returns a scalar.

    Example:
        >>> tuple(whole_batch_loss(0.5).shape)
        (1,)
    """
    return ops.reshape(value, (1,))


@keras.saving.register_keras_serializable(package="landslide_tf")
class DiceLoss(keras.losses.Loss):
    """Soft Dice loss over the batch: ``1 - (2 sum(y v) + s) / (sum y + sum v + s)``.

    Not ``keras.losses.Dice``: that one adds ``epsilon`` to the denominator only, so a batch
    without landslide pixels scores 1 with a zero gradient whatever the prediction (the
    model learns nothing from negative tiles). Here ``s`` sits in both numerator and
    denominator; with ``smooth=0`` the value equals ``keras.losses.Dice()`` up to epsilon.

    Args:
        smooth: smoothing ``s`` >= 0 (pixels), default 1.0.
        name: loss name.
        reduction: Keras reduction of the one batch value (see ``whole_batch_loss``).
        dtype: computation dtype, default float32.

    Example:
        >>> y_true = [[[[1.0], [1.0]], [[0.0], [0.0]]]]  # (1, 2, 2, 1)
        >>> y_pred = [[[[1.0], [0.0]], [[1.0], [0.0]]]]
        >>> float(DiceLoss(smooth=0.0)(y_true, y_pred))
        0.5
    """

    def __init__(
        self,
        smooth: float = DEFAULT_SMOOTH,
        name: str = "dice",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.smooth = check_nonneg("smooth", smooth, loss="dice")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return whole_batch_loss(dice_loss(y_true, y_pred, self.smooth))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"smooth": self.smooth})
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class WeightedCrossentropy(keras.losses.Loss):
    """Weighted two-class cross-entropy from one sigmoid output (the paper's WCE).

    ``-(1/X) sum_i [w1 y_i log v_i + w0 (1 - y_i) log(1 - v_i)]``, i.e. the categorical
    ``-(1/X) sum_i sum_c w_c y_ic log v_ic`` over {background, landslide} with
    ``v_i0 = 1 - v_i``. With weights (1, 1) it is BCE.

    Args:
        class_weights: ``(w_background, w_landslide)``; default
            ``wce_weights(DEFAULT_LANDSLIDE_FRACTION)`` = (0.575, 3.846). Training passes
            ``wce_weights(<landslide fraction of the training split>)``.
        name: loss name.
        reduction: Keras reduction over pixels (mean by default).
        dtype: computation dtype, default float32.

    Example:
        One landslide pixel at 0.5 and one background pixel at 0.5, weights (1, 3):
        ``(3 log 2 + 1 log 2) / 2 = 2 log 2``:

        >>> round(float(WeightedCrossentropy((1.0, 3.0))([[1.0], [0.0]], [[0.5], [0.5]])), 4)
        1.3863
    """

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        name: str = "wce",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if class_weights is None:
            class_weights = wce_weights(DEFAULT_LANDSLIDE_FRACTION)
        self.class_weights = check_class_weights(class_weights, loss="wce")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return weighted_crossentropy(y_true, y_pred, self.class_weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"class_weights": list(self.class_weights)})
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class FocalLoss(keras.losses.BinaryFocalCrossentropy):
    """``keras.losses.BinaryFocalCrossentropy`` with a finite gradient for every ``gamma >= 0``.

    Same arguments, maths and config keys as the Keras class (this is the ``focal`` of
    ``get_loss``), computed by :func:`~landslide_tf.losses.functions.focal_crossentropy`:
    the focal factor ``(1 - v_t)^gamma`` takes clipped probabilities, so a float32 sigmoid
    saturated to exactly 0 or 1 no longer gives NaN gradients for ``gamma < 1``. Runs saved
    with the Keras class still load (as that class).

    Args:
        apply_class_balancing: weigh landslide pixels by ``alpha``, background by ``1 - alpha``.
        alpha: the landslide weight in [0, 1], default 0.25.
        gamma: the focusing exponent >= 0, default 2.
        from_logits: whether ``y_pred`` holds logits (the models output probabilities).
        label_smoothing: in [0, 1], default 0.
        axis: the axis to average over before the reduction, default -1.
        name: loss name.
        reduction: Keras reduction over pixels (mean by default).
        dtype: computation dtype, default float32.

    Example:
        With ``gamma = 0`` and no balancing it is BCE: ``-log 0.5``:

        >>> round(float(FocalLoss(gamma=0.0)([[1.0]], [[0.5]])), 4)
        0.6931
    """

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "focal",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            apply_class_balancing=bool(apply_class_balancing),
            alpha=check_unit("alpha", alpha, loss=name),
            gamma=check_nonneg("gamma", gamma, loss=name),
            from_logits=from_logits,
            label_smoothing=check_unit("label_smoothing", label_smoothing, loss=name),
            axis=axis,
            reduction=reduction,
            name=name,
            dtype=dtype,
        )
        self.fn = focal_crossentropy  # Keras' LossFunctionWrapper.call runs self.fn


@keras.saving.register_keras_serializable(package="landslide_tf")
class BCEDiceLoss(keras.losses.Loss):
    """``bce_weight * BCE + dice_weight * Dice`` (Dice as in ``DiceLoss``).

    Args:
        bce_weight: weight of the mean BCE, default 1.
        dice_weight: weight of the batch Dice loss, default 1.
        smooth: Dice smoothing, default 1.0.
        name: loss name.
        reduction: Keras reduction of the one batch value (see ``whole_batch_loss``).
        dtype: computation dtype, default float32.

    Example:
        A perfect prediction scores ~0 (BCE ~1e-7, Dice 0):

        >>> float(BCEDiceLoss()([[1.0], [0.0]], [[1.0], [0.0]])) < 1e-5
        True
    """

    def __init__(
        self,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth: float = DEFAULT_SMOOTH,
        name: str = "bce_dice",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.bce_weight = check_nonneg("bce_weight", bce_weight, loss="bce_dice")
        self.dice_weight = check_nonneg("dice_weight", dice_weight, loss="bce_dice")
        self.smooth = check_nonneg("smooth", smooth, loss="bce_dice")

    def call(self, y_true: Any, y_pred: Any) -> Any:
        bce = ops.mean(binary_crossentropy(y_true, y_pred))
        dice = dice_loss(y_true, y_pred, self.smooth)
        return whole_batch_loss(self.bce_weight * bce + self.dice_weight * dice)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"bce_weight": self.bce_weight, "dice_weight": self.dice_weight, "smooth": self.smooth}
        )
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class TverskyLoss(keras.losses.Loss):
    """Tversky loss ``1 - (TP + s) / (TP + alpha FP + beta FN + s)`` over the batch.

    Soft counts ``TP = sum y v``, ``FP = sum (1 - y) v``, ``FN = sum y (1 - v)``.
    Defaults ``alpha=0.3, beta=0.7`` (Salehi et al. 2017) weigh misses more than false
    alarms, favouring recall of the ~13 % landslide pixels.

    Args:
        alpha: weight of false positives in [0, 1].
        beta: weight of false negatives in [0, 1].
        smooth: smoothing ``s`` >= 0, default 1.0.
        name: loss name.
        reduction: Keras reduction of the one batch value (see ``whole_batch_loss``).
        dtype: computation dtype, default float32.

    Example:
        >>> round(float(TverskyLoss(smooth=0.0)([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0])), 6)
        0.5
    """

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.7,
        smooth: float = DEFAULT_SMOOTH,
        name: str = "tversky",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_unit("alpha", alpha, loss=name)
        self.beta = check_unit("beta", beta, loss=name)
        self.smooth = check_nonneg("smooth", smooth, loss=name)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return whole_batch_loss(tversky_loss(y_true, y_pred, self.alpha, self.beta, self.smooth))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"alpha": self.alpha, "beta": self.beta, "smooth": self.smooth})
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class FocalTverskyLoss(TverskyLoss):
    """Focal Tversky loss ``(1 - TI)^gamma`` (Abraham and Khan 2019) over the batch.

    Args:
        alpha: weight of false positives in [0, 1], default 0.3.
        beta: weight of false negatives in [0, 1], default 0.7.
        gamma: exponent >= 0, default 0.75 (the paper's ``1/gamma`` with ``gamma = 4/3``);
            ``gamma < 1`` raises the loss of tiles that are already nearly right.
        smooth: smoothing ``s`` >= 0, default 1.0.
        name: loss name.
        reduction: Keras reduction of the one batch value (see ``whole_batch_loss``).
        dtype: computation dtype, default float32.

    Example:
        >>> loss = FocalTverskyLoss(gamma=2.0, smooth=0.0)
        >>> round(float(loss([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0])), 6)
        0.25
    """

    def __init__(
        self,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = DEFAULT_SMOOTH,
        name: str = "focal_tversky",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            alpha=alpha, beta=beta, smooth=smooth, name=name, reduction=reduction, dtype=dtype
        )
        self.gamma = check_nonneg("gamma", gamma, loss=name)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        loss = focal_tversky_loss(y_true, y_pred, self.alpha, self.beta, self.gamma, self.smooth)
        return whole_batch_loss(loss)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"gamma": self.gamma})
        return config
