"""Elevation that travels (issue 21): the DEM variants on analytic terrain and on the synthetic
set's known answer, through the package's own preprocessing (``preprocess``, ``load_tile``).

The variants: per-tile min-max (``dem_norm="minmax"``, the paper's), the training split's
mean/std (``dem_norm="dataset"``) and the derived ``slope`` channel (``arctan`` of the
gradient scaled to [0, 1], so degrees = 90 x channel), in ground units when the spec has a
``pixel_size``, else per pixel of the resampled (working) grid.

The synthetic generator (``landslide_tf.data.synthetic``) is the known answer: scars only on
ground steeper than ``STEEP`` and bare-soil look-alikes of the very same colour only on ground
flatter than ``FLAT`` (steepness = change of the tile's normalised elevation per tile width),
each tile's DEM a random base plus a random relief (another "area" per tile).
"""

import dataclasses
import math

import cv2
import numpy as np
import pytest
from keras import ops

from landslide_tf.data import (
    InputSpec,
    bijie_spec,
    dem_statistics,
    find_samples,
    make_split,
    read_dem,
)
from landslide_tf.data import preprocess as pp
from landslide_tf.data import synthetic as syn
from landslide_tf.data.pipeline import load_tile

SIZE = 128  # the working size of the paper and of the strong preset
SHIFT = 1000.0  # metres: another area's altitude


def _np(x):
    return ops.convert_to_numpy(x)


