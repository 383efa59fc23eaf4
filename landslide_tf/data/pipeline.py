"""The tf.data input pipeline of every format: decode in parallel, cache, shuffle, augment, batch.

``make_dataset(samples, spec)`` is the one pipeline for ``bijie``, ``l4s`` and ``folder``
tiles. Each tile goes through ``tf.data`` ``map(num_parallel_calls=AUTOTUNE,
deterministic=True)``: a ``tf.numpy_function`` reads its raw arrays with the format's reader
(``data.formats.read_tile``; OpenCV and h5py decode without holding the GIL, so several tiles
decode at once), and ``landslide_tf.data.preprocess.preprocess`` applies the run's
``InputSpec`` as a traced graph in the same map.

With ``cache=True`` (default) every tile is decoded once into memory before the dataset is
built, so file errors surface as one-line ``DataError`` at build time rather than as
TensorFlow errors mid-epoch: the reader records the first ``DataError`` it raises and
``fill_cache`` re-raises it. When the decoded tiles would not fit in the memory budget (40 %
of the available memory, or ``$LANDSLIDE_TF_CACHE_MB``) the pipeline streams from disk
instead. ``cache=False`` always streams: files are checked up front (``validate_files``:
cheaply, without decoding), decoded on every pass.

``load_tile`` / ``load_tiles`` read tiles one by one, eagerly, into NumPy: the reference the
parallel pipeline is tested against, and what figures and GradCAM use.
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
from keras import ops

from landslide_tf.data.augment import augment_dataset, make_augmenter
from landslide_tf.data.formats import check_format, read_tile
from landslide_tf.data.preprocess import preprocess, preprocess_mask
from landslide_tf.data.readers import (
    PNG_SIGNATURE,
    png_structure_problem,
    summarized_notes,
    tile_size_problem,
    warn,
)
from landslide_tf.data.sample import Sample
from landslide_tf.data.spec import InputSpec
from landslide_tf.data.stats import sample_landslide_fraction
from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

#: Log progress every this many seconds while loading tiles one by one.
PROGRESS_EVERY_S = 10.0
#: Share of the available memory the decoded training tiles may take (else: stream).
MEMORY_SHARE = 0.4
#: Environment variable overriding the in-memory budget in MiB (0 = always stream).
CACHE_MB_ENV = "LANDSLIDE_TF_CACHE_MB"


# ------------------------------------------------------------------------------ memory budget


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
        except (ValueError, OverflowError):  # "inf": OverflowError; "nan": ValueError
            raise DataError(f"${CACHE_MB_ENV}={raw!r}; expected a finite number of MiB") from None
    free = available_memory_bytes()
    return int(free * MEMORY_SHARE) if free else 4 * 2**30


def decoded_bytes(n: int, image_size: int, channels: int) -> int:
    """Memory of ``n`` decoded tiles: float32 inputs plus the float32 mask."""
    return int(n) * image_size * image_size * (channels + 1) * 4


# ------------------------------------------------------------------------------ file checks


def _check_file(path: Path, png: bool, rgb: bool = False) -> None:
    """What a file's bytes show without decoding: present, non-empty, PNG signature and
    chunks; for an RGB image (``rgb``) also the colour type of its header (not grayscale)."""
    try:
        data = path.read_bytes() if png else path.open("rb").read(1)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{path}: empty file; expected {'a PNG image' if png else 'a raster'}")
    if not png:
        return
    if data[:8] != PNG_SIGNATURE:
        kind = "a JPEG" if data[:3] == b"\xff\xd8\xff" else "not a PNG"
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            kind = "a TIFF"
        raise DataError(f"{path}: {kind} file; expected a PNG image")
    problem = png_structure_problem(data)
    if problem:
        raise DataError(f"{path}: corrupt PNG ({problem}); expected a valid PNG image")
    # IHDR (checked by png_structure_problem): width and height, big-endian, at bytes 16-23;
    # a tile too small to train on is found here, not mid-epoch inside a tf.data iterator
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    problem = tile_size_problem(path, np.empty((height, width, 0), np.uint8))
    if problem:
        raise DataError(problem)
    colour = data[25] if len(data) > 25 else None  # IHDR: 0 gray, 2 RGB, 3 palette, 4, 6
    if rgb and colour in (0, 4):
        channels = 1 if colour == 0 else 2
        raise DataError(
            f"{path}: grayscale image ({channels} channel{'s' if channels > 1 else ''}); "
            "expected an RGB PNG with 3 channels (a DEM in the image folder?)"
        )


def validate_files(
    samples: Sequence[Sample], spec: InputSpec, data_format: str | None = None
) -> None:
    """Check every file a tile needs without decoding it; raise ``DataError`` on the first bad one.

    Bijie PNGs: existence, non-empty, PNG signature and chunk checksums (a few microseconds
    per file). Multi-band files (whose headers the format's ``find`` already read): existence
    and non-empty. What only decoding can find is reported when the tile is read.
    """
    fmt = check_format(data_format or spec.data_format)
    for sample in samples:
        paths = []
        image = None
        if spec.uses_image or fmt.multiband:
            image = Path(sample.image)
            paths.append(image)
        if spec.uses_dem and not fmt.multiband:
            if sample.dem is None:
                raise DataError(
                    f"{sample.image}: no DEM for {sample.stem}; expected dem/{sample.stem}.png"
                )
            paths.append(Path(sample.dem))
        elif fmt.multiband and sample.dem is not None:
            paths.append(Path(sample.dem))
        if sample.mask is not None:
            paths.append(Path(sample.mask))
        for path in paths:
            _check_file(path, png=not fmt.multiband, rgb=path == image and not fmt.multiband)


# ------------------------------------------------------------------------------ decoding


class TileReader:
    """The ``numpy_function`` body: index -> raw ``(image, dem, mask)`` arrays of one tile.

    Missing parts are empty arrays (``image`` for DEM-only data, ``dem`` for data without a
    separate DEM, ``mask`` for negatives). The first ``DataError`` is kept in ``error``.

    The readers' notes (an RGBA image, ...) are held until every tile was read once, then
    logged as one line per kind of note; later passes (streaming epochs) log them at DEBUG
    level only, so a note is said once per dataset, not once per tile and epoch.
    """

    def __init__(self, samples: Sequence[Sample], spec: InputSpec, data_format: str) -> None:
        self.samples = list(samples)
        self.spec = spec
        self.data_format = data_format
        self.image_dtype = np.dtype(spec.image_dtype)
        self.error: DataError | None = None
        self._lock = threading.Lock()
        self._unread = set(range(len(self.samples)))  # tiles whose notes are not yet held
        self._notes: list[str] = []

    def __call__(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sample = self.samples[int(index)]
        try:
            image, dem, mask, notes = read_tile(sample, self.spec, self.data_format)
        except DataError as exc:
            with self._lock:
                self.error = self.error or exc
            raise
        self._note(int(index), notes)
        channels = self.spec.image_channels or 3
        return (
            np.zeros((0, 0, channels), self.image_dtype)
            if image is None
            else np.ascontiguousarray(image, self.image_dtype),
            np.zeros((0, 0), np.float32) if dem is None else dem.astype(np.float32, copy=False),
            np.zeros((0, 0), np.uint8) if mask is None else mask.astype(np.uint8, copy=False),
        )

    def _note(self, index: int, notes: list[str]) -> None:
        """Hold a tile's notes on its first read; after the last tile, log them summarised."""
        with self._lock:
            if index not in self._unread:  # a later pass: said already
                for note in notes:
                    logger.debug("%s", note)
                return
            self._unread.discard(index)
            self._notes += notes
            if self._unread or not self._notes:
                return
            held, self._notes = self._notes, []
        with summarized_notes():  # inside an outer block (fill_cache, evaluate) it tallies there
            warn(held)


def tile_dataset(
    samples: Sequence[Sample],
    spec: InputSpec,
    data_format: str | None = None,
    shuffle_seed: int | None = None,
) -> tuple[tf.data.Dataset, TileReader]:
    """Unbatched ``(x (S, S, C), y (S, S, 1))`` float32 tiles, decoded in parallel.

    In the order of ``samples``, or reshuffled every pass with ``shuffle_seed`` (the indices
    are shuffled before decoding, so streaming keeps no decoded tiles in a shuffle buffer).

    Returns:
        The dataset and its ``TileReader`` (whose ``error`` holds the first file error).
    """
    fmt = check_format(data_format or spec.data_format)
    reader = TileReader(samples, spec, fmt.name)
    size = int(spec.size)
    image_type = tf.as_dtype(spec.image_dtype)

    # Plain graph code (tf.cond, no tensor-dependent Python branches): AutoGraph's source
    # transformation of it and the preprocessing took ~1.5 s of every fresh process's build.
    @tf.autograph.experimental.do_not_convert
    def decode(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, dem, mask = tf.numpy_function(
            reader, [index], [image_type, tf.float32, tf.uint8], stateful=False
        )
        image.set_shape([None, None, spec.image_channels or None])
        dem.set_shape([None, None])
        mask.set_shape([None, None])
        x = preprocess(image if spec.uses_image else None, dem if spec.uses_dem else None, spec)
        y = tf.cond(
            tf.size(mask) > 0,
            lambda: preprocess_mask(mask, size),
            lambda: tf.zeros((size, size, 1), tf.float32),
        )
        return tf.ensure_shape(x, [size, size, spec.channels]), tf.ensure_shape(y, [size, size, 1])

    indices = tf.data.Dataset.range(len(reader.samples))
    if shuffle_seed is not None:
        indices = indices.shuffle(
            len(reader.samples), seed=shuffle_seed, reshuffle_each_iteration=True
        )
    try:
        ds = indices.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    except ValueError as exc:  # e.g. a band without its input, found while tracing
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
    error: DataError | None = None
    batches = iter(cached.batch(64))
    try:
        for x, _ in batches:
            count += int(x.shape[0])
    except tf.errors.OpError as exc:
        first = str(exc.message).strip().splitlines()[0] if exc.message else type(exc).__name__
        error = reader.error or DataError(f"reading the tiles failed: {first}")
    finally:
        # Shut the iterator (and its decode threads) down now: an iterator kept alive by a
        # traceback until interpreter exit aborts the process (exit 134) after the error.
        del batches
    if error is not None:
        raise error.with_traceback(None)
    if count != n:  # pragma: no cover - defensive
        raise DataError(f"read {count} tiles, expected {n}")
    took = time.monotonic() - start
    logger.info("decoded %d tiles in %.1f s (%.0f tiles/s)", n, took, n / max(took, 1e-9))
    return cached


# ------------------------------------------------------------------------------ public API


def load_tile(
    sample: Sample, spec: InputSpec, data_format: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and preprocess one tile of any format, eagerly.

    Returns:
        ``x (S, S, C)`` float32 (channels in spec order) and ``y (S, S, 1)`` float32 in
        {0, 1} (all zeros for negatives and unlabelled tiles).

    Raises:
        DataError: unreadable files (one line naming the file).
    """
    image, dem, mask, notes = read_tile(sample, spec, data_format)
    warn(notes)
    size = int(spec.size)
    try:
        x = preprocess(image if spec.uses_image else None, dem if spec.uses_dem else None, spec)
    except ValueError as exc:
        raise DataError(f"{sample.stem}: {exc}") from None
    if mask is None:
        y = np.zeros((size, size, 1), np.float32)
    else:
        y = ops.convert_to_numpy(preprocess_mask(mask, size))
    return ops.convert_to_numpy(x).astype(np.float32), y.astype(np.float32)


def load_tiles(
    samples: Sequence[Sample], spec: InputSpec, data_format: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load tiles into memory one by one (``make_dataset`` decodes in parallel and gives the
    same arrays).

    Returns:
        ``x (N, S, S, C)`` float32 and ``y (N, S, S, 1)`` float32.
    """
    xs, ys = [], []
    start = last = time.monotonic()
    with summarized_notes():  # one line per kind of note, not one per file
        for i, sample in enumerate(samples):
            x, y = load_tile(sample, spec, data_format)
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
    spec: InputSpec,
    *,
    data_format: str | None = None,
    batch_size: int = 2,
    shuffle: bool = False,
    augment: bool = False,
    augment_policy: str = "dihedral",
    seed: int = 42,
    cache: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Build the input pipeline for a list of tiles of any format.

    Args:
        samples: tiles, e.g. one split of ``formats.plan_splits``.
        spec: the run's input (bands, normalisation, nodata, size); ``bijie_spec`` for the
            paper's RGB + DEM.
        data_format: ``bijie``, ``l4s`` or ``folder`` (default: ``spec.data_format``).
        batch_size: tiles per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch, seeded.
        augment: random flips and 90-degree rotations, identical for input and mask.
        augment_policy: ``"dihedral"`` (the above) or ``"strong"`` (see
            ``landslide_tf.data.augment``; multi-band inputs get its geometric part only).
        seed: seed for shuffling and augmentation.
        cache: decode every tile once into memory (default; streams when the decoded tiles
            exceed the memory budget); False streams from disk, decoding on every pass.
        repeat: repeat forever.

    Returns:
        A dataset of ``(x (B, S, S, C), y (B, S, S, 1))`` float32 batches.
    """
    samples = list(samples)
    if not samples:
        raise ValueError("make_dataset needs at least one sample")
    name = check_format(data_format or spec.data_format).name
    in_memory = cache
    if cache:
        need = decoded_bytes(len(samples), int(spec.size), spec.channels)
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
    # Every file is checked before any tf.data iterator exists: an error raised from inside
    # the parallel decode left worker threads running at exit, and the process aborted
    # ("terminate called without an active exception", exit 134) after the error line.
    validate_files(samples, spec, name)
    if in_memory:
        tiles, reader = tile_dataset(samples, spec, name)
        with summarized_notes():  # one line per kind of reader note, not one per file
            ds = fill_cache(tiles, reader, len(samples))
        if shuffle:
            ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    else:
        ds, _ = tile_dataset(samples, spec, name, shuffle_seed=seed if shuffle else None)
    if augment:
        # Colour jitter only for uint8 RGB imagery: multi-band inputs are standardised bands.
        modalities = "dem" if spec.multiband else spec.modalities
        ds = augment_dataset(ds, make_augmenter(augment_policy, modalities), seed)
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


def landslide_fraction(
    samples_or_dataset: Sequence[Sample] | tf.data.Dataset, data_format: str | None = None
) -> float:
    """Share of landslide pixels, e.g. for weighted cross-entropy class weights.

    For samples (of ``data_format``, default bijie) it is counted on the original masks
    (negatives count their image's pixels as background); for a dataset of ``(x, y)``
    batches it is the mean of ``y``.
    """
    if not isinstance(samples_or_dataset, tf.data.Dataset):
        return sample_landslide_fraction(samples_or_dataset, data_format)
    positive = total = 0.0
    for batch in samples_or_dataset:
        y = batch[1] if isinstance(batch, (tuple, list)) else batch
        positive += float(tf.reduce_sum(y))
        total += float(tf.size(y))
    if total == 0:
        raise ValueError("landslide_fraction got no pixels")
    return positive / total
