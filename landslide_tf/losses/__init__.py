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
                (Lin et al. 2017; ``keras.losses.BinaryFocalCrossentropy`` with class
                balancing; identical maths). ``alpha=None`` drops the balancing term.
``dice``        ``1 - (2 sum(y v) + s) / (sum y + sum v + s)`` over the whole batch
``wce``         ``-(1/X) sum_i sum_c w_c y_ic log v_ic`` over the classes {background,
                landslide} with ``v_i1 = v_i``, ``v_i0 = 1 - v_i``
``bce_dice``    ``bce_weight * BCE + dice_weight * Dice``
``tversky``     ``1 - (TP + s) / (TP + alpha FP + beta FN + s)``, soft counts over the batch
``focal_tversky`` ``(1 - TI)^gamma`` with TI the Tversky index above
``lovasz_hinge``  per-image Lovasz hinge, a convex IoU surrogate (``landslide_tf.losses.lovasz``)
==============  ==========================================================================

``X`` is the number of pixels in the batch and ``s`` a smoothing constant (default 1.0).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

# The pure functions live in loss_functions; re-exported here, the documented import path.
from landslide_tf.losses.functions import (  # noqa: F401  (re-exported)
    DEFAULT_SMOOTH,
    _check_class_weights,
    _check_nonneg,
    _check_unit,
    binary_crossentropy,
    dice_loss,
    focal_tversky_loss,
    tversky_index,
    tversky_loss,
    weighted_crossentropy,
)
from landslide_tf.losses.lovasz import LovaszHingeLoss, lovasz_hinge  # noqa: F401  (registered below)

logger = logging.getLogger(__name__)

#: Share of landslide pixels in the 20 real Bijie tiles of ``shared/data/bijie-sample`` after
#: resizing the masks to 128x128 (13.2 %); the WCE default when no fraction is given.
DEFAULT_LANDSLIDE_FRACTION = 0.13

#: The re-exported functions' docstring examples, run by ``doctest.testmod(losses)`` too.
_EXAMPLES = (
    binary_crossentropy,
    weighted_crossentropy,
    dice_loss,
    tversky_loss,
    focal_tversky_loss,
)
__test__ = {f.__name__: f for f in _EXAMPLES}


# --------------------------------------------------------------------------- Loss classes
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
        self.smooth = _check_nonneg("smooth", smooth, loss="dice")

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
        self.class_weights = _check_class_weights(class_weights, loss="wce")

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
        self.bce_weight = _check_nonneg("bce_weight", bce_weight, loss="bce_dice")
        self.dice_weight = _check_nonneg("dice_weight", dice_weight, loss="bce_dice")
        self.smooth = _check_nonneg("smooth", smooth, loss="bce_dice")

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
        self.alpha = _check_unit("alpha", alpha, loss=name)
        self.beta = _check_unit("beta", beta, loss=name)
        self.smooth = _check_nonneg("smooth", smooth, loss=name)

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
        self.gamma = _check_nonneg("gamma", gamma, loss=name)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return focal_tversky_loss(y_true, y_pred, self.alpha, self.beta, self.gamma, self.smooth)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"gamma": self.gamma})
        return config


# --------------------------------------------------------------------------- factories
def wce_weights(landslide_fraction: float) -> tuple[float, float]:
    """Default WCE class weights from the share of landslide pixels.

    Inverse class frequency, normalized so that the pixel-weighted mean weight is 1
    (scikit-learn's ``class_weight="balanced"``): ``w_c = 1 / (2 f_c)`` with
    ``f_1 = landslide_fraction`` and ``f_0 = 1 - f_1``. Each class then carries half of the
    total weight, and the loss keeps the scale of BCE (``(1 - f) w0 + f w1 = 1``).

    Args:
        landslide_fraction: share of landslide pixels in the training split, in (0, 1).

    Returns:
        ``(w_background, w_landslide)``.

    Raises:
        ValueError: for a fraction outside (0, 1) (a split with no landslide pixel or no
            background pixel has no meaningful class weights).

    Example:
        >>> tuple(round(w, 3) for w in wce_weights(0.2))
        (0.625, 2.5)
    """
    f = float(landslide_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(
            f"landslide fraction must be in (0, 1) to derive WCE class weights, got {f}"
        )
    return 1.0 / (2.0 * (1.0 - f)), 1.0 / (2.0 * f)


def _bce(label_smoothing: float = 0.0) -> keras.losses.Loss:
    """Mean binary cross-entropy (``keras.losses.BinaryCrossentropy``, probabilities in)."""
    label_smoothing = _check_unit("label_smoothing", label_smoothing, loss="bce")
    return keras.losses.BinaryCrossentropy(
        from_logits=False, label_smoothing=label_smoothing, name="bce"
    )


def _focal(alpha: float | None = 0.25, gamma: float = 2.0) -> keras.losses.Loss:
    """Binary focal loss with ``alpha_t`` balancing (``keras.losses.BinaryFocalCrossentropy``).

    ``alpha`` weighs landslide pixels and ``1 - alpha`` background pixels; ``alpha=None``
    switches the balancing off. Defaults are Lin et al.'s (0.25, 2.0).
    """
    gamma = _check_nonneg("gamma", gamma, loss="focal")
    if alpha is not None:
        alpha = _check_unit("alpha", alpha, loss="focal")
    return keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha,
        gamma=gamma,
        from_logits=False,
        name="focal",
    )


#: Loss names -> constructors taking the loss's keyword arguments.
LOSSES: dict[str, Callable[..., keras.losses.Loss]] = {
    "bce": _bce,
    "focal": _focal,
    "dice": DiceLoss,
    "wce": WeightedCrossentropy,
    "bce_dice": BCEDiceLoss,
    "tversky": TverskyLoss,
    "focal_tversky": FocalTverskyLoss,
    "lovasz_hinge": LovaszHingeLoss,
}

_RESERVED = {"name", "reduction", "dtype", "self"}


def loss_arguments(name: str) -> list[str]:
    """Keyword arguments that ``get_loss(name, ...)`` accepts, in signature order."""
    params = inspect.signature(LOSSES[name]).parameters
    return [
        p
        for p, spec in params.items()
        if p not in _RESERVED and spec.kind in (spec.POSITIONAL_OR_KEYWORD, spec.KEYWORD_ONLY)
    ]


def get_loss(name: str, **kwargs: Any) -> keras.losses.Loss:
    """Build a loss by registry name.

    Args:
        name: one of ``LOSSES`` (``bce``, ``focal``, ``dice``, ``wce``, ``bce_dice``,
            ``tversky``, ``focal_tversky``).
        **kwargs: that loss's arguments, for example ``alpha=0.25, gamma=2.0`` for
            ``focal`` or ``class_weights=(0.575, 3.85)`` for ``wce``.

    Returns:
        A ``keras.losses.Loss`` whose ``name`` is ``name``; serializable into ``.keras``.

    Raises:
        ValueError: unknown name (lists the valid names), unknown keyword (lists the valid
            ones) or a value out of range.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    valid = loss_arguments(name)
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ValueError(
            f"loss {name!r} got unexpected argument(s) {', '.join(unknown)}; "
            f"valid: {', '.join(valid) or '(none)'}"
        )
    loss = LOSSES[name](**kwargs)
    logger.debug("loss %s: %s", name, {k: v for k, v in kwargs.items()})
    return loss
