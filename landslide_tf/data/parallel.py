"""Parallel tile decoding for the tf.data pipeline.

Each tile goes through ``tf.data`` ``map(num_parallel_calls=AUTOTUNE, deterministic=True)``:
a ``tf.numpy_function`` reads its PNG files with the validated readers of ``readers.py``
(OpenCV decodes without holding the GIL, so several tiles decode at once), and the
preprocessing of ``landslide_tf.data.preprocess`` runs as a traced graph in the same map, not
op by op in eager mode. The outputs are those of ``load_sample``, tile for tile.

File errors stay one-line ``DataError``: the reader records the first ``DataError`` it raises,
and ``fill_cache`` (the in-memory path) re-raises it instead of TensorFlow's error. The
streaming path (datasets larger than the memory budget) checks every file up front
(``validate_files``: existence, PNG signature, chunk checksums, no decoding).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from landslide_tf.data.bijie import Sample, read_sample_arrays
from landslide_tf.data.readers import PNG_SIGNATURE, _png_structure_problem, _warn
from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

#: Share of the available memory the decoded training tiles may take (else: stream).
MEMORY_SHARE = 0.4
#: Environment variable overriding the in-memory budget in MiB (0 = always stream).
CACHE_MB_ENV = "LANDSLIDE_TF_CACHE_MB"


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (``None`` where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_budget_bytes() -> int:
    """Bytes the decoded tiles may take in memory: ``$LANDSLIDE_TF_CACHE_MB`` or 40 % of free."""
    raw = os.environ.get(CACHE_MB_ENV, "").strip()
    if raw:
        try:
            return int(float(raw) * 2**20)
        except ValueError:
            raise DataError(f"${CACHE_MB_ENV}={raw!r}; expected a number of MiB") from None
    free = available_memory_bytes()
    return int(free * MEMORY_SHARE) if free else 4 * 2**30


def decoded_bytes(n: int, image_size: int, channels: int) -> int:
    """Memory of ``n`` decoded tiles: float32 inputs plus the float32 mask."""
    return int(n) * image_size * image_size * (channels + 1) * 4


def validate_files(samples: Sequence[Sample], modalities: str) -> None:
    """Check every file a tile needs without decoding it; raise ``DataError`` on the first bad one.

    Existence, non-empty, PNG signature and chunk checksums (a few microseconds per file);
    what only decoding can find is reported when the tile is read.
    """
    for sample in samples:
        paths = []
        if modalities in ("rgb+dem", "rgb"):
            paths.append(Path(sample.image))
        if modalities in ("rgb+dem", "dem"):
            if sample.dem is None:
                raise DataError(
                    f"{sample.image}: no DEM for {sample.stem}; expected dem/{sample.stem}.png"
                )
            paths.append(Path(sample.dem))
        if sample.mask is not None:
            paths.append(Path(sample.mask))
        for path in paths:
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise DataError(f"{path}: file not found") from None
            except OSError as exc:
                raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
            if not data:
                raise DataError(f"{path}: empty file; expected a PNG image")
            if data[:8] != PNG_SIGNATURE:
                raise DataError(f"{path}: not a PNG file; expected a PNG image")
            problem = _png_structure_problem(data)
            if problem:
                raise DataError(f"{path}: corrupt PNG ({problem}); expected a valid PNG image")


class TileReader:
    """The ``numpy_function`` body: index -> raw ``(rgb, dem, mask)`` arrays of one tile.

    Missing parts are empty arrays (``rgb`` for DEM-only data, ``dem`` for RGB-only data,
    ``mask`` for negatives). The first ``DataError`` is kept in ``error``.
    """

    def __init__(self, samples: Sequence[Sample], modalities: str) -> None:
        self.samples = list(samples)
        self.modalities = modalities
        self.error: DataError | None = None
        self._lock = threading.Lock()

    def __call__(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sample = self.samples[int(index)]
        try:
            rgb, dem, mask, notes = read_sample_arrays(sample, self.modalities)
        except DataError as exc:
            with self._lock:
                self.error = self.error or exc
            raise
        _warn(notes)
        return (
            np.zeros((0, 0, 3), np.uint8) if rgb is None else np.ascontiguousarray(rgb),
            np.zeros((0, 0), np.float32) if dem is None else dem.astype(np.float32, copy=False),
            np.zeros((0, 0), np.uint8) if mask is None else mask.astype(np.uint8, copy=False),
        )


def tile_dataset(
    samples: Sequence[Sample],
    image_size: int = 128,
    modalities: str = "rgb+dem",
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    derived: Sequence[str] = (),
    shuffle_seed: int | None = None,
    nodata: float | None = None,
) -> tuple[tf.data.Dataset, TileReader]:
    """Unbatched ``(x (S, S, C), y (S, S, 1))`` float32 tiles, decoded in parallel.

    In the order of ``samples``, or reshuffled every pass with ``shuffle_seed`` (the indices
    are shuffled before decoding, so streaming keeps no decoded tiles in a shuffle buffer).

    Returns:
        The dataset and its ``TileReader`` (whose ``error`` holds the first file error).
    """
    from landslide_tf.data.preprocess import preprocess, preprocess_mask
    from landslide_tf.data.spec import bijie_spec

    if dem_norm == "dataset" and dem_stats is None and modalities != "rgb":
        raise DataError("dem_norm='dataset' needs dem_stats=(mean, std) of the training split")
    reader = TileReader(samples, modalities)
    spec = bijie_spec(image_size, modalities, tuple(derived), dem_norm, dem_stats, nodata)
    uses_rgb = modalities in ("rgb+dem", "rgb")
    uses_dem = modalities in ("rgb+dem", "dem")
    derived = tuple(derived)

    # Plain graph code (tf.cond, no tensor-dependent Python branches): AutoGraph's source
    # transformation of it and the preprocessing took ~1.5 s of every fresh process's build.
    @tf.autograph.experimental.do_not_convert
    def decode(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        rgb, dem, mask = tf.numpy_function(
            reader, [index], [tf.uint8, tf.float32, tf.uint8], stateful=False
        )
        rgb.set_shape([None, None, 3])
        dem.set_shape([None, None])
        mask.set_shape([None, None])
        x = preprocess(rgb if uses_rgb else None, dem if uses_dem else None, spec)
        y = tf.cond(
            tf.size(mask) > 0,
            lambda: preprocess_mask(mask, image_size),
            lambda: tf.zeros((image_size, image_size, 1), tf.float32),
        )
        return tf.ensure_shape(x, [image_size, image_size, None]), tf.ensure_shape(
            y, [image_size, image_size, 1]
        )

    indices = tf.data.Dataset.range(len(reader.samples))
    if shuffle_seed is not None:
        indices = indices.shuffle(
            len(reader.samples), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    try:
        ds = indices.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    except ValueError as exc:  # e.g. a modality without its input, found while tracing
        raise DataError(str(exc)) from None
    return ds, reader


def fill_cache(ds: tf.data.Dataset, reader: TileReader, n: int) -> tf.data.Dataset:
    """``ds.cache()`` filled now: one pass decodes every tile; file errors as ``DataError``.

    Later passes (and every dataset built on the returned one) read the decoded tiles from
    memory, without copying them into a NumPy array first.
    """
    start = time.monotonic()
    cached = ds.cache()
    count = 0
    try:
        for x, _ in cached.batch(64):
            count += int(x.shape[0])
    except tf.errors.OpError as exc:
        if reader.error is not None:
            raise reader.error from None
        first = str(exc.message).strip().splitlines()[0] if exc.message else type(exc).__name__
        raise DataError(f"reading the tiles failed: {first}") from None
    if count != n:  # pragma: no cover - defensive
        raise DataError(f"read {count} tiles, expected {n}")
    took = time.monotonic() - start
    logger.info("decoded %d tiles in %.1f s (%.0f tiles/s)", n, took, n / max(took, 1e-9))
    return cached
