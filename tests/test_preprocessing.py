"""The shared TF preprocessing: shapes, ranges, DEM normalization, nodata, masks."""

import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.data import preprocess as pp


def _image(h=97, w=113, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_dem_stack_shape_and_range():
    dem = np.linspace(100, 300, 50 * 60, dtype=np.float32).reshape(50, 60)
    x = pp.preprocess_inputs(_image(), dem, size=64).numpy()
    assert x.shape == (64, 64, 4) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # Per-tile min-max: the DEM channel spans [0, 1] exactly.
    assert x[..., 3].min() == pytest.approx(0.0, abs=1e-6)
    assert x[..., 3].max() == pytest.approx(1.0, abs=1e-6)


def test_batched_equals_single():
    img = np.stack([_image(seed=1), _image(seed=2)])
    dem = np.random.default_rng(3).random((2, 40, 40)).astype(np.float32)
    batch = pp.preprocess_inputs(img, dem, size=32).numpy()
    for i in range(2):
        single = pp.preprocess_inputs(img[i], dem[i], size=32).numpy()
        np.testing.assert_allclose(batch[i], single, atol=1e-6)


def test_modalities_channels():
    dem = np.ones((20, 20), np.float32)
    assert pp.preprocess_inputs(_image(), None, 32, modalities="rgb").shape == (32, 32, 3)
    assert pp.preprocess_inputs(None, dem, 32, modalities="dem").shape == (32, 32, 1)
    derived = pp.preprocess_inputs(_image(), dem, 32, derived=("slope", "aspect", "hillshade"))
    assert derived.shape == (32, 32, 7)
    with pytest.raises(ValueError, match="needs a DEM"):
        pp.preprocess_inputs(_image(), None, 32)


def test_flat_dem_minmax_is_zero_not_nan():
    x = pp.normalize_dem(np.full((8, 8), 42.0, np.float32)).numpy()
    assert np.all(x == 0.0)


def test_dataset_normalization_uses_stats():
    dem = np.array([[10.0, 20.0], [30.0, 40.0]], np.float32)
    x = pp.normalize_dem(dem, "dataset", stats=(25.0, 10.0)).numpy()
    np.testing.assert_allclose(x, (dem - 25.0) / 10.0)
    with pytest.raises(ValueError, match="needs stats"):
        pp.normalize_dem(dem, "dataset")


def test_nodata_and_nan_filled_with_valid_mean():
    dem = np.array([[1.0, 3.0], [-9999.0, np.nan]], np.float32)
    filled = pp.fill_nodata(dem, nodata=-9999.0).numpy()
    np.testing.assert_allclose(filled, [[1.0, 3.0], [2.0, 2.0]])


def test_slope_of_a_plane():
    # A ramp rising 1 per pixel along x has slope atan(1) = 45 deg -> 0.5 after scaling.
    ramp = np.tile(np.arange(16, dtype=np.float32), (16, 1))
    slope = pp.derived_channels(ramp, ["slope"]).numpy()[2:-2, 2:-2, 0]
    np.testing.assert_allclose(slope, 0.5, atol=1e-5)
    flat = pp.derived_channels(np.zeros((8, 8), np.float32), ["slope"]).numpy()
    assert np.all(flat == 0.0)


def test_mask_binarized_and_resized():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:60, 30:80] = 255
    mask[0, 0] = 7  # stray value: still "> 0", tiny, vanishes on resize
    y = pp.preprocess_mask(mask, 50).numpy()
    assert y.shape == (50, 50, 1)
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert y.mean() == pytest.approx((40 * 50) / (100 * 100), abs=0.02)


def test_traceable_in_graph():
    fn = tf.function(
        lambda i, d: pp.preprocess_inputs(i, d, 32),
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8),
            tf.TensorSpec([None, None, None], tf.float32),
        ],
    )
    out = fn(_image()[None], np.ones((1, 30, 30), np.float32))
    assert out.shape == (1, 32, 32, 4)
