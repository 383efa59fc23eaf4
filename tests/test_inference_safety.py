"""Inference safety (code review): outputs never replace inputs, options are checked before the
model loads, outputs are all or nothing, damaged SavedModels are one line, NaN windows do not
blank their neighbours, ensembles claim no metrics, previews label metres only, and a
multi-band ``--image`` writes a mask."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from fakes import not_loaded, one_line
from test_predict import make_run, raw_inputs, write_png

from landslide_tf.cli.predict import main
from landslide_tf.inference import scene
from landslide_tf.inference.predictor import Predictor


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("safety") / "run", threshold=0.5)


@pytest.fixture(scope="module")
def predictor(run_dir) -> Predictor:
    return Predictor.load(run_dir)


def write_tif(path: Path, array: np.ndarray, transform, crs, nodata=None) -> Path:
    rasterio = pytest.importorskip("rasterio")
    bands = np.moveaxis(array, -1, 0) if array.ndim == 3 else array[np.newaxis]
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2],
                       count=bands.shape[0], dtype=bands.dtype, crs=crs, transform=transform,
                       nodata=nodata) as ds:  # fmt: skip
        ds.write(bands)
    return path


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Existing inputs (their bytes are checked afterwards) and a model folder."""
    model = tmp_path / "run"
    model.mkdir()
    (model / "config.json").write_text("{}")
    names = {"a.tif": b"imagery", "dem.tif": b"elevation", "t.png": b"tile", "d.png": b"dem"}
    for name, data in names.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "link.png").symlink_to(tmp_path / "t.png")
    return {"root": tmp_path, "run": model}


# --- 1: an output is never an input, nor another output -----------------------------------
@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--scene", "a.tif", "--out", "a.tif"], "--out {root}/a.tif is the same file as the "
         "input --scene {root}/a.tif"),
        (["--scene", "a.tif", "--dem", "d.png", "--out", "p.tif", "--preview", "d.png"],
         "--preview {root}/d.png is the same file as the input --dem"),
        (["--scene", "a.tif", "--out", "p.tif", "--polygons", "run/config.json"],
         "--polygons {root}/run/config.json is the same file as the input MODEL"),
        (["--image", "t.png", "--out", "t.png"], "--out {root}/t.png is the same file as the "
         "input --image"),
        (["--image", "t.png", "--out", "link.png"], "--out {root}/link.png is the same file as "
         "the input --image {root}/t.png"),
        (["--image", "t.png", "--out", "m.png", "--probability", "m.png"],
         "--probability {root}/m.png is the same file as --out {root}/m.png"),
        (["--image", "t.png", "--out", "m.png", "--overlay", "--probability", "m_overlay.png"],
         "--overlay {root}/m_overlay.png is the same file as --probability"),
    ],
)  # fmt: skip
def test_outputs_that_are_inputs_or_each_other_are_refused_before_loading(
    argv, expected, files, capsys, monkeypatch
):
    if "--polygons" in argv:
        pytest.importorskip("rasterio")
    monkeypatch.setattr(Predictor, "load", not_loaded)
    root = files["root"]
    before = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
    flags = {"--out", "--scene", "--image", "--dem", "--preview", "--polygons", "--probability"}
    full = [str(root / v) if k in flags else v for k, v in zip(["", *argv], argv, strict=False)]
    assert main([str(files["run"]), *full]) == 2
    assert expected.format(root=root) in one_line(capsys)
    assert {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()} == before


# --- 2: scene options and the polygons path are checked before the model loads ------------
@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--polygons", "FOLDER"], "--polygons {root}/FOLDER is a folder"),
        (["--polygons", "slides.txt"], "ends in '.txt'; expected .geojson or .json"),
        (["--polygons", "a.tif/slides.geojson"], "{root}/a.tif is a file, not a folder"),
        (["--preview", "view.jpg"], "--preview {root}/view.jpg ends in '.jpg'; expected .png"),
        (["--window", "4"], "--window must be >= 8 px, got 4"),
        (["--overlap", "0.95"], "--overlap must be in [0, 0.9], got 0.95"),
        (["--batch", "0"], "--batch must be >= 1, got 0"),
    ],
)
def test_scene_options_are_checked_before_the_model_loads(
    extra, expected, files, capsys, monkeypatch
):
    if "--polygons" in extra:
        pytest.importorskip("rasterio")
    monkeypatch.setattr(Predictor, "load", not_loaded)
    root = files["root"]
    (root / "FOLDER").mkdir()
    if extra[0] in ("--polygons", "--preview"):
        extra = [extra[0], str(root / extra[1])]
    argv = [str(files["run"]), "--scene", str(root / "a.tif"), "--out", str(root / "p.tif")]
    assert main([*argv, *extra]) == 2
    assert expected.format(root=root) in one_line(capsys)
    assert not (root / "p.tif").exists() and (root / "FOLDER").is_dir()


