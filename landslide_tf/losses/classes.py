"""The Keras ``Loss`` classes of the losses Keras does not ship: thin wrappers over
:mod:`landslide_tf.losses.functions`, argument checks at construction, ``get_config`` = super
+ own arguments, registered for ``.keras`` files (package ``landslide_tf``).
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
    focal_tversky_loss,
    tversky_loss,
    wce_weights,
    weighted_crossentropy,
)

__all__ = ["BCEDiceLoss", "DiceLoss", "FocalTverskyLoss", "TverskyLoss", "WeightedCrossentropy"]


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
        reduction: Keras reduction (the value is already a scalar).
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
        return dice_loss(y_true, y_pred, self.smooth)

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
class BCEDiceLoss(keras.losses.Loss):
    """``bce_weight * BCE + dice_weight * Dice`` (Dice as in ``DiceLoss``).

    Args:
        bce_weight: weight of the mean BCE, default 1.
        dice_weight: weight of the batch Dice loss, default 1.
        smooth: Dice smoothing, default 1.0.
        name: loss name.
        reduction: Keras reduction (the value is already a scalar).
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
        return self.bce_weight * bce + self.dice_weight * dice_loss(y_true, y_pred, self.smooth)

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
        reduction: Keras reduction (the value is already a scalar).
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
        return tversky_loss(y_true, y_pred, self.alpha, self.beta, self.smooth)

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
        reduction: Keras reduction (the value is already a scalar).
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
        return focal_tversky_loss(y_true, y_pred, self.alpha, self.beta, self.gamma, self.smooth)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"gamma": self.gamma})
        return config
