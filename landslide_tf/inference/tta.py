"""Test-time augmentation: the one place a model is applied to flipped copies of its input.

``flip_average(model_fn, x)`` runs the model on the tile, its left-right, up-down and
both-ways flips, flips each probability map back and averages the four. With
``transforms="dihedral"`` it also runs the four flips of the transposed tile (the eight
symmetries of the square: rotations by 90 degrees included), eight forward passes. It is plain
TensorFlow, so ``landslide_tf.inference.predictor.raw_probability`` (hence ``predict``, ``scene`` and
the exported SavedModel) and ``landslide_tf.evaluation.evaluate`` use the same code when a run's
``tta`` is on (``--tta``; ``--tta-transforms`` picks the set; the strong preset turns it on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tensorflow as tf

#: The flips averaged: image axes reversed (1 = rows/up-down, 2 = columns/left-right).
FLIP_AXES: tuple[tuple[int, ...], ...] = ((), (2,), (1,), (1, 2))

#: The transform sets ``--tta-transforms`` names: ``(transpose, flip axes)`` per pass, the
#: transpose (rows <-> columns) applied before the flip and undone after flipping back.
TTA_TRANSFORMS: dict[str, tuple[tuple[bool, tuple[int, ...]], ...]] = {
    "flips": tuple((False, axes) for axes in FLIP_AXES),
    "dihedral": tuple((t, axes) for t in (False, True) for axes in FLIP_AXES),
}

#: The set a run uses unless it says otherwise (runs before ``--tta-transforms`` used it).
DEFAULT_TRANSFORMS = "flips"


def check_transforms(name: str) -> None:
    """``UserError`` (one line) for an unknown ``--tta-transforms`` name."""
    if name not in TTA_TRANSFORMS:
        from landslide_tf.errors import UserError

        raise UserError(
            f"unknown --tta-transforms {name!r}; expected one of {', '.join(TTA_TRANSFORMS)}"
        )


def flip_average(
    model_fn: Callable[[Any], Any], x: tf.Tensor, transforms: str = DEFAULT_TRANSFORMS
) -> tf.Tensor:
    """Mean of ``model_fn`` over the transforms of ``x`` (``TTA_TRANSFORMS``), each mapped back.

    Args:
        model_fn: maps ``(N, H, W, C)`` to ``(N, H, W, 1)`` probabilities.
        x: ``(N, H, W, C)`` network input.
        transforms: ``"flips"`` (four passes) or ``"dihedral"`` (eight; the model must
            accept the transposed ``(N, W, H, C)`` input: square tiles always are).

    Returns:
        float32 ``(N, H, W, 1)`` probabilities.
    """
    import tensorflow as tf

    check_transforms(transforms)
    passes = TTA_TRANSFORMS[transforms]
    total = None
    for transpose, axes in passes:
        view = tf.transpose(x, [0, 2, 1, 3]) if transpose else x
        view = tf.reverse(view, axis=list(axes)) if axes else view
        prob = tf.cast(model_fn(view), tf.float32)  # (N, H, W, 1), or (N, W, H, 1) transposed
        prob = tf.reverse(prob, axis=list(axes)) if axes else prob
        prob = tf.transpose(prob, [0, 2, 1, 3]) if transpose else prob
        total = prob if total is None else total + prob
    return total / float(len(passes))


def apply_model(
    model_fn: Callable[[Any], Any], x: Any, tta: bool, transforms: str = DEFAULT_TRANSFORMS
) -> tf.Tensor:
    """``model_fn(x)`` as float32, averaged over ``transforms`` when ``tta``."""
    import tensorflow as tf

    if tta:
        return flip_average(model_fn, x, transforms)
    return tf.cast(model_fn(x), tf.float32)