def _ramp(h, w, dzdx, dzdy=0.0, pixel=1.0):
    """A plane ``z = dzdx * x + dzdy * y`` (x, y in ground units) sampled on an h x w grid."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) * pixel
    return (dzdx * xx + dzdy * yy).astype(np.float32)


def _slope_deg(dem, size, pixel_size):
    """The slope channel of ``preprocess`` in degrees, without the border rows and columns
    (symmetric padding and the resampling's edge)."""
    spec = bijie_spec(size, "dem", derived=("slope",), pixel_size=pixel_size)
    slope = _np(pp.preprocess(None, dem, spec))[..., 1] * 90.0
    margin = max(2, size // 8)
    return slope[margin:-margin, margin:-margin]


def _deg(rise_per_run):
    return math.degrees(math.atan(rise_per_run))


# --------------------------------------------------------------------------- synthetic tiles


@pytest.fixture(scope="module")
def synth(synth_dir, tmp_path_factory):
    """Every synthetic tile through ``load_tile`` with both DEM normalisations and slope, and
    the same tiles moved to another area (their DEM + 1000 m, as 16-bit PNGs)."""
    samples = find_samples(synth_dir, negatives="on")
    train = make_split(samples, seed=42)["train"]
    stats = dem_statistics(train)
    minmax = bijie_spec(SIZE, derived=("slope",))
    dataset = bijie_spec(SIZE, derived=("slope",), dem_norm="dataset", dem_stats=stats)
    moved_dir = tmp_path_factory.mktemp("moved")
    tiles = []
    for sample in samples:
        x, y = load_tile(sample, minmax)
        xd, _ = load_tile(sample, dataset)
        high = moved_dir / f"{sample.stem}.png"
        assert cv2.imwrite(str(high), (read_dem(sample.dem) + SHIFT).astype(np.uint16))
        moved = dataclasses.replace(sample, dem=high)
        tiles.append(
            {
                "sample": sample,
                "train": sample in train,
                "minmax": x,
                "dataset": xd,
                "mask": y[..., 0] > 0.5,
                "moved_minmax": load_tile(moved, minmax)[0],
                "moved_dataset": load_tile(moved, dataset)[0],
            }
        )
    return {"tiles": tiles, "stats": stats}


def _regions(tile):
    """Scar, look-alike and other pixels of a tile on the working grid.

    Scars: the mask, eroded by a pixel (the resampled mask's edge). Look-alikes: bare soil
    that is not a scar. The generator paints scars and look-alikes with one bare-soil colour
    per tile (red 140..200, green 0.72..0.88 x red) over vegetation (red <= 80, green >= 75),
    so bare soil is red > 120 and red - green > 10 (in 0..255); a 2-px ring around the scars
    is left out, and the result eroded by a pixel. Other: neither scar nor the ring.
    """
    kernel = np.ones((3, 3), np.uint8)
    mask = tile["mask"].astype(np.uint8)
    red, green = tile["minmax"][..., 0] * 255, tile["minmax"][..., 1] * 255
    bare = (red > 120) & (red - green > 10)
    near = cv2.dilate(mask, kernel, iterations=2).astype(bool)
    scar = cv2.erode(mask, kernel).astype(bool)
    look = cv2.erode((bare & ~near).astype(np.uint8), kernel).astype(bool)
    return scar, look, ~near, bare


def _relief(channel):
    """Local relief of a DEM channel: the magnitude of its gradient per working pixel (a
    measurement of the test, not a channel of the package)."""
    gy, gx = np.gradient(channel.astype(np.float64))
    return np.hypot(gx, gy)


# --------------------------------------------------------------------------- 1. min-max


def test_minmax_spans_each_tile_and_keeps_the_order_of_elevations(synth):
    # On the working grid (no resampling) the channel is an increasing function of elevation:
    # equal elevations stay equal, higher stays strictly higher.
    raw = np.random.default_rng(0).integers(0, 4000, (SIZE, SIZE)).astype(np.float32) / 4
    channel = _np(pp.preprocess(None, raw, bijie_spec(SIZE, "dem")))[..., 0].ravel()
    order = np.argsort(raw.ravel(), kind="stable")
    rise = np.diff(raw.ravel()[order])
    step = np.diff(channel[order])
    assert np.all(step[rise == 0] == 0) and np.all(step[rise > 0] > 0)
    # Every synthetic tile (resampled from 80..300 px): [0, 1] exactly, and the same map of
    # the resampled elevation as the dataset channel (an affine map of it), so same order.
    for tile in synth["tiles"]:
        dem, ref = tile["minmax"][..., 3], tile["dataset"][..., 3]
        assert dem.min() == pytest.approx(0.0, abs=1e-6)
        assert dem.max() == pytest.approx(1.0, abs=1e-6)
        rescaled = (ref - ref.min()) / (ref.max() - ref.min())
        np.testing.assert_allclose(dem, rescaled, atol=1e-5)


def test_minmax_and_slope_are_blind_to_another_areas_altitude(synth):
    """Each tile's DEM + 1000 m (read from a 16-bit PNG): min-max and slope do not move."""
    for tile in synth["tiles"]:
        here, there = tile["minmax"], tile["moved_minmax"]
        np.testing.assert_array_equal(there[..., :3], here[..., :3])  # RGB
        np.testing.assert_allclose(there[..., 3], here[..., 3], atol=1e-5)  # min-max DEM
        # slope: float32 rounding of elevations near 1000 only (1e-3 = 0.09 deg)
        np.testing.assert_allclose(there[..., 4], here[..., 4], atol=1e-3)


def test_minmax_invariance_stops_at_flat_tiles_relative_to_altitude():
    """The documented limit: a tile whose range is below ``FLAT_RTOL`` of its magnitude is
    flat (0). Near sea level 5 mm of relief spans [0, 1]; the same 5 mm at 1000 m is flat."""
    relief = _ramp(SIZE, SIZE, 0.005 / (SIZE - 1))  # 0..5 mm
    spec = bijie_spec(SIZE, "dem")
    low = _np(pp.preprocess(None, relief + 1.0, spec))[..., 0]
    high = _np(pp.preprocess(None, relief + SHIFT, spec))[..., 0]
    assert low.min() == pytest.approx(0.0, abs=1e-6) and low.max() == pytest.approx(1.0, abs=1e-3)
    assert 0.005 < pp.FLAT_RTOL * SHIFT and np.all(high == 0.0)


def test_minmax_discards_the_steepness_that_slope_keeps():
    """Two 10-m-pixel ramps, 10 m and 1 m of rise per pixel: one min-max channel, two
    slopes (45 and 5.7 deg); and elevations in decimetres change the slope, not min-max."""
    steep, gentle = _ramp(64, 64, 1.0, pixel=10.0), _ramp(64, 64, 0.1, pixel=10.0)
    spec = bijie_spec(SIZE, "dem", derived=("slope",), pixel_size=10.0)
    a, b = _np(pp.preprocess(None, steep, spec)), _np(pp.preprocess(None, gentle, spec))
    np.testing.assert_allclose(a[..., 0], b[..., 0], atol=1e-5)
    assert np.median(a[..., 1]) * 90 == pytest.approx(45.0, abs=0.2)
    assert np.median(b[..., 1]) * 90 == pytest.approx(_deg(0.1), abs=0.2)
    decimetres = _np(pp.preprocess(None, gentle * 10, spec))
    np.testing.assert_allclose(decimetres[..., 0], b[..., 0], atol=1e-5)
    assert np.median(decimetres[..., 1]) * 90 == pytest.approx(45.0, abs=0.2)


# --------------------------------------------------------------------------- 2. dataset


def test_dataset_channel_is_standard_over_the_training_tiles(synth):
    values = np.stack([t["dataset"][..., 3] for t in synth["tiles"] if t["train"]])
    assert len(values) >= 15  # the 64 % training split of 30 tiles
    assert abs(float(values.mean())) < 0.1
    assert float(values.std()) == pytest.approx(1.0, abs=0.1)


def test_dataset_channel_encodes_absolute_altitude(synth):
    """The same + 1000 m moves the channel by 1000 / std everywhere: far outside any value
    seen in training, though the terrain (and the min-max and slope channels) is the same."""
    mean, std = synth["stats"]
    assert 20.0 < std < 200.0  # 8-bit DEMs: the shift is many standard deviations
    seen = max(float(t["dataset"][..., 3].max()) for t in synth["tiles"] if t["train"])
    for tile in synth["tiles"]:
        moved = tile["moved_dataset"][..., 3]
        np.testing.assert_allclose(moved - tile["dataset"][..., 3], SHIFT / std, atol=1e-3)
        assert moved.min() > seen + 5.0
        np.testing.assert_allclose(
            tile["moved_dataset"][..., 4], tile["dataset"][..., 4], atol=1e-3
        )


# --------------------------------------------------------------------------- 3. slope


@pytest.mark.parametrize("pixel", [1.0, 10.0])
def test_slope_of_a_ramp_with_the_real_pixel_size(pixel):
    """Rising one pixel size per pixel is 45 deg; 0.1 of it, 5.71 deg; a plane rising
    0.3 along x and 0.4 along y per ground unit, atan(0.5) = 26.57 deg (at the working size)."""
    for rise, expected in ((1.0, 45.0), (0.1, _deg(0.1))):
        got = _slope_deg(_ramp(SIZE, SIZE, rise, pixel=pixel), SIZE, pixel)
        np.testing.assert_allclose(got, expected, atol=0.05)
    got = _slope_deg(_ramp(SIZE, SIZE, 0.3, 0.4, pixel=pixel), SIZE, pixel)
    np.testing.assert_allclose(got, _deg(0.5), atol=0.05)


@pytest.mark.parametrize("size", [32, 128])
def test_slope_with_pixel_size_survives_resampling(size):
    """The same 10-m-pixel plane (26.57 deg) cut into tiles of 60 x 90 ... 240 x 240 px, each
    resampled whole to the working size (shrunk or stretched, unequally along the axes):
    the same slope on average. Shrinking by a non-integer factor ripples it by up to
    1.4 deg pixel to pixel (the antialiasing kernel does not reproduce a plane exactly)."""
    for h, w in ((60, 90), (64, 64), (200, 170), (240, 240)):
        got = _slope_deg(_ramp(h, w, 0.3, 0.4, pixel=10.0), size, 10.0)
        assert got.mean() == pytest.approx(_deg(0.5), abs=0.1), (h, w)
        np.testing.assert_allclose(got, _deg(0.5), atol=2.0)
    # stretching (and shrinking by a whole factor) keeps the plane exactly
    got = _slope_deg(_ramp(SIZE // 2, SIZE // 2, 0.3, 0.4, pixel=10.0), SIZE, 10.0)
    np.testing.assert_allclose(got, _deg(0.5), atol=0.05)


def test_slope_without_pixel_size_is_per_working_pixel():
    """The documented fallback (``pixel_size=None``, release 0.1's rule, what every run gets
    today): the gradient is elevation units per pixel of the resampled grid. A 10-m-pixel
    ramp rising 10 m per pixel (45 deg) reads atan(5) = 78.7 deg from a 64-px tile and
    atan(20) = 87.1 deg from a 256-px tile at 128 px: the tile's size and the DEM's
    pixel size, not the ground, decide the slope."""
    small = _slope_deg(_ramp(64, 64, 1.0, pixel=10.0), SIZE, None)
    large = _slope_deg(_ramp(256, 256, 1.0, pixel=10.0), SIZE, None)
    np.testing.assert_allclose(small, _deg(10.0 * 64 / SIZE), atol=0.05)
    np.testing.assert_allclose(large, _deg(10.0 * 256 / SIZE), atol=0.05)
    assert bijie_spec(SIZE, derived=("slope",)).pixel_size is None  # the default


def test_a_runs_config_keeps_the_pixel_size():
    """``train --pixel-size`` reaches the run's input spec (config.json keeps it, so evaluate,
    predict and export compute the same slope); a non-positive size is refused."""
    from landslide_tf.cli.train_args import build_parser, config_from_args
    from landslide_tf.errors import UserError
    from landslide_tf.training.rundir import validate_config

    config = {"image_size": SIZE, "modalities": "rgb+dem", "derived": ["slope"], "pixel_size": 10.0}
    assert InputSpec.from_config(config).pixel_size == 10.0
    args = build_parser().parse_args(["--derived", "slope", "--pixel-size", "10"])
    trained = config_from_args(args)
    assert trained.pixel_size == 10.0
    assert InputSpec.from_config(trained.to_dict()).pixel_size == 10.0
    assert (
        InputSpec.from_config(dataclasses.replace(trained, pixel_size=None).to_dict()).pixel_size
        is None
    )
    from landslide_tf.training.config import TrainConfig

    for bad in (0.0, -5.0, math.inf):
        with pytest.raises(UserError, match="--pixel-size"):
            validate_config(TrainConfig(loss="bce", derived=["slope"], pixel_size=bad))


# --------------------------------------------------------------------------- 4. known answer


def test_the_bare_soil_detector_finds_the_scars(synth):
    """The look-alike detector of these tests sees the scars' colour as bare soil too (so
    what it finds outside the scars is the look-alikes, not vegetation)."""
    scar_px = bare_on_scar = look_px = 0
    for tile in synth["tiles"]:
        scar, look, _, bare = _regions(tile)
        scar_px += scar.sum()
        bare_on_scar += (bare & scar).sum()
        look_px += look.sum()
    assert bare_on_scar > 0.9 * scar_px
    assert look_px > 1000


def test_synthetic_scars_are_steep_and_lookalikes_flat_in_the_slope_channel(synth):
    """STEEP / FLAT = 6.4: every landslide tile's scars are steeper on average than the rest
    of it, and across all tiles a single slope value separates 90 % of the scar pixels from
    90 % of the look-alikes, with room to spare. (The synthetic set has no pixel size; its
    terrain spans each tile whatever its pixel count, so the fallback is its ground slope.)"""
    scars, looks = [], []
    for tile in synth["tiles"]:
        scar, look, other, _ = _regions(tile)
        slope = tile["minmax"][..., 4]
        if scar.any():
            assert slope[scar].mean() > slope[other].mean() + 0.15, tile["sample"].stem
        scars.append(slope[scar])
        looks.append(slope[look])
    scars, looks = np.concatenate(scars), np.concatenate(looks)
    assert np.percentile(scars, 10) > np.percentile(looks, 90) + 0.3


@pytest.mark.parametrize("variant", ["minmax", "dataset"])
def test_synthetic_scars_have_more_relief_in_both_dem_channels(synth, variant):
    """Both DEM channels show the terrain's known answer: more local relief on scars than on
    the rest of each landslide tile, and (pooled) the least steep tenth of the scar pixels
    has over 3x the relief of the steepest tenth of the look-alikes."""
    scars, looks = [], []
    for tile in synth["tiles"]:
        scar, look, other, _ = _regions(tile)
        relief = _relief(tile[variant][..., 3])
        if scar.any():
            assert relief[scar].mean() > 1.2 * relief[other].mean(), tile["sample"].stem
        scars.append(relief[scar])
        looks.append(relief[look])
    scars, looks = np.concatenate(scars), np.concatenate(looks)
    assert np.percentile(scars, 10) > 3.0 * np.percentile(looks, 90)


def test_synthetic_lookalikes_sit_on_floors_and_plateaus_in_minmax(synth):
    """The generator's terrain is floors and plateaus joined by steep flanks: in the min-max
    channel, where each tile's floor is 0 and its top 1 whatever the area's altitude, the
    flat look-alikes lie near 0 or 1 and the scars on the flanks in between."""
    scars, looks = [], []
    for tile in synth["tiles"]:
        scar, look, _, _ = _regions(tile)
        off_centre = np.abs(tile["minmax"][..., 3] - 0.5)
        scars.append(off_centre[scar])
        looks.append(off_centre[look])
    assert np.concatenate(looks).mean() > np.concatenate(scars).mean() + 0.15
    assert syn.STEEP / syn.FLAT > 6  # the generator's guarantee these tests rely on
