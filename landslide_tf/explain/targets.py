"""What a CAM explains: the layers that can be explained and the target region of each tile.

Also the number reported beside the pictures, ``cam_energy_inside``. See ``landslide_tf.explain``
for the methods and targets; import these names from there.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from landslide_tf.errors import UserError

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

METHODS = ("gradcam", "gradcam++", "layercam", "scorecam")
TARGETS = ("predicted", "truth", "all")
EPSILON = 1e-6


# --------------------------------------------------------------------------------------------
# layers and targets


def valid_layers(model: keras.Model) -> list[str]:
    """Layer names that can be explained, the usual choices first.

    Args:
        model: a functional Keras model.

    Returns:
        ``head_features``, ``bottleneck``, U-Net++ nodes ``x_{i}_{j}``, decoder block outputs
        ``dec{i}_relu2``, encoder convolutions ``enc{i}_conv{j}``, then every other layer with
        a 4-D output, each group in model order.
    """
    from landslide_tf.models import spatial_layers

    names = spatial_layers(model)

    def rank(name: str) -> int:
        if name == "head_features":
            return 0
        if name == "bottleneck":
            return 1
        if re.fullmatch(r"x_\d+_\d+", name):  # U-Net++ nodes
            return 2
        if re.fullmatch(r"dec\d+_relu2", name):  # U-Net / ResUNet decoder block outputs
            return 3
        if re.fullmatch(r"enc\d+_conv\d+", name):
            return 4
        return 5

    return sorted(names, key=rank)  # stable: model order inside each group


def resolve_layer(model: keras.Model, layer: str | None = None) -> str:
    """Return the layer to explain: ``layer`` checked, or the model's default.

    Args:
        model: the segmentation model.
        layer: a layer name, or ``None`` for ``landslide_tf.models.default_gradcam_layer``.

    Returns:
        The layer name.

    Raises:
        UserError: unknown layer, or a layer without a ``(N, h, w, c)`` output (the message
            lists some valid names); ``layer=None`` and the model has no such layer.
    """
    from landslide_tf.models import default_gradcam_layer

    if layer is None:
        try:
            layer = default_gradcam_layer(model)
        except ValueError as exc:  # no layer with a (N, h, w, c) output
            raise UserError(str(exc)) from None
    names = [item.name for item in model.layers]
    candidates = valid_layers(model)
    if layer not in names or layer not in candidates:
        shown = ", ".join(candidates[:8])
        more = f" (and {len(candidates) - 8} more)" if len(candidates) > 8 else ""
        raise UserError(f"{_why_not(model, layer, names)}; valid layers: {shown}{more}")
    return layer


def _why_not(model: keras.Model, layer: str, names: list[str]) -> str:
    """Why ``layer`` cannot be explained, the start of ``resolve_layer``'s error message."""
    import keras

    from landslide_tf.models import output_layer_names

    where = f"layer {layer!r} in model {model.name!r}"
    if layer not in names:
        return f"unknown {where}"
    if layer in output_layer_names(model):
        return f"{where} is the model's output: GradCAM explains a feature map before it"
    if isinstance(model.get_layer(layer), keras.layers.InputLayer):
        return f"{where} is the model's input: GradCAM explains a feature map after it"
    return f"{where} has no (N, h, w, c) output"


def target_regions(
    probs: np.ndarray,
    target: str = "predicted",
    mask: np.ndarray | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """The pixels whose mean probability is explained, one region per tile.

    Args:
        probs: model probabilities ``(N, H, W, 1)``.
        target: ``"predicted"``, ``"truth"`` or ``"all"`` (see the module docstring).
        mask: true masks ``(N, H, W)`` or ``(N, H, W, 1)`` in {0, 1}; needed for ``"truth"``.
        threshold: probability threshold for ``"predicted"``.

    Returns:
        ``(N, H, W, 1)`` float32 in {0, 1}, never empty for a tile (empty -> whole tile).
    """
    probs = np.asarray(probs, np.float32)
    if target == "predicted":
        region = probs >= threshold
    elif target == "truth":
        if mask is None:
            raise UserError("target='truth' needs the true masks (mask=...)")
        region = _as_mask(mask, probs.shape[:3])[..., None]
    elif target == "all":
        region = np.ones_like(probs, dtype=bool)
    else:
        raise UserError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    region = region.astype(np.float32)
    empty = region.reshape(len(region), -1).sum(axis=1) == 0
    if empty.any():
        logger.debug(
            "%d tile(s) with an empty %s region: using the whole tile", empty.sum(), target
        )
        region[empty] = 1.0
    return region


def _as_mask(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``(N, H, W[, 1])`` -> boolean ``(N, H, W)``, checked against ``shape``."""
    mask = np.asarray(mask)
    if mask.ndim == len(shape) + 1 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if tuple(mask.shape) != tuple(shape):
        raise UserError(f"mask shape {mask.shape} does not match the tiles {tuple(shape)}")
    return mask > 0.5


# --------------------------------------------------------------------------------------------
# energy


def mask_area_share(mask: np.ndarray) -> float:
    """Share of the tile's pixels that are landslide (``mask`` ``(H, W[, 1])``)."""
    mask = np.asarray(mask) > 0.5
    return float(mask.mean()) if mask.size else math.nan


def cam_energy_inside(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of the CAM energy that falls inside the true landslide region.

    ``sum(cam * mask) / sum(cam)``: 1 means the map looks only at the landslide, the mask's
    area share is what a map spread evenly over the tile gets.

    >>> cam = np.array([[1.0, 1.0], [0.0, 2.0]]); mask = np.array([[0, 0], [0, 1]])
    >>> cam_energy_inside(cam, mask)
    0.5

    Args:
        cam: one map ``(H, W)`` or a batch ``(N, H, W)``, non-negative.
        mask: the true mask(s), same shape (a trailing channel of 1 is allowed), in {0, 1}.

    Returns:
        The share for one tile (``nan`` for an all-zero map); for a batch, the mean of the
        per-tile shares over tiles with landslide pixels and a non-zero map (``nan`` if none).
    """
    cam = np.asarray(cam, np.float64)
    inside = _as_mask(mask, cam.shape)
    batch = cam.ndim == 3  # a batch of one is a batch: its tile counts only with landslide
    if not batch:
        cam, inside = cam[None], inside[None]
    shares = []
    for tile_cam, tile_mask in zip(cam, inside, strict=True):
        total = tile_cam.sum()
        if total <= 0 or (batch and not tile_mask.any()):
            shares.append(math.nan)
            continue
        shares.append(float(tile_cam[tile_mask].sum() / total))
    valid = [s for s in shares if not math.isnan(s)]
    if not batch:
        return shares[0]
    return float(np.mean(valid)) if valid else math.nan
