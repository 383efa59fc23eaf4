"""The one implementation of the paper's preprocessing, in TensorFlow ops.

The dataset loader calls these functions eagerly on decoded tiles; ``export`` and ``predict``
trace the very same functions into their graphs, so a SavedModel preprocesses raw inputs
exactly as training did.

Every function takes one tile ``(H, W, C)`` / ``(H, W)`` or a batch ``(N, H, W, C)`` /
``(N, H, W)``.

Conventions (documented in the README):
- image: uint8 RGB -> float32 in [0, 1], then bilinear resize (antialiased when shrinking);
- DEM: nodata and non-finite cells are filled with the mean of the valid cells, the DEM is
  resampled bilinearly onto the image grid, then normalized: ``"minmax"`` (default) maps each
  tile's own min..max to 0..1 (a flat tile gives 0: a range below ``FLAT_RTOL`` of the
  tile's magnitude, e.g. resampling noise on a constant, counts as flat); ``"dataset"`` standardizes with the
  training split's mean and standard deviation, ``(dem - mean) / std``;
- derived DEM channels (optional, beyond the paper) are computed from the resampled, raw DEM;
- mask: > 0 is landslide; resized bilinearly and thresholded at 0.5, values in {0, 1}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import tensorflow as tf

EPSILON = 1e-6
#: A DEM tile whose range is below this fraction of its magnitude is flat (normalises to 0):
#: resampling a constant in float32 leaves rounding noise of a few 1e-7 of the value.
FLAT_RTOL = 1e-5


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    height, width = size
    return (int(height), int(width))


def resize(x: tf.Tensor, size: int | Sequence[int]) -> tf.Tensor:
    """Bilinear resize of ``(..., H, W, C)`` float data, antialiased when shrinking."""
    x = tf.convert_to_tensor(x, tf.float32)
    return tf.image.resize(x, _size2(size), method="bilinear", antialias=True)


def normalize_image(image: tf.Tensor) -> tf.Tensor:
    """uint8 (or 0..255 float) RGB to float32 in [0, 1]."""
    return tf.cast(tf.convert_to_tensor(image), tf.float32) / 255.0


def fill_nodata(dem: tf.Tensor, nodata: float | None = None) -> tf.Tensor:
    """Replace nodata and non-finite cells of ``(..., H, W)`` by the tile's valid mean."""
    dem = tf.cast(tf.convert_to_tensor(dem), tf.float32)
    valid = tf.math.is_finite(dem)
    if nodata is not None:
        valid = tf.logical_and(valid, tf.not_equal(dem, tf.cast(nodata, tf.float32)))
    validf = tf.cast(valid, tf.float32)
    safe = tf.where(valid, dem, tf.zeros_like(dem))
    total = tf.reduce_sum(safe, axis=[-2, -1], keepdims=True)
    count = tf.reduce_sum(validf, axis=[-2, -1], keepdims=True)
    mean = tf.math.divide_no_nan(total, count)
    return tf.where(valid, dem, mean + tf.zeros_like(dem))


def normalize_dem(
    dem: tf.Tensor,
    method: str = "minmax",
    stats: Sequence[float] | None = None,
) -> tf.Tensor:
    """Normalize a DEM ``(..., H, W)``.

    Args:
        dem: elevation (any units; Bijie ships 8-bit grayscale PNGs, dark = low).
        method: ``"minmax"`` (per tile to [0, 1]; flat tiles, range <= ``FLAT_RTOL`` x
            magnitude, give 0) or ``"dataset"`` (``(dem - mean) / std``).
        stats: ``(mean, std)`` of the training split, required for ``"dataset"``.

    Returns:
        float32 tensor of the same shape.
    """
    dem = tf.cast(tf.convert_to_tensor(dem), tf.float32)
    if method == "minmax":
        lo = tf.reduce_min(dem, axis=[-2, -1], keepdims=True)
        hi = tf.reduce_max(dem, axis=[-2, -1], keepdims=True)
        scale = tf.maximum(tf.abs(lo), tf.abs(hi))
        flat = (hi - lo) <= FLAT_RTOL * scale  # also true when hi == lo
        stretched = tf.math.divide_no_nan(dem - lo, hi - lo)
        return tf.where(flat, tf.zeros_like(dem), stretched)
    if method == "dataset":
        if stats is None:
            raise ValueError("dem_norm='dataset' needs stats=(mean, std) of the training split")
        mean, std = float(stats[0]), float(stats[1])
        return (dem - mean) / max(std, EPSILON)
    raise ValueError(f"unknown DEM normalization {method!r}; expected 'minmax' or 'dataset'")


