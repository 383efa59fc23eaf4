"""Tests for the tf.data pipeline, paired augmentation and dataset statistics."""

import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.data import (
    dem_statistics,
    find_samples,
    landslide_fraction,
    load_sample,
    make_dataset,
    read_dem,
    read_mask,
)
from landslide_tf.data.pipeline import augment_pair


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
