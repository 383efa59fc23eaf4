"""Pure segmentation loss functions: tensors in, loss tensor out, no state.

The maths behind ``landslide_tf.losses`` (see its docstring for the formulas): every function
takes ``y_true (N, H, W, 1)`` in {0, 1} and ``y_pred (N, H, W, 1)`` sigmoid probabilities,
casts both to float32 (mixed-precision safe) and clips probabilities to ``[eps, 1 - eps]``
before any logarithm. ``landslide_tf.losses`` lists them in its public API.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

#: Default smoothing ``s`` of the Dice and Tversky losses (in pixels).
DEFAULT_SMOOTH = 1.0

#: Share of landslide pixels in the 20 real Bijie tiles of ``shared/data/bijie-sample`` after
#: resizing the masks to 128x128 (13.2 %); the WCE default when no fraction is given.
DEFAULT_LANDSLIDE_FRACTION = 0.13


def as_float32(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Both inputs as float32 tensors (mixed-precision safe), shapes unchanged."""
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    return y_true, y_pred


def clip_probabilities(y_pred: Any) -> Any:
    """Probabilities clipped to ``[eps, 1 - eps]`` (``eps = keras.config.epsilon()``)."""
    eps = keras.config.epsilon()
    return ops.clip(y_pred, eps, 1.0 - eps)


def binary_crossentropy(y_true: Any, y_pred: Any) -> Any:
    """Per-pixel binary cross-entropy ``-(y log v + (1 - y) log(1 - v))``.

    Args:
        y_true: ``(N, H, W, 1)`` in {0, 1}.
        y_pred: ``(N, H, W, 1)`` probabilities.

    Returns:
        ``(N, H, W, 1)`` float32 losses (average them for the paper's BCE).

    Example:
        >>> float(ops.mean(binary_crossentropy([[1.0], [0.0]], [[0.8], [0.4]])))  # doctest: +ELLIPSIS
        0.366...
    """
    y_true, y_pred = as_float32(y_true, y_pred)
    y_pred = clip_probabilities(y_pred)
    return -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))


def focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Any:
    """``keras.losses.binary_focal_crossentropy`` with a focal factor that stays differentiable.

    Same arguments and maths: ``a_t (1 - v_t)^gamma BCE(y, v)``, averaged over ``axis``, with
    ``v_t = y v + (1 - y)(1 - v)``. Keras clips ``v`` only inside the logarithm of the BCE,
    so once a float32 sigmoid saturates to exactly 0 or 1, ``1 - v_t`` is 0 and for
    ``gamma < 1`` the gradient of ``(1 - v_t)^gamma`` is infinite (NaN after the chain
    rule). Here ``v_t`` comes from ``clip_probabilities(v)``, so ``1 - v_t >= eps``; the BCE
    term is Keras' own (``keras.ops.binary_crossentropy``, which takes the logits of a Keras
    sigmoid output when it has them), so values change only where ``v`` is within ``eps`` of
    0 or 1, by at most ``eps^gamma`` times that pixel's BCE.

    Args:
        y_true: ``(N, H, W, 1)`` in {0, 1}.
        y_pred: ``(N, H, W, 1)`` probabilities (logits with ``from_logits=True``).
        apply_class_balancing: weigh landslide pixels by ``alpha`` and background pixels by
            ``1 - alpha``.
        alpha: the landslide weight in [0, 1].
        gamma: the focusing exponent >= 0.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: squeeze the labels towards 0.5 by this much.
        axis: the axis to average over.

    Returns:
        ``(N, H, W)`` float32 losses (the input shape without ``axis``).

    Example:
        A saturated, correct prediction has a finite gradient for ``gamma = 0.5``:

        >>> import tensorflow as tf
        >>> v = tf.Variable([[1.0], [0.0]])
        >>> with tf.GradientTape() as tape:
        ...     loss = ops.mean(focal_crossentropy([[1.0], [0.0]], v, gamma=0.5))
        >>> bool(ops.all(ops.isfinite(tape.gradient(loss, v))))
        True
    """
    y_true, y_pred = as_float32(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    bce = ops.binary_crossentropy(y_true, y_pred, from_logits=False)
    v = clip_probabilities(y_pred)
    p_t = y_true * v + (1.0 - y_true) * (1.0 - v)
    focal = ops.power(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return ops.mean(focal, axis=axis)


def weighted_crossentropy(
    y_true: Any, y_pred: Any, class_weights: tuple[float, float] = (1.0, 1.0)
) -> Any:
    """Per-pixel two-class weighted cross-entropy from a single sigmoid output.

    ``-sum_c w_c y_ic log v_ic`` with ``y_i1 = y_i``, ``y_i0 = 1 - y_i``, ``v_i1 = v_i``,
    ``v_i0 = 1 - v_i``; the paper's WCE is the mean over pixels.

    Args:
        y_true: ``(N, H, W, 1)`` in {0, 1}.
        y_pred: ``(N, H, W, 1)`` probabilities.
        class_weights: ``(w_background, w_landslide)``.

    Returns:
        ``(N, H, W, 1)`` float32 losses.

    Example:
        With weights (0.5, 2.0), a landslide pixel predicted at 0.5 costs ``-2 log 0.5``:

        >>> float(weighted_crossentropy([[1.0]], [[0.5]], (0.5, 2.0))[0, 0])  # doctest: +ELLIPSIS
        1.386...
    """
    y_true, y_pred = as_float32(y_true, y_pred)
    y_pred = clip_probabilities(y_pred)
    w0, w1 = (float(w) for w in class_weights)
    return -(w1 * y_true * ops.log(y_pred) + w0 * (1.0 - y_true) * ops.log(1.0 - y_pred))


def _soft_counts(y_true: Any, y_pred: Any) -> tuple[Any, Any, Any]:
    """Soft TP, FP, FN summed over the whole batch (scalars)."""
    y_true, y_pred = as_float32(y_true, y_pred)
    tp = ops.sum(y_true * y_pred)
    fp = ops.sum((1.0 - y_true) * y_pred)
    fn = ops.sum(y_true * (1.0 - y_pred))
    return tp, fp, fn


def dice_loss(y_true: Any, y_pred: Any, smooth: float = DEFAULT_SMOOTH) -> Any:
    """Soft Dice loss over the whole batch, ``1 - (2 sum(y v) + s) / (sum y + sum v + s)``.

    One Dice coefficient is computed from all pixels of all tiles of the batch (not one per
    tile), as in the paper's ``1 - 2 sum(y v) / (sum y + sum v)``. The smoothing ``s`` keeps
    the loss defined and its gradient non-zero on a batch without landslide pixels (there a
    perfect all-background prediction scores 0 instead of 1).

    Args:
        y_true: ``(N, H, W, 1)`` in {0, 1}.
        y_pred: ``(N, H, W, 1)`` probabilities.
        smooth: ``s`` >= 0, added to numerator and denominator.

    Returns:
        A float32 scalar.

    Example:
        Truth ``[1, 1, 0, 0]``, prediction ``[1, 0, 1, 0]``: ``2*1 / (2 + 2) = 0.5``:

        >>> float(dice_loss([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], smooth=0.0))
        0.5
    """
    y_true, y_pred = as_float32(y_true, y_pred)
    intersection = ops.sum(y_true * y_pred)
    total = ops.sum(y_true) + ops.sum(y_pred)
    return 1.0 - (2.0 * intersection + smooth) / ops.maximum(total + smooth, keras.config.epsilon())


def tversky_index(
    y_true: Any, y_pred: Any, alpha: float = 0.3, beta: float = 0.7, smooth: float = DEFAULT_SMOOTH
) -> Any:
    """Soft Tversky index ``(TP + s) / (TP + alpha FP + beta FN + s)`` over the whole batch.

    ``alpha`` weighs false positives, ``beta`` false negatives; ``alpha = beta = 0.5`` is
    the Dice coefficient (for ``s = 0``).
    """
    tp, fp, fn = _soft_counts(y_true, y_pred)
    return (tp + smooth) / ops.maximum(tp + alpha * fp + beta * fn + smooth, keras.config.epsilon())


def tversky_loss(
    y_true: Any, y_pred: Any, alpha: float = 0.3, beta: float = 0.7, smooth: float = DEFAULT_SMOOTH
) -> Any:
    """Tversky loss ``1 - TI`` (Salehi et al. 2017), a scalar over the whole batch.

    Example:
        Truth ``[1, 1, 0, 0]``, prediction ``[1, 0, 1, 0]``: TP = FP = FN = 1, so
        ``1 - 1 / (1 + 0.3 + 0.7) = 0.5``:

        >>> round(float(tversky_loss([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], smooth=0.0)), 6)
        0.5
    """
    return 1.0 - tversky_index(y_true, y_pred, alpha, beta, smooth)


def focal_tversky_loss(
    y_true: Any,
    y_pred: Any,
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    smooth: float = DEFAULT_SMOOTH,
) -> Any:
    """Focal Tversky loss ``(1 - TI)^gamma`` (Abraham and Khan 2019), a scalar.

    ``gamma`` is the exponent itself: the paper's ``gamma = 4/3`` in ``(1 - TI)^(1/gamma)``
    is ``gamma=0.75`` here. ``1 - TI`` is floored at ``epsilon`` so that the gradient stays
    finite for ``gamma < 1`` at a perfect prediction.

    Example:
        ``1 - TI = 0.5`` (see ``tversky_loss``) and ``gamma = 2`` give ``0.25``:

        >>> round(float(focal_tversky_loss([1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0],
        ...                                gamma=2.0, smooth=0.0)), 6)
        0.25
    """
    one_minus = 1.0 - tversky_index(y_true, y_pred, alpha, beta, smooth)
    return ops.power(ops.maximum(one_minus, keras.config.epsilon()), gamma)


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
