"""Argument checks of the losses: one-line ``ValueError`` naming the loss and the value.

Every Loss class and registry factory of :mod:`landslide_tf.losses` validates its arguments
here, so ``get_loss("focal", gamma=-1)`` fails with ``loss 'focal': gamma must be >= 0, got -1``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

__all__ = ["check_class_weights", "check_nonneg", "check_unit"]


def check_unit(name: str, value: float, *, loss: str) -> float:
    """``value`` as a float in ``[0, 1]``, else ``ValueError`` naming ``loss`` and ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"loss {loss!r}: {name} must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"loss {loss!r}: {name} must be in [0, 1], got {value}")
    return float(value)


def check_nonneg(name: str, value: float, *, loss: str) -> float:
    """``value`` as a finite float ``>= 0``, else ``ValueError`` naming ``loss`` and ``name``.

    NaN and infinity are refused: they turn the loss into NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"loss {loss!r}: {name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"loss {loss!r}: {name} must be finite, got {value}")
    if float(value) < 0.0:
        raise ValueError(f"loss {loss!r}: {name} must be >= 0, got {value}")
    return float(value)


def check_class_weights(value: Sequence[float], *, loss: str) -> tuple[float, float]:
    """Two finite, non-negative weights ``(w_background, w_landslide)``, not both zero.

    A string is not two numbers (``"13"`` would read as (1, 3)), nor are booleans; an
    infinite weight turns the loss into NaN (``inf * 0`` on the other class's pixels).
    """
    try:
        items = () if isinstance(value, (str, bytes)) else tuple(value)
        if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in items):
            raise TypeError
        w0, w1 = (float(v) for v in items)
    except (TypeError, ValueError):
        raise ValueError(
            f"loss {loss!r}: class_weights must be two numbers (w_background, w_landslide), "
            f"got {value!r}"
        ) from None
    if not (math.isfinite(w0) and math.isfinite(w1)):
        raise ValueError(f"loss {loss!r}: class_weights must be finite, got ({w0}, {w1})")
    if not (w0 >= 0.0 and w1 >= 0.0) or w0 + w1 == 0.0:
        raise ValueError(
            f"loss {loss!r}: class_weights must be >= 0 and not both 0, got ({w0}, {w1})"
        )
    return w0, w1


# --------------------------------------------------------------------------- pure functions
