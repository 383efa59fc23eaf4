"""The one implementation of the input preprocessing, in ``keras.ops`` (any Keras backend).

``preprocess(image, dem, spec)`` turns raw inputs into the network input that an
``InputSpec`` (``landslide_tf.data.spec``) describes. The tf.data pipeline maps it over the
training tiles, the predictor and the exported SavedModel trace it into their graphs, so
training, evaluation, prediction, scenes and the export see identical inputs.

Every function takes one tile ``(H, W, C)`` / ``(H, W)`` or a batch ``(N, H, W, C)`` /
``(N, H, W)``.

Order of operations (unchanged from release 0.1, so its runs give the same inputs):

- image bands: normalised per band (``unit``: /255; ``standard``: ``(x - mean) / std``;
  ``percentile``: ``clip((x - p2) / (p98 - p2), 0, 1)``), missing values (NaN) set to 0,
  then resized to the training size (bilinear, antialiased when shrinking);
- DEM: nodata and non-finite cells filled with the tile's valid mean, resampled bilinearly
  onto the training size, then normalised (``minmax``: each tile's min..max to 0..1, a flat
  tile, range below ``FLAT_RTOL`` of its magnitude, gives 0; ``standard``: training mean/std);
- derived terrain channels are computed from the resampled raw DEM (gradients per pixel of
  the resampled grid, or in ground units when the spec knows the DEM's pixel size);
- mask: > 0 is landslide; resized bilinearly and thresholded at 0.5, values in {0, 1}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from keras import ops

from landslide_tf.data.spec import Band, InputSpec

EPSILON = 1e-6
#: A DEM tile whose range is below this fraction of its magnitude is flat (normalises to 0):
#: resampling a constant in float32 leaves rounding noise of a few 1e-7 of the value.
FLAT_RTOL = 1e-5


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    height, width = size
    return (int(height), int(width))


def resize(x: Any, size: int | Sequence[int]) -> Any:
    """Bilinear resize of ``(..., H, W, C)`` float data, antialiased when shrinking."""
    x = ops.cast(x, "float32")
    return ops.image.resize(x, _size2(size), interpolation="bilinear", antialias=True)


def fill_nodata(dem: Any, nodata: float | None = None) -> Any:
    """Replace nodata and non-finite cells of ``(..., H, W)`` by the tile's valid mean."""
    dem = ops.cast(dem, "float32")
    valid = ops.isfinite(dem)
    if nodata is not None:
        valid = ops.logical_and(valid, ops.not_equal(dem, float(nodata)))
    safe = ops.where(valid, dem, ops.zeros_like(dem))
    total = ops.sum(safe, axis=(-2, -1), keepdims=True)
    count = ops.sum(ops.cast(valid, "float32"), axis=(-2, -1), keepdims=True)
    mean = ops.divide_no_nan(total, count)
    return ops.where(valid, dem, mean + ops.zeros_like(dem))


def minmax(dem: Any) -> Any:
    """Each tile's ``(..., H, W)`` min..max to 0..1; flat tiles give 0."""
    lo = ops.min(dem, axis=(-2, -1), keepdims=True)
    hi = ops.max(dem, axis=(-2, -1), keepdims=True)
    scale = ops.maximum(ops.abs(lo), ops.abs(hi))
    flat = ops.less_equal(hi - lo, FLAT_RTOL * scale)  # also true when hi == lo
    stretched = ops.divide_no_nan(dem - lo, hi - lo)
    return ops.where(flat, ops.zeros_like(dem), stretched)


def standardize(x: Any, mean: float, std: float) -> Any:
    """``(x - mean) / std`` (std floored at ``EPSILON``)."""
    return (x - float(mean)) / max(float(std), EPSILON)


def normalize_dem(dem: Any, band: Band) -> Any:
    """The DEM band's normalisation of a resampled DEM ``(..., H, W)``."""
    if band.norm == "minmax":
        return minmax(dem)
    if band.norm == "standard":
        return standardize(dem, *band.params)
    raise ValueError(f"the DEM cannot be normalised with {band.norm!r}")


def terrain(dem: Any, names: Sequence[str], step: tuple[Any, Any] | None = None) -> Any:
    """Terrain channels from a raw DEM ``(..., H, W)`` -> ``(..., H, W, len(names))``.

    ``slope``: arctan of the gradient magnitude, scaled to [0, 1] (1 = vertical);
    ``aspect``: downslope direction, atan2 mapped to [0, 1];
    ``hillshade``: illumination from azimuth 315 deg, altitude 45 deg, in [0, 1].
    Gradients are central differences; ``step = (dy, dx)`` is the ground size of a pixel
    (same unit as the elevation), else one pixel.
    """
    dem = ops.cast(dem, "float32")
    batched = len(dem.shape) == 3
    x = dem if batched else ops.expand_dims(dem, 0)
    x = ops.expand_dims(x, -1)  # (N, H, W, 1)
    padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="symmetric")
    dzdx = (padded[:, 1:-1, 2:, :] - padded[:, 1:-1, :-2, :]) / 2.0
    dzdy = (padded[:, 2:, 1:-1, :] - padded[:, :-2, 1:-1, :]) / 2.0
    if step is not None:
        dzdy = dzdy / step[0]
        dzdx = dzdx / step[1]
    slope = ops.arctan(ops.sqrt(dzdx**2 + dzdy**2))
    aspect = ops.arctan2(-dzdx, dzdy)
    out = []
    for name in names:
        if name == "slope":
            out.append(slope / (math.pi / 2))
        elif name == "aspect":
            out.append((aspect + math.pi) / (2 * math.pi))
        elif name == "hillshade":
            zenith = math.radians(45.0)
            azimuth = math.radians(315.0)
            shade = math.cos(zenith) * ops.cos(slope) + math.sin(zenith) * ops.sin(slope) * ops.cos(
                azimuth - aspect
            )
            out.append(ops.clip(shade, 0.0, 1.0))
        else:
            raise ValueError(
                f"unknown derived channel {name!r}; expected slope, aspect or hillshade"
            )
    result = ops.concatenate(out, axis=-1) if out else x[..., :0]
    return result if batched else result[0]


