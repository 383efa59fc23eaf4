"""Training statistics of a split, for every format: DEM or band normalisation, landslide share.

``training_statistics`` gives the derived entries a run stores in ``config.json``: Bijie runs
``dem_stats`` (mean, std of the raw DEM, for ``dem_norm="dataset"``) and
``landslide_fraction``; multi-band runs also ``band_stats`` (``bands.band_statistics``),
``band_indices``, ``available_bands`` and ``native_size``. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.data.bands import band_indices, band_statistics
from landslide_tf.data.bijie import read_sample_arrays
from landslide_tf.data.formats import DEFAULT_SEED, available_bands, check_format, read_bands
from landslide_tf.data.nodata import apply_dem_nodata, check_dem_nodata
from landslide_tf.data.readers import read_dem, read_mask
from landslide_tf.data.sample import Sample


def dem_statistics(samples: Sequence[Sample], nodata: float | None = None) -> tuple[float, float]:
    """Mean and standard deviation of the raw DEM values over all valid pixels of ``samples``
    (non-finite cells and ``nodata`` cells excluded).

    Use the training split only; pass the result as ``dem_stats`` with ``dem_norm="dataset"``.
    """
    total = total_sq = count = 0.0
    for sample in samples:
        if sample.dem is None:
            continue
        dem = read_dem(sample.dem).astype(np.float64)
        check_dem_nodata(dem, sample.dem, nodata)
        valid = np.isfinite(dem) if nodata is None else np.isfinite(dem) & (dem != nodata)
        dem = dem[valid]
        total += float(dem.sum())
        total_sq += float(np.square(dem).sum())
        count += dem.size
    if count == 0:
        raise ValueError("dem_statistics needs samples with a DEM")
    mean = total / count
    std = float(np.sqrt(max(total_sq / count - mean**2, 0.0)))
    return float(mean), std


def sample_landslide_fraction(samples: Sequence[Sample], data_format: str | None = None) -> float:
    """Share of landslide pixels of tiles, counted on the original masks (negatives and
    unlabelled tiles count their image's pixels as background)."""
    fmt = check_format(data_format)
    positive = total = 0.0
    for sample in samples:
        if fmt.multiband:
            image, mask = read_bands(sample, fmt.name, [0])
            positive += 0.0 if mask is None else float(mask.sum())
            total += image.shape[0] * image.shape[1]
        elif sample.mask is not None:
            mask = read_mask(sample.mask)
            positive += float(mask.sum())
            total += mask.size
        else:
            modalities = "rgb" if sample.image is not None and sample.image.exists() else "dem"
            rgb, dem, _, _ = read_sample_arrays(sample, modalities)
            ref = rgb if rgb is not None else dem
            total += ref.shape[0] * ref.shape[1]
    if total == 0:
        raise ValueError("landslide_fraction got no pixels")
    return positive / total


def training_statistics(
    samples: Sequence[Sample],
    data_format: str | None = None,
    *,
    root: str | Path | None = None,
    bands: Sequence[str] | None = None,
    band_norm: str = "standard",
    dem: bool = True,
    nodata: float | None = None,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """The normalisation statistics and landslide share of a training split.

    Args:
        samples: the training split.
        data_format: ``bijie`` (None), ``l4s`` or ``folder``.
        root: the dataset folder (multi-band: names its bands).
        bands: multi-band: the run's band names (None = every band).
        band_norm: multi-band: ``standard`` or ``percentile``.
        dem: Bijie: whether the run uses the DEM (``dem_stats`` is None otherwise).
        nodata: DEM value marking missing cells (multi-band: in the band named ``dem``);
            without it a DEM with a suspicious value stops (``nodata.check_dem_nodata``).
        seed: multi-band: seeds the pixel sample of the percentiles.

    Returns:
        Bijie: ``dem_stats`` and ``landslide_fraction``; multi-band: also ``band_indices``,
        ``band_stats``, ``available_bands`` and ``native_size``.
    """
    fmt = check_format(data_format)
    if not fmt.multiband:
        stats = [float(v) for v in dem_statistics(samples, nodata)] if dem else None
        return {"dem_stats": stats, "landslide_fraction": sample_landslide_fraction(samples)}
    if root is None:
        raise ValueError(f"{fmt.name} statistics need the dataset root (its band names)")
    names = available_bands(fmt.name, root)
    indices = band_indices(list(bands or names), names)
    positive, total, sides = 0.0, 0.0, []

    chosen = [names[i] for i in indices]

    def arrays() -> Iterator[np.ndarray]:
        nonlocal positive, total
        for sample in samples:
            image, mask = read_bands(sample, fmt.name, indices)
            image = apply_dem_nodata(image, chosen, nodata)
            if "dem" in chosen:
                where = sample.dem or sample.image
                check_dem_nodata(image[..., chosen.index("dem")], where, nodata)
            sides.append(max(image.shape[:2]))
            if mask is not None:
                positive += float(mask.sum())
            total += image.shape[0] * image.shape[1]
            yield image

    norm = band_statistics(arrays(), band_norm, seed=seed, names=chosen)
    return {
        "band_indices": indices,
        "band_stats": norm,
        "available_bands": names,
        "landslide_fraction": positive / max(total, 1.0),
        "dem_stats": None,
        "native_size": int(np.median(sides)),
    }
