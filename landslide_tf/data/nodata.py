"""The one DEM nodata detection, shared by ``data check``, ``train``, ``evaluate`` and ``predict``.

NaN is always nodata; ``--dem-nodata V`` (or a GeoTIFF nodata tag) names one more value.
Without either, a DEM holding a suspicious value is refused, because its cells would be
read as elevation (a 65535 block is a cliff the model learns from): ``dem_nodata_spike``
finds the type's extreme (0, 255 or 65535) or a common sentinel (-9999, -32768, -32767,
-3.4e38) on at least ``SPIKE_MIN_SHARE`` of the cells, far from every other value;
``check_dem_nodata`` raises one line naming the value and the flag to pass. ``data check``
reports the same finding as a warning.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from landslide_tf.errors import DataError

#: A suspicious value held by at least this share of a DEM's cells ...
SPIKE_MIN_SHARE = 0.005
#: ... and this far (share of the type's range) from every other value looks like nodata.
SPIKE_MIN_GAP = 0.1
#: Values GIS software writes for missing elevation.
SENTINELS = (-9999.0, -32768.0, -32767.0, -3.4028234663852886e38)


def dem_nodata_spike(dem: np.ndarray) -> tuple[float, str] | None:
    """``(value, reason)`` when a DEM looks like it holds a nodata block, else None."""
    dem = np.asarray(dem)
    finite = dem[np.isfinite(dem)]
    if finite.size == 0:
        return None
    values, counts = np.unique(finite, return_counts=True)
    if values.size < 2:
        return None
    total = counts.sum()
    for sentinel in SENTINELS:
        hit = np.flatnonzero(np.isclose(values, sentinel, rtol=1e-6, atol=0.0))
        if hit.size and counts[hit].sum() / total >= SPIKE_MIN_SHARE:
            value = float(values[hit[0]])
            rest = values[~np.isin(np.arange(values.size), hit)]
            share = 100 * counts[hit].sum() / total
            return value, (
                f"{share:.1f} % of the DEM cells are {value:g}, a common nodata value "
                f"(other values {rest.min():g}..{rest.max():g})"
            )
    top = 65535.0 if float(values[-1]) > 255 else 255.0
    for extreme, index, neighbour in ((0.0, 0, 1), (top, -1, -2)):
        if values[index] != extreme:
            continue
        share = counts[index] / total
        gap = abs(float(values[neighbour]) - extreme)
        if share >= SPIKE_MIN_SHARE and gap >= SPIKE_MIN_GAP * top:
            rest = values[1:] if index == 0 else values[:-1]
            return extreme, (
                f"{100 * share:.1f} % of the DEM cells are {extreme:g}, the "
                f"{'16' if top > 255 else '8'}-bit extreme, far from the other values "
                f"({rest.min():g}..{rest.max():g})"
            )
    return None


def dem_nodata_warning(dem: np.ndarray) -> str | None:
    """The ``data check`` line for a suspicious DEM (None when it looks fine)."""
    found = dem_nodata_spike(dem)
    if found is None:
        return None
    value, reason = found
    return f"{reason}: likely nodata; train with --dem-nodata {value:g}"


def check_dem_nodata(dem: np.ndarray, where: Any, nodata: float | None) -> None:
    """Refuse a DEM with a suspicious value when no nodata value was given.

    Args:
        dem: the raw elevation (NaN and tagged nodata already NaN).
        where: the file (or scene) named in the message.
        nodata: the ``--dem-nodata`` value in force (None: none given).

    Raises:
        DataError: one line naming the value and ``--dem-nodata V``.
    """
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        return
    found = dem_nodata_spike(dem)
    if found is None:
        return
    value, reason = found
    raise DataError(
        f"{where}: {reason}: likely nodata without a nodata tag; pass --dem-nodata {value:g} "
        "to treat it as missing (or fix the file)"
    )


def apply_dem_nodata(image: np.ndarray, names: Sequence[str], nodata: float | None) -> np.ndarray:
    """Multi-band ``(H, W, C)``: cells of the band named ``dem`` equal to ``nodata`` -> NaN."""
    if nodata is None or "dem" not in names:
        return image
    column = list(names).index("dem")
    image = np.array(image, np.float32, copy=True)
    band = image[..., column]
    band[band == np.float32(nodata)] = np.nan
    return image