@pytest.mark.parametrize("option", [["--polygons", "p.geojson"], ["--preview", "v.png"],
                                    ["--window", "64"], ["--overlap", "0.5"]])  # fmt: skip
def test_image_refuses_scene_only_options_before_loading(option, files, capsys, monkeypatch):
    monkeypatch.setattr(Predictor, "load", not_loaded)
    root = files["root"]
    argv = [str(files["run"]), "--image", str(root / "t.png"), "--out", str(root / "m.png")]
    assert main([*argv, *option]) == 2
    assert f"{option[0]} applies to --scene only" in one_line(capsys)


def test_multiband_image_refuses_tile_extras_before_loading(tmp_path, capsys, monkeypatch):
    from landslide_tf.data.spec import multiband_spec

    monkeypatch.setattr(Predictor, "load", not_loaded)
    run = tmp_path / "bands"
    run.mkdir()
    spec = multiband_spec(("B2", "B3"), "standard", [[0.0, 1.0], [0.0, 1.0]], size=16)
    (run / "config.json").write_text(json.dumps({"input": spec.to_dict(), "threshold": 0.5}))
    argv = [str(run), "--image", str(tmp_path / "a.tif"), "--out", str(tmp_path / "m.png")]
    assert main([*argv, "--overlay"]) == 2
    assert "--overlay and --probability apply to RGB tiles only" in one_line(capsys)


# --- 2: a failed output leaves the earlier outputs as they were --------------------------
@pytest.mark.parametrize("failing", ["polygons", "preview"])
def test_a_failed_scene_output_keeps_the_earlier_files(predictor, tmp_path, monkeypatch, failing):
    pytest.importorskip("rasterio")
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    image, dem = raw_inputs(48, 64)
    write_png(inputs / "s.png", image)
    write_png(inputs / "d.png", np.clip(dem, 0, 255).astype(np.uint8))
    earlier = {"p.npy": b"earlier map", "p.geojson": b"earlier polygons", "v.png": b"earlier"}
    for name, data in earlier.items():
        (outputs / name).write_bytes(data)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(outputs / "x"))

    if failing == "polygons":
        monkeypatch.setattr(scene, "write_polygons", full_disk)
    else:
        monkeypatch.setattr(scene.ScenePreview, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        scene.predict_scene(predictor, inputs / "s.png", outputs / "p.npy", dem=inputs / "d.png",
                            polygons=outputs / "p.geojson", preview=outputs / "v.png",
                            window=32)  # fmt: skip
    assert {p.name: p.read_bytes() for p in outputs.iterdir()} == earlier


def test_a_failed_tile_output_keeps_the_earlier_mask(run_dir, tmp_path, monkeypatch, capsys):
    import landslide_tf.inference.predict as library

    image, dem = raw_inputs(40, 40)
    img = write_png(tmp_path / "t.png", image)
    dem_png = write_png(tmp_path / "d.png", np.clip(dem, 0, 255).astype(np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "m.png").write_bytes(b"earlier mask")
    real = library.write_png

    def write_png_full(path, array):
        if Path(path).name == "p.png":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, array)

    monkeypatch.setattr(library, "write_png", write_png_full)
    argv = [str(run_dir), "--image", str(img), "--dem", str(dem_png), "--out", str(out / "m.png"),
            "--probability", str(out / "p.png")]  # fmt: skip
    assert main(argv) == 2
    assert "No space left on device" in one_line(capsys)
    assert [p.name for p in out.iterdir()] == ["m.png"]
    assert (out / "m.png").read_bytes() == b"earlier mask"


# --- 3: a damaged SavedModel is one line naming it ---------------------------------------
def tiny_saved_model(path: Path) -> Path:
    """A SavedModel with variables, a ``serving_default`` and a valid model card."""
    import tensorflow as tf

    from landslide_tf.inference.settings import InferenceSettings

    class Tiny(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones([128, 128]))

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None, None, 3], tf.uint8, "image"),
                tf.TensorSpec([None, None, None], tf.float32, "dem"),
            ]
        )
        def serve(self, image, dem):
            return {"probability": tf.zeros_like(dem) + tf.reduce_mean(self.w)}

    module = Tiny()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    (path / "assets").mkdir(exist_ok=True)
    card = {"settings": InferenceSettings().to_dict()}
    (path / "assets" / "model_card.json").write_text(json.dumps(card))
    return path


