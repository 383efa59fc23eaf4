"""Multi-band runs end to end: train -> evaluate -> export (plain-TF reload) -> predict --scene.

Tiny on purpose (32 px inputs, 4 base filters, depth 2, one epoch): the assertions are about
plumbing (exit codes, band lists, the stored normalisation, export == in-package), not skill.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from band_data import blob_mask, l4s_image, make_geotiff_folder, make_l4s, write_tif

pytest.importorskip("h5py")
pytest.importorskip("rasterio")

TINY = ["--epochs", "1", "--image-size", "32", "--base-filters", "4", "--depth", "2"]
TINY += ["--model", "unet", "--batch-size", "2", "--verbose", "0"]


def _train(data, run_dir, *extra):
    from landslide_tf.cli.train import main

    assert main(["--data", str(data), "--run-dir", str(run_dir), *TINY, *extra]) == 0
    return json.loads((run_dir / "config.json").read_text())


def _assert_check_shows_the_runs_split(data, run_dir):
    """Issue 22 item 6: ``data check`` reports the split ``train`` wrote, tile for tile."""
    from landslide_tf.data.check import check_dataset

    written = {n: len((run_dir / f"{n}.txt").read_text().split()) for n in ("train", "val", "test")}
    assert check_dataset(data).splits == written


def _scene14(path, seed=3):
    rng = np.random.default_rng(seed)
    tiles = [l4s_image(rng, blob_mask(rng, 64)) for _ in range(3)]
    return write_tif(path, np.concatenate(tiles, axis=1).astype(np.float32))


def _reload_in_plain_tf(saved_model, x, tmp_path):
    """Call serving_default in a fresh interpreter that never imports landslide_tf."""
    np.save(tmp_path / "x.npy", x)
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "x = tf.constant(np.load(sys.argv[2]))\n"
        "np.save(sys.argv[3], m.signatures['serving_default'](image=x)['probability'].numpy())\n"
        "assert 'landslide_tf' not in sys.modules\n"
    )
    args = [str(saved_model), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp_path / "y.npy")


def _chain(run_dir, tmp_path, band_positions):
    """evaluate, export, plain-TF reload vs in-package, predict --scene; all exit 0."""
    from landslide_tf.cli.evaluate import main as evaluate
    from landslide_tf.cli.export import main as export
    from landslide_tf.cli.predict import main as predict
    from landslide_tf.data.spec import InputSpec
    from landslide_tf.inference.predictor import Predictor

    assert evaluate([str(run_dir)]) == 0
    saved = tmp_path / "saved"
    assert export([str(run_dir), "--out", str(saved)]) == 0
    card = json.loads((saved / "assets" / "model_card.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    assert card["normalization"]["bands"] == config["bands"]
    stored = InputSpec.from_config(card["settings"])
    assert stored == InputSpec.from_config(config)
    assert [list(b.params) for b in stored.bands] == config["band_stats"]["params"]
    assert {b.norm for b in stored.bands} == {config["band_stats"]["method"]}

    scene = _scene14(tmp_path / "scene14.tif")
    import rasterio

    with rasterio.open(scene) as ds:
        x = np.moveaxis(ds.read(), 0, -1)[np.newaxis, :40, :56, band_positions]  # user units
    ours = Predictor.load(run_dir).predict_batch(x)
    exported = _reload_in_plain_tf(saved, x.astype(np.float32), tmp_path)
    assert exported.shape == ours.shape == (1, 40, 56)
    np.testing.assert_allclose(exported, ours, atol=1e-5)

    out = tmp_path / "prob.tif"
    assert predict([str(run_dir), "--scene", str(scene), "--out", str(out), "--quiet"]) == 0
    assert predict([str(saved), "--scene", str(scene), "--out", str(tmp_path / "p2.tif")]) == 0
    with rasterio.open(out) as a, rasterio.open(tmp_path / "p2.tif") as b:
        assert a.shape == (64, 192) and a.crs is not None
        np.testing.assert_allclose(a.read(1), b.read(1), atol=1e-5)
    return card


@pytest.fixture(scope="module")
def five_band_run(tmp_path_factory):
    """One tiny l4s run on B2, B3, B4, slope, dem (trained once for this module)."""
    tmp = tmp_path_factory.mktemp("five")
    run = tmp / "run"
    data = make_l4s(tmp / "L4S", size=128)
    config = _train(data, run, "--bands", "B2,B3,B4,slope,dem")
    _assert_check_shows_the_runs_split(data, run)
    return run, config


def test_l4s_five_bands_train_and_predict_scene(five_band_run, tmp_path):
    """The default-suite end-to-end path: train (with its test evaluation) -> predict --scene."""
    from landslide_tf.cli.predict import main as predict

    run, config = five_band_run
    assert config["data_format"] == "l4s" and config["channels"] == 5
    assert config["bands"] == ["B2", "B3", "B4", "slope", "dem"]
    assert config["band_indices"] == [1, 2, 3, 12, 13]
    assert len(config["band_stats"]["params"]) == 5
    assert (run / "train.txt").read_text().split() == [f"train_{i}" for i in (1, 2, 3, 4)]
    assert json.loads((run / "metrics.json").read_text())["n_tiles"] == 2
    scene = _scene14(tmp_path / "scene14.tif")
    out = tmp_path / "prob.npy"
    assert predict([str(run), "--scene", str(scene), "--out", str(out), "--quiet"]) == 0
    prob = np.load(out)
    assert prob.shape == (64, 192) and 0 <= prob.min() <= prob.max() <= 1


def test_l4s_predictions_png_shows_b4_b3_b2_as_red_green_blue(five_band_run, monkeypatch):
    """Issue 22 item 5: the colour panel of an L4S run is true colour (B4, B3, B2), whatever
    order the bands were given in, and says so."""
    from landslide_tf.data.pipeline import load_tiles
    from landslide_tf.evaluation import plots
    from landslide_tf.training.runs import dataset_options, read_run_config, run_splits

    run, _ = five_band_run
    config, raw = read_run_config(run)
    options = dataset_options(config, raw)
    tiles = run_splits(config, run)["test"][:2]
    shown = {}
    real = plots.plot_predictions

    def capture(images, dems, truths, preds, path, **kwargs):
        shown.update(images=images, dems=dems, label=kwargs.get("image_label"))
        return real(images, dems, truths, preds, path, **kwargs)

    monkeypatch.setattr(plots, "plot_predictions", capture)
    path = plots.plot_run_predictions(config, run, tiles, options, split="test")
    assert path.is_file() and shown["label"] == "true colour (B4,B3,B2)"
    x, _ = load_tiles(tiles, options["spec"], options["data_format"])  # bands B2,B3,B4,slope,dem
    rgb = x[..., [2, 1, 0]]  # red = B4, green = B3, blue = B2
    lo = np.percentile(rgb, 2, axis=(1, 2), keepdims=True)
    hi = np.percentile(rgb, 98, axis=(1, 2), keepdims=True)
    expected = np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
    np.testing.assert_allclose(shown["images"], expected, atol=1e-5)
    np.testing.assert_allclose(shown["dems"], x[..., 4], atol=1e-6)  # the DEM panel: band dem


@pytest.mark.slow
def test_l4s_five_bands_evaluate_export_reload(five_band_run, tmp_path):
    from landslide_tf.cli.gradcam import main as gradcam

    card = _chain(five_band_run[0], tmp_path, [1, 2, 3, 12, 13])
    assert gradcam([str(five_band_run[0]), "--out", str(tmp_path / "cam"), "--n", "2"]) == 0
    assert (tmp_path / "cam" / "grid.png").is_file()
    assert "float32 [N, H, W, 5]" in card["signatures"]["serving_default"]["inputs"]["image"]


@pytest.mark.slow
def test_l4s_all_fourteen_bands_percentile(tmp_path):
    data = make_l4s(tmp_path / "L4S", size=128)
    run = tmp_path / "run"
    config = _train(data, run, "--band-norm", "percentile")
    assert config["channels"] == 14 and config["band_stats"]["method"] == "percentile"
    _chain(run, tmp_path, list(range(14)))


def test_geotiff_folder_with_dem_train_and_predict_scene(tmp_path):
    from landslide_tf.cli.predict import main as predict

    data = make_geotiff_folder(tmp_path / "tiles", n=10, size=48, bands=4)
    run = tmp_path / "run"
    config = _train(data, run, "--bands", "rgb+dem")
    assert config["bands"] == ["1", "2", "3", "dem"] and config["native_size"] == 48
    _assert_check_shows_the_runs_split(data, run)
    scene = write_tif(tmp_path / "scene.tif", np.full((100, 90, 4), 300, np.uint16), nodata=0)
    dem = write_tif(tmp_path / "dem.tif", np.full((100, 90), 1000.0, np.float32))
    out = tmp_path / "p.tif"
    args = [str(run), "--scene", str(scene), "--out", str(out), "--quiet"]
    assert predict(args) == 2  # the DEM band comes from --dem
    polygons = tmp_path / "slides.geojson"
    assert predict([*args, "--dem", str(dem), "--polygons", str(polygons)]) == 0
    assert out.is_file()
    assert json.loads(polygons.read_text())["type"] == "FeatureCollection"


def test_band_export_mask_uses_the_runs_tuned_threshold(five_band_run, tmp_path):
    """A multi-band run's threshold.json reaches the Predictor and the SavedModel's mask."""
    import shutil

    import tensorflow as tf

    from landslide_tf.inference.export import export_run
    from landslide_tf.inference.predictor import Predictor

    run = tmp_path / "run"
    shutil.copytree(five_band_run[0], run)
    x = np.random.default_rng(1).random((1, 24, 20, 5)).astype(np.float32) * 1000
    prob = Predictor.load(run).predict_batch(x)
    tuned = round(float(np.quantile(prob, 0.5)), 6)
    (run / "threshold.json").write_text(json.dumps({"threshold": tuned, "split": "val"}))
    assert Predictor.load(run).threshold == tuned
    saved = export_run(run, tmp_path / "saved")
    card = json.loads((saved / "assets" / "model_card.json").read_text())
    assert card["threshold"] == tuned and "mask" in card["signatures"]["serving_default"]["outputs"]
    out = tf.saved_model.load(str(saved)).signatures["serving_default"](image=tf.constant(x))
    assert out["mask"].dtype == tf.uint8
    np.testing.assert_array_equal(
        out["mask"].numpy(), (out["probability"].numpy() >= tuned).astype(np.uint8)
    )