def normalize_image(image: Any, bands: Sequence[Band]) -> Any:
    """Per-band normalisation of a raw image ``(..., H, W, len(bands))``; NaN becomes 0."""
    x = ops.cast(image, "float32")
    offset, divisor, low, high = [], [], [], []
    for band in bands:
        if band.norm == "unit":
            a, d, lo, hi = 0.0, 255.0, -math.inf, math.inf
        elif band.norm == "standard":
            a, d, lo, hi = band.params[0], max(band.params[1], EPSILON), -math.inf, math.inf
        elif band.norm == "percentile":
            a, d, lo, hi = band.params[0], max(band.params[1] - band.params[0], EPSILON), 0, 1
        else:
            raise ValueError(f"image band {band.name} cannot be normalised with {band.norm!r}")
        offset.append(a)
        divisor.append(d)
        low.append(lo)
        high.append(hi)
    y = (x - ops.array(offset, "float32")) / ops.array(divisor, "float32")
    if any(math.isfinite(v) for v in low + high):
        y = ops.minimum(ops.maximum(y, ops.array(low, "float32")), ops.array(high, "float32"))
    return ops.where(ops.isfinite(y), y, ops.zeros_like(y))


def dem_band_nodata_to_nan(image: Any, spec: InputSpec, nodata: float | None) -> Any:
    """``image`` with the ``nodata`` cells of its ``dem`` band as NaN (missing).

    Only a multi-band (float) image has a ``dem`` band; others are returned as they are.

    Args:
        image: ``(..., H, W, bands)`` in the user's units.
        spec: the input spec (its ``image_bands`` name the bands).
        nodata: the DEM nodata value (``--dem-nodata``), or None.
    """
    names = [b.name for b in spec.image_bands]
    if nodata is None or "dem" not in names or spec.image_dtype == "uint8":
        return image
    column = ops.array([n == "dem" for n in names])
    hit = ops.logical_and(ops.equal(image, float(nodata)), column)
    return ops.where(hit, ops.full_like(image, math.nan), image)


def preprocess(image: Any, dem: Any, spec: InputSpec) -> Any:
    """Raw inputs to the network input ``(..., S, S, C)`` float32, channels in spec order.

    Args:
        image: the raw image ``(..., H, W, spec.image_channels)`` (uint8 RGB or float32
            bands in the user's units); None when the spec has no image band.
        dem: elevation ``(..., H', W')`` on any grid, or None when the spec has no DEM.
        spec: the run's input spec.
    """
    size = (int(spec.size), int(spec.size))
    channels: dict[str, Any] = {}
    image_bands = spec.image_bands
    if image_bands:
        if image is None:
            raise ValueError(f"this input ({spec.describe()}) needs the image")
        image = dem_band_nodata_to_nan(image, spec, spec.nodata)
        x = resize(normalize_image(image, image_bands), size)
        for i, band in enumerate(image_bands):
            channels[band.name] = x[..., i : i + 1]
    if spec.uses_dem:
        if dem is None:
            raise ValueError(f"this input ({spec.describe()}) needs a DEM")
        raw = resize(ops.expand_dims(fill_nodata(dem, spec.nodata), -1), size)[..., 0]
        band = spec.dem_band
        if band is not None:
            channels[band.name] = ops.expand_dims(normalize_dem(raw, band), -1)
        derived = spec.derived
        if derived:
            step = None
            if spec.pixel_size is not None:
                shape = ops.shape(dem)
                step = tuple(
                    ops.cast(shape[axis], "float32") * (float(spec.pixel_size) / size[0])
                    for axis in (-2, -1)
                )
            maps = terrain(raw, derived, step)
            for i, name in enumerate(derived):
                channels[name] = maps[..., i : i + 1]
    return ops.concatenate([channels[b.name] for b in spec.bands], axis=-1)


def preprocess_mask(mask: Any, size: int | Sequence[int] = 128) -> Any:
    """Mask ``(..., H, W)`` or ``(..., H, W, 1)`` (> 0 = landslide) to ``{0, 1}`` float32."""
    if len(mask.shape) in (2, 3) and (len(mask.shape) == 2 or mask.shape[-1] != 1):
        mask = ops.expand_dims(mask, -1)
    binary = ops.cast(ops.greater(mask, 0), "float32")
    resized = ops.image.resize(binary, _size2(size), interpolation="bilinear")
    return ops.cast(ops.greater_equal(resized, 0.5), "float32")