@pytest.mark.parametrize("damage", ["truncated variables", "no settings", "settings a list"])
def test_a_damaged_saved_model_is_one_line(damage, files, capsys):
    saved = tiny_saved_model(files["root"] / "saved")
    assert Predictor.load(saved).settings.threshold == 0.5  # intact: it loads
    card = saved / "assets" / "model_card.json"
    if damage == "truncated variables":
        data = next((saved / "variables").glob("variables.data-*"))
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        expected = f"{saved} is a damaged SavedModel"
    elif damage == "no settings":
        card.write_text(json.dumps({"format": "landslide_tf model card 1"}))
        expected = f"{card} is damaged: settings unreadable (no 'settings')"
    else:
        card.write_text(json.dumps({"settings": [1, 2]}))
        expected = f"{card} is damaged: settings unreadable"
    root = files["root"]
    argv = [str(saved), "--image", str(root / "t.png"), "--dem", str(root / "d.png")]
    argv += ["--out", str(root / "m.png")]
    assert main(argv) == 2
    assert expected in one_line(capsys)
    assert not (root / "m.png").exists()


# --- 4: a window without valid DEM does not blank its neighbours' overlap ----------------
def test_a_nodata_window_does_not_blank_its_neighbours(run_dir, tmp_path):
    pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    run = shutil.copytree(run_dir, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dem_nodata": 0.0}))
    predictor = Predictor.load(run)
    assert predictor.settings.nodata == 0.0
    image, dem = raw_inputs(64, 120, seed=5)
    transform = from_origin(0.0, 640.0, 10.0, 10.0)
    img = write_tif(tmp_path / "i.tif", image, transform, "EPSG:32648")
    dem[:, 30:70] = 0.0  # the run's nodata; the file's own tag is -9999
    # no CRS: read on the image grid as it is (no warp that could blur the zeros)
    dem_tif = write_tif(tmp_path / "d.tif", dem, transform, None, nodata=-9999.0)
    out = tmp_path / "p.npy"
    # windows start at columns 0, 30, 60, 80 (40 px): the one at 30 has no valid DEM cell
    scene.predict_scene(predictor, img, out, dem=dem_tif, window=40, overlap=0.25)
    prob = np.load(out)
    assert np.isfinite(prob[:, :40]).all()  # 30..39: the window at 0 saw them
    assert np.isnan(prob[:, 40:60]).all()  # only the window without DEM covers these
    assert np.isfinite(prob[:, 60:]).all()  # 60..69: the window at 60 saw them


# --- 5: an ensemble's card claims no metrics of a member ---------------------------------
def test_an_ensemble_card_reports_no_member_metrics_as_its_own(run_dir, tmp_path, monkeypatch):
    import landslide_tf.inference.export as export
    from landslide_tf.inference.model_card import model_card_markdown

    scored = {"miou": 0.6123, "f1": 0.4321, "threshold": 0.5}
    runs = [shutil.copytree(run_dir, tmp_path / name) for name in ("a", "b")]
    for run in runs:
        (run / "metrics.json").write_text(json.dumps(scored))
    cards = []
    monkeypatch.setattr(export, "export_model", lambda *a, card, **k: cards.append(card))
    export.export_ensemble(runs, tmp_path / "ensemble")
    card = cards[0]
    exported = card["metrics_at_exported_threshold"]
    assert exported["metrics"] is None and exported["source"] is None
    assert "ensemble" in exported["note"] and "not computed" in exported["note"]
    assert card["test_metrics"] is None and card["threshold_tuning"] is None
    assert card["ensemble"]["members"][0]["test_metrics"] == scored  # each member's own
    markdown = model_card_markdown(card)
    assert "0.6123" not in markdown and "not computed" in markdown


def test_an_ensemble_card_shows_each_members_model_and_seed(run_dir, tmp_path, monkeypatch):
    """Members that differ (a seed ensemble; mixed widths) are listed per member, not as the
    first member's values."""
    import landslide_tf.inference.export as export
    from landslide_tf.inference.model_card import model_card_markdown

    runs = [shutil.copytree(run_dir, tmp_path / name) for name in ("a", "b")]
    config = json.loads((runs[1] / "config.json").read_text())
    config["seed"] = int(config["seed"]) + 1
    config["dropout"] = 0.25 if config.get("dropout") != 0.25 else 0.5
    (runs[1] / "config.json").write_text(json.dumps(config))
    first = json.loads((runs[0] / "config.json").read_text())
    cards = []
    monkeypatch.setattr(export, "export_model", lambda *a, card, **k: cards.append(card))
    export.export_ensemble(runs, tmp_path / "ensemble")
    card = cards[0]
    assert card["training_data"]["seed"] == [first["seed"], config["seed"]]
    assert card["model"]["dropout"] == [first.get("dropout"), config["dropout"]]
    assert card["model"]["name"] == first["model"]  # shared: one value
    assert card["training_data"]["lr"] == first["lr"]
    markdown = model_card_markdown(card)
    assert markdown.startswith(f"# Model card: ensemble of 2 ({first['model']})")
    assert f"seed {first['seed']} / {config['seed']}" in markdown


# --- 6: the preview's scale bar is in metres only where the CRS is --------------------------
@pytest.mark.parametrize("crs, bar", [("EPSG:4326", False), ("EPSG:32648", True)])
def test_preview_scale_bar_only_for_metre_crs(predictor, tmp_path, crs, bar):
    pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from landslide_tf.inference.preview import LEGEND_HEIGHT

    image, dem = raw_inputs(64, 400, seed=3)
    size = 1e-4 if crs == "EPSG:4326" else 2.0  # degrees or metres per pixel
    transform = from_origin(100.0, 30.0, size, size)
    img = write_tif(tmp_path / "i.tif", image, transform, crs)
    dem_tif = write_tif(tmp_path / "d.tif", dem, transform, crs)
    result = scene.predict_scene(predictor, img, tmp_path / "p.npy", dem=dem_tif, window=64,
                                 preview=tmp_path / "v.png")  # fmt: skip
    view = cv2.imread(str(result.preview))
    assert view.shape[:2] == (64 + LEGEND_HEIGHT, 400)
    right = view[64:, 250:]  # the legend's right end: where the scale bar goes
    assert bool((right < 128).any()) is bar


# --- 7: a multi-band model's --image writes the 0/255 mask --------------------------------
def test_multiband_image_out_is_the_mask(tmp_path, capsys):
    pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from landslide_tf.data.spec import multiband_spec
    from landslide_tf.models import build_model

    run = tmp_path / "bands"
    run.mkdir()
    spec = multiband_spec(("B2", "B3"), "standard", [[0.0, 1.0], [0.0, 1.0]], size=16)
    (run / "config.json").write_text(json.dumps({"input": spec.to_dict(), "threshold": 0.5}))
    build_model("unet", input_shape=(None, None, 2), base_filters=4, depth=2).save(
        run / "best.keras"
    )
    bands = np.random.default_rng(0).normal(0, 1, (20, 24, 2)).astype(np.float32)
    tile = write_tif(tmp_path / "a.tif", bands, from_origin(0, 200, 10, 10), "EPSG:32648")
    assert main([str(run), "--scene", str(tile), "--out", str(tmp_path / "p.npy")]) == 0
    prob = np.load(tmp_path / "p.npy")
    threshold = float(np.median(prob))  # both classes present
    argv = [str(run), "--image", str(tile), "--out", str(tmp_path / "m.png")]
    assert main([*argv, "--threshold", str(threshold)]) == 0, capsys.readouterr().err
    mask = cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, 255}
    np.testing.assert_array_equal(mask, np.where(prob >= threshold, 255, 0))


# --- 8: a scene at another pixel size than the run's terrain channels is flagged ------------
def test_terrain_channels_at_another_scene_pixel_size_are_warned_about():
    """Review finding: slope takes the run's --pixel-size as the ground size of a scene
    pixel; the docs said scene mode used the image's own pixel size. Now predict says when
    the two differ, by how much, and how to resample."""
    from landslide_tf.data.spec import bijie_spec

    slope = bijie_spec(32, derived=("slope",), pixel_size=10.0)
    message = scene.terrain_scale_warning(slope, 2.0)
    assert message is not None and "5x" in message and "gdalwarp -tr 10 10" in message
    assert scene.terrain_scale_warning(slope, 10.05) is None  # within 1 %
    assert scene.terrain_scale_warning(slope, None) is None  # ground size unknown
    assert scene.terrain_scale_warning(bijie_spec(32, pixel_size=10.0), 2.0) is None  # no slope
    per_pixel = bijie_spec(32, derived=("slope",))  # gradients per pixel: no ground size
    assert scene.terrain_scale_warning(per_pixel, 2.0) is None
