"""Tests for the tf.data pipeline, paired augmentation and dataset statistics."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from bijie_options import load_arrays, load_sample, make_dataset

from landslide_tf.data import dem_statistics, find_samples, read_dem, read_mask
from landslide_tf.data.augment import augment_pair
from landslide_tf.data.pipeline import landslide_fraction


@pytest.fixture(scope="module")
def samples(synth_dir):
    return (
        find_samples(synth_dir, negatives="on")[:6] + find_samples(synth_dir, negatives="on")[-2:]
    )


def test_batches_and_shapes(samples):
    ds = make_dataset(samples, image_size=32, batch_size=3)
    batches = list(ds)
    assert [int(x.shape[0]) for x, _ in batches] == [3, 3, 2]
    x, y = batches[0]
    assert x.shape == (3, 32, 32, 4) and y.shape == (3, 32, 32, 1)
    assert x.dtype == tf.float32 and y.dtype == tf.float32
    expected_x, expected_y = load_sample(samples[0], 32)
    np.testing.assert_allclose(x[0].numpy(), expected_x)
    np.testing.assert_array_equal(y[0].numpy(), expected_y)


def test_uncached_generator_gives_same_data(samples):
    cached = np.concatenate([x for x, _ in make_dataset(samples, image_size=16, batch_size=4)])
    lazy = np.concatenate(
        [x for x, _ in make_dataset(samples, image_size=16, batch_size=4, cache=False)]
    )
    np.testing.assert_allclose(cached, lazy, atol=1e-6)


def test_shuffle_is_seeded_and_reshuffles(samples):
    def order(seed):
        ds = make_dataset(samples, image_size=8, batch_size=8, shuffle=True, seed=seed, repeat=True)
        it = iter(ds)
        return [next(it)[0].numpy() for _ in range(2)]

    a, b = order(5), order(5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # reshuffled every epoch
    sums_a = sorted(float(v) for v in a[0].sum(axis=(1, 2, 3)))
    sums_b = sorted(float(v) for v in a[1].sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(sums_a, sums_b, rtol=1e-5)  # same tiles, another order


def test_augment_pair_is_identical_for_input_and_mask():
    rng = np.random.default_rng(0)
    y = (rng.random((8, 8, 1)) > 0.5).astype(np.float32)
    x = np.concatenate([rng.random((8, 8, 3)), y], axis=-1).astype(np.float32)
    outputs = set()
    for r in range(8):
        xa, ya = augment_pair(tf.constant(x), tf.constant(y), tf.constant(r, tf.int64))
        np.testing.assert_array_equal(xa.numpy()[..., 3:], ya.numpy())
        outputs.add(xa.numpy().tobytes())
    assert len(outputs) == 8  # the 8 flips/rotations are all distinct


def test_augmented_dataset_keeps_pairs(samples):
    ds = make_dataset(samples, image_size=16, batch_size=8, augment=True, seed=1)
    x_aug, y_aug = next(iter(ds))
    x_raw, y_raw = next(iter(make_dataset(samples, image_size=16, batch_size=8)))
    assert not np.array_equal(x_aug.numpy(), x_raw.numpy())
    for i in range(8):
        # Each augmented tile is one of the 8 transforms of its original, mask included.
        matches = [
            np.allclose(x_aug[i], t(x_raw[i])) and np.array_equal(y_aug[i], t(y_raw[i]))
            for t in _dihedral()
        ]
        assert any(matches)


def _dihedral():
    for k in range(4):
        yield lambda a, k=k: np.rot90(np.asarray(a), k)
        yield lambda a, k=k: np.fliplr(np.rot90(np.asarray(a), k))


def test_landslide_fraction(samples):
    pos = [s for s in samples if s.landslide]
    masks = [read_mask(s.mask) for s in pos]
    expected = sum(m.sum() for m in masks) / sum(m.size for m in masks)
    assert landslide_fraction(pos) == pytest.approx(expected)
    assert 0 < landslide_fraction(samples) < landslide_fraction(pos)
    ds = make_dataset(pos, image_size=32, batch_size=4)
    assert landslide_fraction(ds) == pytest.approx(expected, abs=0.02)


def test_dem_statistics(samples):
    dems = np.concatenate([read_dem(s.dem).ravel() for s in samples])
    mean, std = dem_statistics(samples)
    assert mean == pytest.approx(float(dems.mean()), rel=1e-6)
    assert std == pytest.approx(float(dems.std()), rel=1e-4)


def test_dataset_norm_and_derived_channels(samples):
    stats = dem_statistics(samples)
    ds = make_dataset(
        samples[:2],
        image_size=16,
        batch_size=2,
        dem_norm="dataset",
        dem_stats=stats,
        derived=("slope",),
    )
    x, _ = next(iter(ds))
    assert x.shape == (2, 16, 16, 5)
    assert float(tf.reduce_min(x[..., 3])) < 0  # standardized DEM has negative values


def test_empty_samples_rejected():
    with pytest.raises(ValueError, match="at least one"):
        make_dataset([])


# --- issue 14: parallel decoding (data/pipeline.py) against the eager loader (load_tiles)


@pytest.mark.parametrize(
    "options",
    [
        {"modalities": "rgb+dem"},
        {"modalities": "rgb"},
        {"modalities": "dem", "derived": ("slope", "hillshade")},
        {"modalities": "rgb+dem", "dem_norm": "dataset", "dem_stats": (120.0, 30.0)},
    ],
)
def test_parallel_pipeline_equals_the_eager_loader(samples, options):
    old_x, old_y = load_arrays(samples, 24, **options)
    for cache in (True, False):
        batches = list(make_dataset(samples, image_size=24, batch_size=3, cache=cache, **options))
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        np.testing.assert_allclose(x, old_x, atol=1e-6)
        np.testing.assert_array_equal(y, old_y)


def test_parallel_pipeline_equals_the_eager_loader_on_real_tiles():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "l4s-rgb-dev"
    if not (root / "landslide" / "image").is_dir():
        pytest.skip(f"l4s-rgb-dev not found at {root}")
    tiles = find_samples(root, modalities="rgb")[:12]
    old_x, old_y = load_arrays(tiles, 64, modalities="rgb")
    x, y = next(iter(make_dataset(tiles, image_size=64, modalities="rgb", batch_size=12)))
    np.testing.assert_allclose(x.numpy(), old_x, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), old_y)


def test_streaming_shuffles_the_same_tiles(samples, monkeypatch):
    monkeypatch.setenv("LANDSLIDE_TF_CACHE_MB", "0")  # nothing fits: cache=True streams
    ds = make_dataset(samples, image_size=8, batch_size=8, shuffle=True, seed=3)
    first, second = next(iter(ds))[0].numpy(), next(iter(ds))[0].numpy()
    plain = next(iter(make_dataset(samples, image_size=8, batch_size=8)))[0].numpy()
    key = lambda a: sorted(float(v) for v in a.sum(axis=(1, 2, 3)))  # noqa: E731
    np.testing.assert_allclose(key(first), key(plain), rtol=1e-5)
    np.testing.assert_allclose(key(second), key(plain), rtol=1e-5)
    assert not np.array_equal(first, second)  # reshuffled every pass


def test_streaming_says_each_kind_of_note_once_not_every_epoch(
    samples, tmp_path, monkeypatch, caplog
):
    import cv2

    rgba = []
    for sample in samples[:6]:
        path = tmp_path / f"{sample.stem}.png"
        bgr = cv2.imread(str(sample.image), cv2.IMREAD_COLOR)
        cv2.imwrite(str(path), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
        rgba.append(dataclasses.replace(sample, image=path))
    monkeypatch.setenv("LANDSLIDE_TF_CACHE_MB", "0")  # nothing fits: every epoch decodes
    ds = make_dataset(rgba, image_size=8, batch_size=4, shuffle=True)
    with caplog.at_level("WARNING", logger="landslide_tf"):
        for _ in range(3):
            assert sum(int(x.shape[0]) for x, _ in ds) == 6
    notes = [r.getMessage() for r in caplog.records if "alpha channel" in r.getMessage()]
    assert len(notes) == 1 and "6 files: RGBA image" in notes[0], notes


@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_file_is_one_line_data_error(samples, tmp_path, cache):
    import shutil

    from landslide_tf.errors import DataError

    bad = tmp_path / "bad.png"
    shutil.copy(samples[1].image, bad)
    data = bytearray(bad.read_bytes())
    data[60] ^= 0xFF  # breaks a chunk checksum
    bad.write_bytes(bytes(data))
    broken = [samples[0], dataclasses.replace(samples[1], image=bad)] + samples[2:]
    with pytest.raises(DataError, match="bad.png: corrupt PNG") as info:
        make_dataset(broken, image_size=8, cache=cache)
    assert "\n" not in str(info.value)
    missing = [dataclasses.replace(samples[0], mask=tmp_path / "gone.png")] + samples[1:]
    with pytest.raises(DataError, match="gone.png: file not found"):
        make_dataset(missing, image_size=8, cache=cache)


def test_decode_error_in_a_worker_becomes_the_data_error(samples, monkeypatch):
    from landslide_tf.data import pipeline
    from landslide_tf.errors import DataError

    def broken(sample, spec, data_format=None):
        raise DataError(f"{sample.image}: cannot be decoded")

    monkeypatch.setattr(pipeline, "read_tile", broken)
    with pytest.raises(DataError, match="cannot be decoded") as info:
        make_dataset(samples, image_size=8)
    assert "\n" not in str(info.value)


def test_cached_pipeline_decodes_each_tile_once(samples, monkeypatch):
    from landslide_tf.data import pipeline

    calls = []
    real = pipeline.read_tile
    # Fresh Sample objects: iterators of earlier tests' datasets may still be prefetching on
    # background threads through the patched reader; only calls for these objects count.
    samples = [dataclasses.replace(s) for s in samples]
    ours = {id(s) for s in samples}

    def counting(sample, spec, data_format=None):
        if id(sample) in ours:
            calls.append(sample.stem)
        return real(sample, spec, data_format)

    monkeypatch.setattr(pipeline, "read_tile", counting)
    ds = make_dataset(samples, image_size=8, batch_size=4, shuffle=True)
    assert len(calls) == len(samples)  # decoded while building
    for _ in range(2):
        assert sum(int(x.shape[0]) for x, _ in ds) == len(samples)
    assert len(calls) == len(samples)  # later epochs come from memory
    lazy = make_dataset(samples, image_size=8, batch_size=4, cache=False)
    for _ in range(2):
        list(lazy)
    assert len(calls) == 3 * len(samples)  # streaming decodes every pass


@pytest.mark.parametrize("part", ["image", "mask"])
@pytest.mark.parametrize("cache", [True, False])
def test_a_tile_too_small_is_refused_before_any_iterator(samples, tmp_path, cache, part):
    """Review finding: streamed (cache=False or over the memory budget), a 4x4 PNG was only
    found while decoding inside the tf.data iterator: a TensorFlow traceback, not one line."""
    import cv2

    from landslide_tf.errors import DataError

    small = tmp_path / f"small-{part}.png"
    cv2.imwrite(str(small), np.full((4, 4, 3) if part == "image" else (4, 4), 255, np.uint8))
    tiles = [dataclasses.replace(samples[0], **{part: small}), *samples[1:4]]
    with pytest.raises(DataError, match=r"4x4 px; tiles must be at least 8 px a side") as info:
        make_dataset(tiles, image_size=8, batch_size=2, cache=cache)
    assert "\n" not in str(info.value) and str(small) in str(info.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "lots"])
def test_a_non_finite_cache_budget_is_one_line(monkeypatch, value):
    from landslide_tf.data.pipeline import memory_budget_bytes
    from landslide_tf.errors import DataError

    monkeypatch.setenv("LANDSLIDE_TF_CACHE_MB", value)
    with pytest.raises(DataError, match="LANDSLIDE_TF_CACHE_MB"):
        memory_budget_bytes()
