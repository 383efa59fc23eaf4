"""The tf.data input pipeline: decode once, cache, shuffle, augment, batch, prefetch.

Tiles are decoded and preprocessed in parallel inside tf.data (``data/parallel.py``). With
``cache=True`` (default) every tile is decoded once into in-memory arrays before the dataset
is built, so file errors surface as one-line ``DataError`` at build time rather than as
TensorFlow errors mid-epoch; when the decoded tiles would not fit in the memory budget
(40 % of the available memory, or ``$LANDSLIDE_TF_CACHE_MB``) the pipeline streams from disk
instead. ``cache=False`` always streams: files are checked up front (cheaply, without
decoding), decoded on every pass, with bounded prefetching.

``load_arrays`` is the former tile-by-tile eager loader, kept as the reference the parallel
pipeline is tested against and benchmarked with (``benchmarks/data_pipeline.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from landslide_tf.data.augment import (  # noqa: F401  (augment_pair re-exported)
    augment_dataset,
    augment_pair,
    make_augmenter,
)
from landslide_tf.data.bijie import Sample, load_sample, read_dem, read_mask, read_sample_arrays
from landslide_tf.data.parallel import (
    CACHE_MB_ENV,
    decoded_bytes,
    fill_cache,
    memory_budget_bytes,
    tile_dataset,
    validate_files,
)
from landslide_tf.data.readers import summarized_notes
from landslide_tf.errors import DataError
from landslide_tf.training.config import num_channels

logger = logging.getLogger(__name__)

#: Log progress every this many seconds while loading tiles.
PROGRESS_EVERY_S = 10.0


def load_arrays(
    samples: Sequence[Sample],
    image_size: int = 128,
    modalities: str = "rgb+dem",
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    derived: Sequence[str] = (),
    nodata: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load all tiles into memory, one by one (the former loader; ``make_dataset`` decodes in
    parallel and gives the same arrays). ``nodata``: DEM value marking missing cells.

    Returns:
        ``x (N, H, W, C)`` float32 and ``y (N, H, W, 1)`` float32.
    """
    xs, ys = [], []
    start = last = time.monotonic()
    with summarized_notes():  # one line per kind of note, not one per file
        for i, sample in enumerate(samples):
            x, y = load_sample(sample, image_size, modalities, dem_norm, dem_stats, derived, nodata)
            xs.append(x)
            ys.append(y)
            now = time.monotonic()
            if now - last > PROGRESS_EVERY_S:
                logger.info("loaded %d/%d tiles (%.0f s)", i + 1, len(samples), now - start)
                last = now
    if not xs:
        raise ValueError("no samples to load")
    logger.info("loaded %d tiles in %.1f s", len(xs), time.monotonic() - start)
    return np.stack(xs), np.stack(ys)


def make_dataset(
    samples: Sequence[Sample],
    *,
    image_size: int = 128,
    modalities: str = "rgb+dem",
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    derived: Sequence[str] = (),
    batch_size: int = 2,
    shuffle: bool = False,
    augment: bool = False,
    augment_policy: str = "dihedral",
    seed: int = 42,
    cache: bool = True,
    repeat: bool = False,
    nodata: float | None = None,
) -> tf.data.Dataset:
    """Build the input pipeline for a list of tiles.

    Args:
        samples: tiles, e.g. one split of ``make_split``.
        image_size: tiles are resized to ``image_size x image_size``.
        modalities: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``.
        dem_norm: ``"minmax"`` or ``"dataset"`` (needs ``dem_stats``).
        dem_stats: ``(mean, std)`` from ``dem_statistics(train_samples)``.
        derived: extra DEM channels (``slope``, ``aspect``, ``hillshade``).
        batch_size: tiles per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch, seeded.
        augment: random flips and 90-degree rotations, identical for input and mask.
        augment_policy: ``"dihedral"`` (the above) or ``"strong"`` (see
            ``landslide_tf.data.augment``).
        seed: seed for shuffling and augmentation.
        cache: decode every tile once into memory (default; streams when the decoded tiles
            exceed the memory budget); False streams from disk, decoding on every pass.
        repeat: repeat forever.
        nodata: DEM value marking missing cells (NaN always does); filled like NaN.

    Returns:
        A dataset of ``(x (B, H, W, C), y (B, H, W, 1))`` float32 batches.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("make_dataset needs at least one sample")
    options = dict(
        image_size=image_size,
        modalities=modalities,
        dem_norm=dem_norm,
        dem_stats=dem_stats,
        derived=tuple(derived),
        nodata=nodata,
    )
    in_memory = cache
    if cache:
        try:
            channels = num_channels(modalities, derived)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        need = decoded_bytes(len(samples), image_size, channels)
        budget = memory_budget_bytes()
        if need > budget:
            logger.warning(
                "%d decoded tiles need %.0f MiB, over the %.0f MiB memory budget: streaming "
                "from disk every epoch (set $%s to change the budget)",
                len(samples),
                need / 2**20,
                budget / 2**20,
                CACHE_MB_ENV,
            )
            in_memory = False
    if in_memory:
        tiles, reader = tile_dataset(samples, **options)
        with summarized_notes():  # one line per kind of reader note, not one per file
            ds = fill_cache(tiles, reader, len(samples))
        if shuffle:
            ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    else:
        validate_files(samples, modalities)
        ds, _ = tile_dataset(samples, **options, shuffle_seed=seed if shuffle else None)
    if augment:
        ds = augment_dataset(ds, make_augmenter(augment_policy, modalities), seed)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


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


def landslide_fraction(samples_or_dataset: Sequence[Sample] | tf.data.Dataset) -> float:
    """Share of landslide pixels, e.g. for weighted cross-entropy class weights.

    For samples it is counted on the original masks (negatives count their image's pixels as
    background); for a dataset of ``(x, y)`` batches it is the mean of ``y``.
    """
    positive = total = 0.0
    if isinstance(samples_or_dataset, tf.data.Dataset):
        for batch in samples_or_dataset:
            y = batch[1] if isinstance(batch, (tuple, list)) else batch
            positive += float(tf.reduce_sum(y))
            total += float(tf.size(y))
    else:
        for sample in samples_or_dataset:
            if sample.mask is not None:
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
