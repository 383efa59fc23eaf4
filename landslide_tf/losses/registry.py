"""The loss registry: ``LOSSES`` (name -> constructor) and ``get_loss(name, **kwargs)``.

``get_loss`` fails with the valid names for an unknown loss and with the valid keywords for
an unknown argument; ``bce`` is Keras' own loss, built by :func:`bce`, and ``focal`` is
:class:`~landslide_tf.losses.classes.FocalLoss` (Keras' focal loss with a finite gradient
for ``gamma < 1``), built by :func:`focal`; the others are
:mod:`landslide_tf.losses.classes` and :mod:`landslide_tf.losses.lovasz`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import keras

from landslide_tf.losses.checks import check_nonneg, check_unit
from landslide_tf.losses.classes import (
    BCEDiceLoss,
    DiceLoss,
    FocalLoss,
    FocalTverskyLoss,
    TverskyLoss,
    WeightedCrossentropy,
)
from landslide_tf.losses.lovasz import LovaszHingeLoss

__all__ = ["LOSSES", "bce", "focal", "get_loss", "loss_arguments"]

logger = logging.getLogger(__name__)


def bce(label_smoothing: float = 0.0) -> keras.losses.Loss:
    """Mean binary cross-entropy (``keras.losses.BinaryCrossentropy``, probabilities in)."""
    label_smoothing = check_unit("label_smoothing", label_smoothing, loss="bce")
    return keras.losses.BinaryCrossentropy(
        from_logits=False, label_smoothing=label_smoothing, name="bce"
    )


def focal(alpha: float | None = 0.25, gamma: float = 2.0) -> keras.losses.Loss:
    """Binary focal loss with ``alpha_t`` balancing (:class:`FocalLoss`).

    ``alpha`` weighs landslide pixels and ``1 - alpha`` background pixels; ``alpha=None``
    switches the balancing off. Defaults are Lin et al.'s (0.25, 2.0). The maths is
    ``keras.losses.BinaryFocalCrossentropy``'s, with a gradient that stays finite for
    ``0 <= gamma < 1`` at saturated predictions.
    """
    gamma = check_nonneg("gamma", gamma, loss="focal")
    if alpha is not None:
        alpha = check_unit("alpha", alpha, loss="focal")
    return FocalLoss(
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else alpha,
        gamma=gamma,
        from_logits=False,
        name="focal",
    )


#: Loss names -> constructors taking the loss's keyword arguments.
LOSSES: dict[str, Callable[..., keras.losses.Loss]] = {
    "bce": bce,
    "focal": focal,
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
            ``tversky``, ``focal_tversky``, ``lovasz_hinge``).
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
