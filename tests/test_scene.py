"""Tests for landslide_tf.inference.scene: windows, blending, GeoTIFF I/O, polygons, nodata."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from test_predict import make_run, raw_inputs, write_png

from landslide_tf.cli.predict import main
from landslide_tf.errors import DataError, UserError
from landslide_tf.inference import scene, scene_io
from landslide_tf.inference.predictor import Predictor

CRS = "EPSG:32648"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("scene") / "run")


@pytest.fixture(scope="module")
def predictor(run_dir) -> Predictor:
    return Predictor.load(run_dir)


def write_tif(path: Path, array: np.ndarray, transform, crs=CRS, nodata=None) -> Path:
    rasterio = pytest.importorskip("rasterio")
    bands = np.moveaxis(array, -1, 0) if array.ndim == 3 else array[np.newaxis]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=bands.shape[1],
        width=bands.shape[2],
        count=bands.shape[0],
        dtype=bands.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(bands)
    return path


def geo_pair(tmp_path: Path, height: int = 90, width: int = 110, seed: int = 0):
    """An RGB GeoTIFF at 2 m and a DEM GeoTIFF of the same extent at 4 m."""
    from rasterio.transform import from_origin

    image, dem = raw_inputs(height, width, seed=seed)
    transform = from_origin(500000.0, 3000000.0, 2.0, 2.0)
    img = write_tif(tmp_path / "img.tif", image, transform)
    coarse = from_origin(500000.0, 3000000.0, 4.0, 4.0)
    dem_tif = write_tif(tmp_path / "dem.tif", dem[::2, ::2].copy(), coarse)
    return img, dem_tif, transform, image, dem


def test_window_starts_cover_and_end_flush():
    assert scene.window_starts(600, 256, 0.25) == [0, 192, 344]
    assert scene.window_starts(256, 256, 0.25) == [0]
    assert scene.window_starts(50, 256, 0.25) == [0]
    starts = scene.window_starts(1000, 128, 0.5)
    assert starts[0] == 0 and starts[-1] == 1000 - 128
    assert max(np.diff(starts)) <= 64


def test_blend_weights_ramp_inside_flat_on_border():
    w = scene.blend_weights(8, 8, 4, top=True, bottom=False, left=False, right=True)
    assert w.min() > 0 and w.max() == 1
    np.testing.assert_allclose(w[0, -1], 1.0)  # scene corner: full weight
    assert w[-1, 0] < w[3, 3]  # ramps towards neighbours
    # two overlapping ramps: weights never vanish in the overlap
    left = scene.ramp_weights(8, 4, first=True, last=False)
    right = scene.ramp_weights(8, 4, first=False, last=True)
    assert (left[4:] + right[:4] > 0.9).all()


def test_single_window_scene_equals_tile_prediction(predictor, tmp_path):
    image, dem = raw_inputs(64, 64, seed=1)
    write_png(tmp_path / "s.png", image)
    dem_png = write_png(tmp_path / "d.png", np.clip(dem, 0, 255).astype(np.uint8))
    from landslide_tf.data import read_dem

    result = scene.predict_scene(
        predictor, tmp_path / "s.png", tmp_path / "p.npy", dem=dem_png, window=64
    )
    assert result.windows == 1
    expected = predictor.predict(image, read_dem(dem_png))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-6)


def test_windowed_scene_equals_tiles_away_from_seams(predictor, tmp_path):
    image, dem = raw_inputs(100, 100, seed=2)
    dem = np.clip(dem, 0, 255).round().astype(np.uint8)
    write_png(tmp_path / "s.png", image)
    write_png(tmp_path / "d.png", dem)
    dem = dem.astype(np.float32)
    result = scene.predict_scene(
        predictor, tmp_path / "s.png", tmp_path / "p.npy", dem=tmp_path / "d.png", window=64
    )
    prob = np.load(tmp_path / "p.npy")
    assert result.windows == 4 and prob.shape == (100, 100)  # starts [0, 36] on each axis
    tiles = {
        (r, c): predictor.predict(image[r : r + 64, c : c + 64], dem[r : r + 64, c : c + 64])
        for r in (0, 36)
        for c in (0, 36)
    }
    # seen by one window only: exactly that window's tile prediction
    np.testing.assert_allclose(prob[:36, :36], tiles[0, 0][:36, :36], atol=1e-6)
    np.testing.assert_allclose(prob[64:, 64:], tiles[36, 36][28:, 28:], atol=1e-6)
    np.testing.assert_allclose(prob[:36, 64:], tiles[0, 36][:36, 28:], atol=1e-6)
    # on a seam seen by two windows: a blend between them, no foreign values
    a, b = tiles[0, 0][:36, 36:64], tiles[0, 36][:36, :28]
    seam = prob[:36, 36:64]
    assert (seam >= np.minimum(a, b) - 1e-6).all() and (seam <= np.maximum(a, b) + 1e-6).all()


def test_geotiff_keeps_crs_transform_and_writes_polygons(predictor, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    img, dem_tif, transform, _, _ = geo_pair(tmp_path)
    probe = scene.predict_scene(predictor, img, tmp_path / "probe.tif", dem=dem_tif, window=48)
    with rasterio.open(probe.out) as ds:
        threshold = float(np.quantile(ds.read(1), 0.8))  # ~20 % landslide: polygons exist
    result = scene.predict_scene(
        predictor,
        img,
        tmp_path / "out" / "prob.tif",
        dem=dem_tif,
        polygons=tmp_path / "out" / "poly.geojson",
        window=48,
        overlap=0.5,
        batch=3,
        threshold=threshold,
    )
    with rasterio.open(result.out) as ds:
        assert ds.crs.to_string() == CRS
        assert ds.transform == transform
        assert (ds.height, ds.width, ds.dtypes[0]) == (90, 110, "float32")
        prob = ds.read(1)
    assert np.isfinite(prob).all() and 0 <= prob.min() and prob.max() <= 1
    collection = json.loads((tmp_path / "out" / "poly.geojson").read_text())
    features = collection["features"]
    assert len(features) == result.n_polygons > 0
    assert collection["crs"]["properties"]["name"] == CRS
    assert collection["area_units"] == "metre^2"
    areas_px = [f["properties"]["area_px"] for f in features]
    for f in features:
        assert f["properties"]["area"] == pytest.approx(4.0 * f["properties"]["area_px"])
    assert sum(areas_px) == result.landslide_pixels == int((prob >= threshold).sum())
    x0, y0 = features[0]["geometry"]["coordinates"][0][0]
    assert 500000 <= x0 <= 500000 + 2 * 110 and 3000000 - 2 * 90 <= y0 <= 3000000
    assert not list((tmp_path / "out").glob(".mask-*"))  # temporary mask removed


def test_dem_nodata_in_geotiff_is_missing_not_elevation(predictor, tmp_path):
    from rasterio.transform import from_origin

    image, dem = raw_inputs(64, 80, seed=4)
    transform = from_origin(0.0, 640.0, 10.0, 10.0)
    img = write_tif(tmp_path / "i.tif", image, transform)
    holed, nan = dem.copy(), dem.copy()
    holed[:20, :20] = -9999.0
    nan[:20, :20] = np.nan
    write_tif(tmp_path / "holed.tif", holed, transform, nodata=-9999.0)
    write_tif(tmp_path / "nan.tif", nan, transform)
    write_tif(tmp_path / "raw.tif", holed, transform)  # nodata not declared in the file

    def run(dem_name: str, **kwargs) -> np.ndarray:
        out = tmp_path / f"p_{dem_name}.npy"
        scene.predict_scene(predictor, img, out, dem=tmp_path / dem_name, window=40, **kwargs)
        return np.load(out)

    from_nan = run("nan.tif")
    assert np.isfinite(from_nan).all()
    np.testing.assert_allclose(run("holed.tif"), from_nan, atol=1e-5)
    np.testing.assert_allclose(run("raw.tif", dem_nodata=-9999.0), from_nan, atol=1e-5)


def test_run_dem_nodata_is_missing_like_the_argument(run_dir, tmp_path):
    """The run's ``dem_nodata`` (config.json) masks the DEM as ``dem_nodata=`` does."""
    import shutil

    from rasterio.transform import from_origin

    run = shutil.copytree(run_dir, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dem_nodata": -9999.0}))
    predictor = Predictor.load(run)
    assert predictor.settings.nodata == -9999.0
    image, dem = raw_inputs(64, 120, seed=5)
    fine = from_origin(0.0, 640.0, 10.0, 10.0)
    img = write_tif(tmp_path / "i.tif", image, fine)
    holed = dem.copy()
    holed[:, :45] = -9999.0  # the first window (cols 0..39) has no DEM cell
    write_tif(tmp_path / "same.tif", holed, fine)  # no nodata tag: the run's value applies
    coarse = holed.copy()
    coarse[20:40, 50:70] = -9999.0
    write_tif(tmp_path / "coarse.tif", coarse[::2, ::2].copy(), from_origin(0.0, 640.0, 20, 20))

    def run_scene(dem_name: str, **kwargs) -> np.ndarray:
        out = tmp_path / f"p_{dem_name}_{len(kwargs)}.npy"
        scene.predict_scene(
            predictor, img, out, dem=tmp_path / dem_name, window=40, overlap=0.25, **kwargs
        )
        return np.load(out)

    for name in ("same.tif", "coarse.tif"):  # read as is, and warped (bilinear) to the image
        from_run, from_arg = run_scene(name), run_scene(name, dem_nodata=-9999.0)
        np.testing.assert_allclose(from_run, from_arg, atol=1e-6)  # NaN where the other is
    same = run_scene("same.tif")
    assert np.isnan(same[:, :30]).all() and np.isfinite(same[:, 30:]).all()


def test_windows_without_any_dem_cell_are_nodata_with_a_warning(predictor, tmp_path, caplog):
    """Issue 15 item 5: an all-NaN DEM window is not predicted (was 97.6 % landslide)."""
    from rasterio.transform import from_origin

    image, dem = raw_inputs(64, 120, seed=5)
    transform = from_origin(0.0, 640.0, 10.0, 10.0)
    img = write_tif(tmp_path / "i.tif", image, transform)
    dem[:, :60] = np.nan  # the first window (cols 0..39) and most of the second: no DEM
    write_tif(tmp_path / "d.tif", dem, transform)
    out = tmp_path / "p.tif"
    with caplog.at_level(logging.WARNING, logger="landslide_tf.inference.scene"):
        scene.predict_scene(predictor, img, out, dem=tmp_path / "d.tif", window=40, overlap=0.0)
    import rasterio

    with rasterio.open(out) as ds:
        prob = ds.read(1)
        assert np.isnan(ds.nodata)
    assert np.isnan(prob[:, :40]).all()  # only no-DEM windows cover these columns
    assert np.isfinite(prob[:, 80:]).all()
    assert "windows have no valid DEM cell" in caplog.text


def test_window_zero_is_refused_before_reading(predictor, tmp_path):
    for window in (0, 7):
        with pytest.raises(UserError, match=f"--window must be >= 8 px, got {window}$"):
            scene.predict_scene(predictor, "s.tif", tmp_path / "p.npy", dem="d.tif", window=window)
    assert not (tmp_path / "p.npy").exists()


def test_dem_extent_mismatch_is_reported(predictor, tmp_path, caplog):
    from rasterio.transform import from_origin

    image, dem = raw_inputs(40, 40)
    img = write_tif(tmp_path / "i.tif", image, from_origin(0.0, 400.0, 10.0, 10.0))
    far = write_tif(tmp_path / "far.tif", dem, from_origin(90000.0, 400.0, 10.0, 10.0))
    with pytest.raises(DataError, match="does not overlap"):
        scene.predict_scene(predictor, img, tmp_path / "p.tif", dem=far)
    half = write_tif(tmp_path / "half.tif", dem, from_origin(200.0, 400.0, 10.0, 10.0))
    with caplog.at_level(logging.WARNING, logger="landslide_tf.inference.scene"):
        scene.predict_scene(predictor, img, tmp_path / "p.tif", dem=half)
    assert "covers 50.0 %" in caplog.text
    write_png(tmp_path / "i.png", image)
    write_png(tmp_path / "narrow.png", np.zeros((40, 10), np.uint8))
    with pytest.raises(DataError, match="aspect ratio"):
        scene.predict_scene(
            predictor, tmp_path / "i.png", tmp_path / "p.npy", dem=tmp_path / "narrow.png"
        )


def test_reads_are_window_sized(predictor, tmp_path, monkeypatch):
    img, dem_tif, *_ = geo_pair(tmp_path, 120, 150)
    sizes = []
    original = scene_io.RasterImage.read

    def spy(self, row, col, height, width):
        sizes.append((height, width))
        return original(self, row, col, height, width)

    monkeypatch.setattr(scene_io.RasterImage, "read", spy)
    result = scene.predict_scene(predictor, img, tmp_path / "p.tif", dem=dem_tif, window=48)
    assert len(sizes) == result.windows > 1
    assert set(sizes) == {(48, 48)}


def test_without_rasterio_geotiff_is_a_clear_error_png_works(predictor, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio -> ImportError
    with pytest.raises(UserError, match=r"pip install 'landslide_tf\[geo\]'"):
        scene.predict_scene(predictor, tmp_path / "x.tif", tmp_path / "p.tif", dem="d.tif")
    image, dem = raw_inputs(50, 70)
    write_png(tmp_path / "s.png", image)
    write_png(tmp_path / "d.png", np.clip(dem, 0, 255).astype(np.uint8))
    result = scene.predict_scene(
        predictor, tmp_path / "s.png", tmp_path / "p.png", dem=tmp_path / "d.png", window=32
    )
    assert result.windows == 6 and not result.georeferenced
    assert (tmp_path / "p.png").is_file()


def test_scene_cli(tmp_path, capsys, run_dir):
    img, dem_tif, *_ = geo_pair(tmp_path)
    run = run_dir
    out = tmp_path / "prob.tif"
    argv = [str(run), "--scene", str(img), "--dem", str(dem_tif), "--out", str(out)]
    code = main([*argv, "--polygons", str(tmp_path / "p.geojson"), "--window", "64", "--quiet",
                 "--preview", str(tmp_path / "view.png")])  # fmt: skip
    assert code == 0 and out.is_file() and (tmp_path / "view.png").is_file()
    printed = capsys.readouterr().out
    assert "windows of 64x64 px" in printed and "polygons" in printed
    assert main([*argv, "--overlap", "0.95"]) == 2
    assert "overlap" in capsys.readouterr().err


def test_preview_rows_are_the_subsampled_probability_map():
    from landslide_tf.inference.preview import ScenePreview

    prob = np.random.default_rng(0).random((95, 70)).astype(np.float32)
    picture = ScenePreview(95, 70, 0.5, max_side=20)  # factor 5 -> 19 x 14
    assert picture.factor == 5 and picture.shape == (19, 14)
    for start, stop in ((0, 13), (13, 14), (14, 61), (61, 95)):  # strips as the writer gives
        picture.add_rows(start, prob[start:stop])
    np.testing.assert_array_equal(picture.prob, prob[::5, ::5])


def test_scale_bar_lengths_are_round_numbers():
    from landslide_tf.inference.preview import scale_bar_length

    assert [scale_bar_length(v) for v in (0.7, 1.0, 3.9, 740.0, 12_000.0)] == [
        0.5, 1.0, 2.0, 500.0, 10_000.0,
    ]  # fmt: skip


def test_scene_preview_outlines_the_mask(predictor, tmp_path):
    import cv2

    from landslide_tf.inference.preview import LEGEND_HEIGHT, OUTLINE_RGB

    image, dem = raw_inputs(100, 100, seed=2)
    write_png(tmp_path / "s.png", image)
    write_png(tmp_path / "d.png", np.clip(dem, 0, 255).astype(np.uint8))
    probe = scene.predict_scene(
        predictor, tmp_path / "s.png", tmp_path / "p.npy", dem=tmp_path / "d.png", window=64
    )
    threshold = float(np.quantile(np.load(probe.out), 0.7))  # ~30 % landslide: outlines exist
    result = scene.predict_scene(predictor, tmp_path / "s.png", tmp_path / "p.npy",
                                 dem=tmp_path / "d.png", window=64, threshold=threshold,
                                 preview=tmp_path / "view.png")  # fmt: skip
    assert result.preview == tmp_path / "view.png" and "view.png" in result.format()
    view = cv2.cvtColor(cv2.imread(str(result.preview)), cv2.COLOR_BGR2RGB)
    assert view.shape == (100 + LEGEND_HEIGHT, 100, 3)
    legend, view = view[100:], view[:100]
    assert (legend == OUTLINE_RGB).all(axis=-1).any()  # the legend shows the outline colour
    outline = (view == OUTLINE_RGB).all(axis=-1)
    assert outline.any() and not outline.all()
    np.testing.assert_array_equal(view[~outline], image[~outline])  # the scene elsewhere
    with pytest.raises(UserError, match="preview"):
        scene.predict_scene(predictor, tmp_path / "s.png", tmp_path / "q.npy",
                            dem=tmp_path / "d.png", preview=tmp_path / "view.jpg")  # fmt: skip
    assert not (tmp_path / "q.npy").exists()