def derived_channels(dem: tf.Tensor, names: Sequence[str]) -> tf.Tensor:
    """Terrain channels from a raw DEM ``(..., H, W)`` -> ``(..., H, W, len(names))``.

    ``slope``: arctan of the gradient magnitude, scaled to [0, 1] (1 = vertical);
    ``aspect``: downslope direction, atan2 mapped to [0, 1];
    ``hillshade``: illumination from azimuth 315 deg, altitude 45 deg, in [0, 1].
    Gradients are central differences in pixel units of the resampled grid.
    """
    dem = tf.cast(tf.convert_to_tensor(dem), tf.float32)
    batched = dem.shape.rank == 3
    x = dem if batched else dem[tf.newaxis]
    x = x[..., tf.newaxis]  # (N, H, W, 1)
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    dzdx = (padded[:, 1:-1, 2:, :] - padded[:, 1:-1, :-2, :]) / 2.0
    dzdy = (padded[:, 2:, 1:-1, :] - padded[:, :-2, 1:-1, :]) / 2.0
    slope = tf.atan(tf.sqrt(dzdx**2 + dzdy**2))
    aspect = tf.atan2(-dzdx, dzdy)
    out = []
    for name in names:
        if name == "slope":
            out.append(slope / (math.pi / 2))
        elif name == "aspect":
            out.append((aspect + math.pi) / (2 * math.pi))
        elif name == "hillshade":
            zenith = math.radians(45.0)
            azimuth = math.radians(315.0)
            shade = math.cos(zenith) * tf.cos(slope) + math.sin(zenith) * tf.sin(slope) * tf.cos(
                azimuth - aspect
            )
            out.append(tf.clip_by_value(shade, 0.0, 1.0))
        else:
            raise ValueError(
                f"unknown derived channel {name!r}; expected slope, aspect or hillshade"
            )
    result = tf.concat(out, axis=-1) if out else x[..., :0]
    return result if batched else result[0]


def preprocess_inputs(
    image: tf.Tensor | None,
    dem: tf.Tensor | None,
    size: int | Sequence[int] = 128,
    modalities: str = "rgb+dem",
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    derived: Sequence[str] = (),
    nodata: float | None = None,
) -> tf.Tensor:
    """Raw image and DEM to the network input ``(..., size, size, C)`` float32.

    Args:
        image: uint8 RGB ``(..., H, W, 3)``; ignored (may be None) for ``modalities="dem"``.
        dem: elevation ``(..., H', W')`` on any grid; resampled onto ``size``. Ignored (may be
            None) for ``modalities="rgb"``.
        size: output height and width (an int or ``(h, w)``).
        modalities: ``"rgb+dem"`` (RGB then DEM), ``"rgb"`` or ``"dem"``.
        dem_norm: ``"minmax"`` or ``"dataset"`` (see ``normalize_dem``).
        dem_stats: ``(mean, std)`` for ``"dataset"``.
        derived: extra DEM channels appended after the DEM: slope, aspect, hillshade.
        nodata: DEM value that marks missing cells.

    Returns:
        Channels in the order RGB, DEM, derived.
    """
    parts = []
    if modalities in ("rgb+dem", "rgb"):
        if image is None:
            raise ValueError(f"modalities={modalities!r} needs an RGB image")
        parts.append(resize(normalize_image(image), size))
    if modalities in ("rgb+dem", "dem"):
        if dem is None:
            raise ValueError(f"modalities={modalities!r} needs a DEM")
        raw = resize(fill_nodata(dem, nodata)[..., tf.newaxis], size)[..., 0]
        parts.append(normalize_dem(raw, dem_norm, dem_stats)[..., tf.newaxis])
        if derived:
            parts.append(derived_channels(raw, derived))
    elif modalities != "rgb":
        raise ValueError(f"unknown modalities {modalities!r}; expected rgb+dem, rgb or dem")
    return tf.concat(parts, axis=-1)


def preprocess_mask(mask: tf.Tensor, size: int | Sequence[int] = 128) -> tf.Tensor:
    """Mask ``(..., H, W)`` or ``(..., H, W, 1)`` (> 0 = landslide) to ``{0, 1}`` float32."""
    mask = tf.convert_to_tensor(mask)
    if mask.shape.rank is not None and mask.shape[-1] != 1:
        mask = mask[..., tf.newaxis]
    binary = tf.cast(mask > 0, tf.float32)
    resized = tf.image.resize(binary, _size2(size), method="bilinear")
    return tf.cast(resized >= 0.5, tf.float32)
