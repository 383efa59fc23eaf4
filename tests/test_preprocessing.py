"""The one preprocessing (keras.ops): input specs, shapes, ranges, DEM normalisation, nodata,
terrain channels, masks."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from landslide_tf.data import preprocess as pp
from landslide_tf.data.spec import Band, InputSpec, bijie_spec, multiband_spec
from landslide_tf.errors import UserError


def _image(h=97, w=113, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _np(x):
    return ops.convert_to_numpy(x)


def test_rgb_dem_stack_shape_and_range():
    dem = np.linspace(100, 300, 50 * 60, dtype=np.float32).reshape(50, 60)
    x = _np(pp.preprocess(_image(), dem, bijie_spec(64)))
    assert x.shape == (64, 64, 4) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    # Per-tile min-max: the DEM channel spans [0, 1] exactly.
    assert x[..., 3].min() == pytest.approx(0.0, abs=1e-6)
    assert x[..., 3].max() == pytest.approx(1.0, abs=1e-6)
    # RGB is the image / 255, resized.
    expected = tf.image.resize(_image() / 255.0, (64, 64), antialias=True).numpy()
    np.testing.assert_allclose(x[..., :3], expected, atol=1e-6)


def test_batched_equals_single():
    img = np.stack([_image(seed=1), _image(seed=2)])
    dem = np.random.default_rng(3).random((2, 40, 40)).astype(np.float32)
    spec = bijie_spec(32)
    batch = _np(pp.preprocess(img, dem, spec))
    for i in range(2):
        single = _np(pp.preprocess(img[i], dem[i], spec))
        np.testing.assert_allclose(batch[i], single, atol=1e-6)


def test_modalities_channels():
    dem = np.ones((20, 20), np.float32)
    assert pp.preprocess(_image(), None, bijie_spec(32, "rgb")).shape == (32, 32, 3)
    assert pp.preprocess(None, dem, bijie_spec(32, "dem")).shape == (32, 32, 1)
    spec = bijie_spec(32, derived=("slope", "aspect", "hillshade"))
    assert spec.channel_names == ["red", "green", "blue", "dem", "slope", "aspect", "hillshade"]
    assert pp.preprocess(_image(), dem, spec).shape == (32, 32, 7)
    with pytest.raises(ValueError, match="needs a DEM"):
        pp.preprocess(_image(), None, bijie_spec(32))


def test_flat_dem_minmax_is_zero_not_nan():
    x = _np(pp.minmax(np.full((8, 8), 42.0, np.float32)))
    assert np.all(x == 0.0)


def test_dataset_normalization_uses_stats():
    dem = np.array([[10.0, 20.0], [30.0, 40.0]], np.float32)
    band = Band("dem", "dem", "standard", params=(25.0, 10.0))
    np.testing.assert_allclose(_np(pp.normalize_dem(dem, band)), (dem - 25.0) / 10.0)
    with pytest.raises(UserError, match="needs the training DEM mean and std"):
        bijie_spec(32, dem_norm="dataset")


def test_nodata_and_nan_filled_with_valid_mean():
    dem = np.array([[1.0, 3.0], [-9999.0, np.nan]], np.float32)
    filled = _np(pp.fill_nodata(dem, nodata=-9999.0))
    np.testing.assert_allclose(filled, [[1.0, 3.0], [2.0, 2.0]])


def test_slope_of_a_plane():
    # A ramp rising 1 per pixel along x has slope atan(1) = 45 deg -> 0.5 after scaling.
    ramp = np.tile(np.arange(16, dtype=np.float32), (16, 1))
    slope = _np(pp.terrain(ramp, ["slope"]))[2:-2, 2:-2, 0]
    np.testing.assert_allclose(slope, 0.5, atol=1e-5)
    flat = _np(pp.terrain(np.zeros((8, 8), np.float32), ["slope"]))
    assert np.all(flat == 0.0)
    # With a 2-unit pixel the same ramp rises 1 per 2 units: atan(0.5).
    halved = _np(pp.terrain(ramp, ["slope"], step=(2.0, 2.0)))[2:-2, 2:-2, 0]
    np.testing.assert_allclose(halved, np.arctan(0.5) / (np.pi / 2), atol=1e-5)


def test_slope_with_the_pixel_size_of_the_dem():
    """A 10 m DEM rising 10 m per pixel is 45 deg, whatever size it is resampled to."""
    ramp = np.tile(np.arange(64, dtype=np.float32) * 10.0, (64, 1))
    spec = bijie_spec(32, "dem", derived=("slope",), pixel_size=10.0)
    slope = _np(pp.preprocess(None, ramp, spec))[4:-4, 4:-4, 1]
    np.testing.assert_allclose(slope, 0.5, atol=2e-3)


def test_mask_binarized_and_resized():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:60, 30:80] = 255
    mask[0, 0] = 7  # stray value: still "> 0", tiny, vanishes on resize
    y = _np(pp.preprocess_mask(mask, 50))
    assert y.shape == (50, 50, 1)
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert y.mean() == pytest.approx((40 * 50) / (100 * 100), abs=0.02)


def test_traceable_in_graph():
    spec = bijie_spec(32)
    fn = tf.function(
        lambda i, d: pp.preprocess(i, d, spec),
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8),
            tf.TensorSpec([None, None, None], tf.float32),
        ],
    )
    out = fn(_image()[None], np.ones((1, 30, 30), np.float32))
    assert out.shape == (1, 32, 32, 4)


def test_multiband_standard_and_percentile_with_nan():
    x = np.array([[[10.0, 0.0], [np.nan, 5.0]], [[30.0, 10.0], [20.0, 2.5]]], np.float32)
    x = np.tile(x, (4, 4, 1))  # (8, 8, 2): the training size, so no resampling
    spec = multiband_spec(["a", "b"], "standard", [[20.0, 10.0], [5.0, 2.5]], size=8)
    got = _np(pp.preprocess(x, None, spec))
    expected = (x - [20.0, 5.0]) / [10.0, 2.5]
    np.testing.assert_allclose(got, np.nan_to_num(expected, nan=0.0), atol=1e-6)
    spec = multiband_spec(["a", "b"], "percentile", [[15.0, 25.0], [0.0, 10.0]], size=8)
    got = _np(pp.preprocess(x, None, spec))
    expected = np.clip((x - [15.0, 0.0]) / [10.0, 10.0], 0, 1)
    np.testing.assert_allclose(got, np.nan_to_num(expected, nan=0.0), atol=1e-6)


def test_spec_round_trips_and_reads_release_configs(tmp_path):
    spec = bijie_spec(64, derived=("slope",), dem_norm="dataset", dem_stats=(5.0, 2.0), nodata=0)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert InputSpec.from_config({"input": spec.to_dict()}) == spec
    legacy = {"image_size": 64, "modalities": "rgb+dem", "derived": ["slope"],
              "dem_norm": "dataset", "dem_stats": [5.0, 2.0], "dem_nodata": 0.0}  # fmt: skip
    assert InputSpec.from_config(legacy) == spec
    bands = {"image_size": 32, "data_format": "l4s", "bands": ["B4", "B3", "B2"],
             "band_stats": {"method": "standard", "params": [[1, 2], [3, 4], [5, 6]]},
             "available_bands": ["B2", "B3", "B4"], "band_indices": [2, 1, 0]}  # fmt: skip
    multi = InputSpec.from_config(bands)
    assert multi.image_dtype == "float32" and multi.channel_names == ["B4", "B3", "B2"]
    assert multi.source_indices == (2, 1, 0) and multi.display_rgb() == [0, 1, 2]
    assert multi.display_label() == "true colour (B4,B3,B2)"


def test_spec_refuses_a_band_without_valid_statistics():
    with pytest.raises(UserError, match="no valid value in the training split"):
        multiband_spec(["B1", "B2"], "standard", [[1.0, 2.0], [float("nan"), float("nan")]])
