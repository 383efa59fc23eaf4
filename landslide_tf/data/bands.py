"""Band selection and per-band normalisation statistics for the multi-band formats.

The ``l4s`` and ``folder`` formats (see ``landslide_tf.data.formats``) hand the network a
stack of bands in the user's own units. ``--bands`` picks and orders them:

- by name: Landslide4Sense ``B1``..``B12``, ``slope``, ``dem``; a GeoTIFF's band
  descriptions; ``dem`` for a folder's ``dem/`` rasters;
- by 1-based index into the format's full band list (``1,2,3``);
- by alias: ``rgb`` (l4s: ``B4,B3,B2``; folder: bands 1, 2, 3), ``rgb+dem`` (the same plus
  ``dem``), ``all`` (every band, the default).

Normalisation is per band with statistics of the training split, stored in the run's
``config.json`` as ``band_norm`` (``{"method": ..., "params": [[a, b], ...]}``):

- ``standard``: ``(x - mean) / std``;
- ``percentile``: ``clip((x - p2) / (p98 - p2), 0, 1)`` (reflectance with bright outliers).

Missing values (NaN: a raster's nodata) are ignored by the statistics and become 0 after
normalisation. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from landslide_tf.data.spec import InputSpec
from landslide_tf.errors import DataError, UserError

#: Landslide4Sense band order inside every ``image_N.h5`` (Ghorbanzadeh et al. 2022).
L4S_BANDS = (*(f"B{i}" for i in range(1, 13)), "slope", "dem")
#: Aliases per format: name -> band names.
ALIASES = {
    "l4s": {"rgb": ["B4", "B3", "B2"], "rgb+dem": ["B4", "B3", "B2", "dem"]},
}
BAND_NORMS = ("standard", "percentile")
#: Percentile clipping bounds for ``band_norm="percentile"``.
PERCENTILES = (2.0, 98.0)
#: Pixels per band kept (seeded sample) to estimate the percentiles.
PERCENTILE_SAMPLE = 1_000_000
#: Pixels per tile drawn into that sample.
PIXELS_PER_TILE = 512


def parse_bands(text: str | Sequence[str] | None) -> list[str] | None:
    """``"B2,B3, B4"`` or ``["B2", "B3"]`` -> ``["B2", "B3", "B4"]``; None stays None."""
    if text is None:
        return None
    items = [text] if isinstance(text, str) else list(text)
    out = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    if not out:
        raise UserError("--bands is empty; give band names or 1-based indices, e.g. B2,B3,B4")
    return out


def resolve_bands(
    spec: Sequence[str] | None, available: Sequence[str], data_format: str
) -> list[str]:
    """Band names chosen by ``spec`` among ``available`` (the format's full band list).

    Args:
        spec: names, 1-based indices or aliases (``rgb``, ``rgb+dem``, ``all``); None = all.
        available: every band the dataset has, in its order.
        data_format: ``l4s`` or ``folder`` (for the aliases).

    Returns:
        Band names in the chosen order (no duplicates).

    Raises:
        UserError: an unknown name or an index out of range; lists the valid names.
    """
    available = list(available)
    if not spec:
        return available
    lower = {name.lower(): name for name in available}
    aliases = dict(ALIASES.get(data_format, {}))
    if data_format != "l4s" and len(available) >= 3:
        aliases["rgb"] = available[:3]
        if "dem" in available:
            aliases["rgb+dem"] = [*available[:3], "dem"]
    aliases["all"] = available
    out: list[str] = []
    for item in spec:
        key = item.strip()
        if key.lower() in aliases:
            out += aliases[key.lower()]
        elif key.lower() in lower:
            out.append(lower[key.lower()])
        elif key.isdigit() and 1 <= int(key) <= len(available):
            out.append(available[int(key) - 1])
        else:
            valid = ", ".join(available)
            raise UserError(
                f"--bands {key!r}: the {data_format} data has no such band; valid names: "
                f"{valid} (or 1-based indices 1..{len(available)}, or "
                f"{', '.join(sorted(aliases))})"
            )
    if len(set(out)) != len(out):
        raise UserError(f"--bands {','.join(spec)} names a band twice ({', '.join(out)})")
    return out


def band_indices(names: Sequence[str], available: Sequence[str]) -> list[int]:
    """0-based positions of ``names`` in ``available``."""
    available = list(available)
    return [available.index(name) for name in names]


def dead_bands_problem(names: Sequence[str], valid_counts: Sequence[float]) -> str | None:
    """One line naming the bands without a single valid value in the training split, or None.

    A band that is NaN (or nodata) in every file would train as a constant, dead channel.
    """
    dead = [str(n) for n, c in zip(names, valid_counts, strict=True) if not c]
    if not dead:
        return None
    listed = ", ".join(dead)
    return (
        f"band{'s' if len(dead) > 1 else ''} {listed}: no valid value in the training split "
        "(NaN or nodata in every file); leave "
        f"{'them' if len(dead) > 1 else 'it'} out with --bands, or fix the files"
    )


def band_statistics(
    arrays: Iterable[np.ndarray],
    method: str = "standard",
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> dict[str, object]:
    """Per-band normalisation parameters from training arrays.

    Args:
        arrays: ``(H, W, C)`` float arrays in user units (NaN = missing), the training split.
        method: ``standard`` (mean, std) or ``percentile`` (p2, p98).
        seed: for the pixel sample behind the percentiles.
        names: the bands' names (default ``1``..``C``), for the error below.

    Returns:
        ``{"method": method, "params": [[a, b], ...]}`` (one pair per band).

    Raises:
        DataError: a band without one finite value (``dead_bands_problem``).
    """
    if method not in BAND_NORMS:
        raise UserError(f"unknown --band-norm {method!r}; expected one of {', '.join(BAND_NORMS)}")
    rng = np.random.default_rng(seed)
    total = total_sq = count = None
    samples: list[np.ndarray] = []
    for array in arrays:
        flat = np.asarray(array, np.float64).reshape(-1, array.shape[-1])  # (pixels, C)
        valid = np.isfinite(flat)
        values = np.where(valid, flat, 0.0)
        if total is None:
            total = np.zeros(flat.shape[1])
            total_sq = np.zeros(flat.shape[1])
            count = np.zeros(flat.shape[1])
        total += values.sum(0)
        total_sq += np.square(values).sum(0)
        count += valid.sum(0)
        if method == "percentile":
            keep = min(len(flat), PIXELS_PER_TILE)
            samples.append(flat[rng.choice(len(flat), keep, replace=False)].astype(np.float32))
    if total is None:
        raise UserError("no training tiles to compute band statistics from")
    problem = dead_bands_problem(
        list(names) if names is not None else [str(i + 1) for i in range(len(count))], count
    )
    if problem:
        raise DataError(problem)
    if method == "standard":
        mean = np.divide(total, np.maximum(count, 1))
        std = np.sqrt(np.maximum(total_sq / np.maximum(count, 1) - mean**2, 0.0))
        params = [[float(m), float(s)] for m, s in zip(mean, std, strict=True)]
    else:
        pool = np.concatenate(samples)
        if len(pool) > PERCENTILE_SAMPLE:
            pool = pool[rng.choice(len(pool), PERCENTILE_SAMPLE, replace=False)]
        params = []
        for c in range(pool.shape[1]):
            column = pool[:, c][np.isfinite(pool[:, c])]
            if column.size == 0:
                params.append([0.0, 1.0])
                continue
            lo, hi = np.percentile(column, PERCENTILES)
            params.append([float(lo), float(hi)])
    return {"method": method, "params": params}


def normalize_numpy(x: np.ndarray, norm: dict[str, object]) -> np.ndarray:
    """NumPy twin of ``landslide_tf.data.preprocess.normalize_image`` (for figures)."""
    params = np.asarray(norm["params"], np.float32)  # (C, 2)
    a, b = params[:, 0], params[:, 1]
    if norm["method"] == "standard":
        y = (x - a) / np.maximum(b, 1e-6)
    else:
        y = np.clip((x - a) / np.maximum(b - a, 1e-6), 0.0, 1.0)
    return np.where(np.isfinite(y), y, 0.0).astype(np.float32)


def display_rgb(x: np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    """A viewable ``(N, H, W, 3)`` in [0, 1] from normalised bands ``(N, H, W, C)``.

    Uses B4, B3, B2 when present, else the first three bands (one band is repeated), each
    stretched between its 2nd and 98th percentile per tile.
    """
    names = list(names or [])
    if all(b in names for b in ("B4", "B3", "B2")):
        picks = [names.index(b) for b in ("B4", "B3", "B2")]
    else:
        picks = [min(i, x.shape[-1] - 1) for i in range(3)]
    rgb = np.asarray(x, np.float32)[..., picks]
    lo = np.percentile(rgb, 2, axis=(1, 2), keepdims=True)
    hi = np.percentile(rgb, 98, axis=(1, 2), keepdims=True)
    return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0.0, 1.0)


def display_input(x: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, str]:
    """``(what to show, its modalities)`` of network inputs ``x (N, H, W, C)``.

    Multi-band inputs become a stretched RGB (``display_rgb``, modalities ``rgb``); Bijie
    inputs are shown as they are, with their modalities (``rgb+dem``, ``rgb``, ``dem``).
    """
    if spec.multiband:
        return display_rgb(x, spec.channel_names), "rgb"
    return x, spec.modalities
