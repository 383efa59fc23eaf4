"""Tests for landslide_tf.inference.predict: loading every model kind, tiles, CLI, bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.cli.predict import main
from landslide_tf.data.spec import bijie_spec
from landslide_tf.errors import DataError, UserError
from landslide_tf.inference.predictor import Predictor
from landslide_tf.inference.settings import InferenceSettings, check_extents
from landslide_tf.training.config import TrainConfig

SIZE = 32


def make_run(
    run_dir: Path,
    modalities: str = "rgb+dem",
    threshold: float = 0.5,
    dem_norm: str = "minmax",
) -> Path:
    """A hand-made run dir: tiny U-Net fitted a few steps, config.json, metrics.json, splits."""
    import keras

    from landslide_tf.models import build_model

    config = TrainConfig(
        model="unet",
        image_size=SIZE,
        base_filters=4,
        depth=2,
        epochs=1,
        modalities=modalities,
        dem_norm=dem_norm,
        threshold=threshold,
        data="synthetic",
    ).resolved()
    channels = config.channels
    model = build_model("unet", input_shape=(None, None, channels), base_filters=4, depth=2)
    rng = np.random.default_rng(0)
    x = rng.random((4, SIZE, SIZE, channels)).astype("float32")
    y = (x[..., :1] > 0.5).astype("float32")  # learnable: the first channel decides
    optimizer = keras.optimizers.Adam(1e-2)
    for _ in range(3):  # a few eager steps (no tracing): weights and BN statistics move
        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.losses.binary_crossentropy(y, model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "best.keras")
    config.save(run_dir / "config.json")
    raw = json.loads((run_dir / "config.json").read_text())
    raw["dem_stats"] = [100.0, 20.0] if modalities != "rgb" else None
    (run_dir / "config.json").write_text(json.dumps(raw, indent=2))
    (run_dir / "metrics.json").write_text(json.dumps({"miou": 0.61, "f1": 0.42, "auc": 0.8}))
    for name, n in (("train", 5), ("val", 2), ("test", 3)):
        (run_dir / f"{name}.txt").write_text("".join(f"t{name}{i}\n" for i in range(n)))
    return run_dir


def raw_inputs(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB ``(H, W, 3)`` with a bright blob and a float32 DEM ``(H, W)``."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    image[height // 4 : height // 2, width // 3 : width // 2] = 250
    yy, xx = np.mgrid[0:height, 0:width]
    dem = (100 + 0.3 * yy + 0.1 * xx + rng.normal(0, 2, (height, width))).astype(np.float32)
    return image, dem


def write_png(path: Path, array: np.ndarray) -> Path:
    if array.ndim == 3:
        array = array[..., ::-1]
    assert cv2.imwrite(str(path), np.ascontiguousarray(array))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("predict") / "run", threshold=0.45)


@pytest.fixture(scope="module")
def predictor(run_dir) -> Predictor:
    return Predictor.load(run_dir)


def test_run_dir_settings_come_from_config(predictor):
    s = predictor.settings
    # the whole input spec: RGB /255 + the DEM min-max per tile (the stored dem_stats are
    # not part of a minmax run's input: it never used them)
    assert s.spec == bijie_spec(SIZE, "rgb+dem", dem_norm="minmax")
    assert (s.image_size, s.threshold) == (SIZE, 0.45)
    assert s.channel_names == ["red", "green", "blue", "dem"]


def test_prediction_has_input_size_and_varies(predictor):
    image, dem = raw_inputs(45, 61)
    prob = predictor.predict(image, dem)
    assert prob.shape == (45, 61) and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    assert prob.std() > 1e-3  # fitted a few steps: not a constant map


def test_batch_equals_single(predictor):
    a, da = raw_inputs(40, 40, seed=1)
    b, db = raw_inputs(40, 40, seed=2)
    batch = predictor.predict_batch(np.stack([a, b]), np.stack([da, db]))
    np.testing.assert_allclose(batch[1], predictor.predict(b, db), atol=1e-6)


def test_keras_file_with_config_beside_matches_run_dir(run_dir, predictor):
    image, dem = raw_inputs(33, 47)
    other = Predictor.load(run_dir / "best.keras")
    assert other.settings == predictor.settings
    np.testing.assert_allclose(other.predict(image, dem), predictor.predict(image, dem), atol=1e-6)


def test_keras_file_alone_uses_defaults_with_warning(run_dir, tmp_path, caplog):
    shutil.copy(run_dir / "best.keras", tmp_path / "model.keras")
    with caplog.at_level(logging.WARNING, logger="landslide_tf.inference.predictor"):
        alone = Predictor.load(tmp_path / "model.keras")
    assert alone.settings == InferenceSettings()
    assert "no config.json" in caplog.text
    image, dem = raw_inputs(20, 24)
    assert alone.predict(image, dem).shape == (20, 24)


def test_nodata_cells_equal_nan_cells(run_dir):
    image, dem = raw_inputs(40, 44)
    holed, nan = dem.copy(), dem.copy()
    holed[5:15, 5:15] = -9999.0
    nan[5:15, 5:15] = np.nan
    with_nodata = Predictor.load(run_dir, nodata=-9999.0)
    plain = Predictor.load(run_dir)
    expected = plain.predict(image, nan)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(with_nodata.predict(image, holed), expected, atol=1e-6)
    # without the nodata value, -9999 is taken as elevation and changes the map
    assert np.abs(plain.predict(image, holed) - expected).max() > 1e-4


def test_rgb_only_model_takes_no_dem(tmp_path):
    rgb = Predictor.load(make_run(tmp_path / "rgb", modalities="rgb"))
    image, _ = raw_inputs(30, 31)
    assert rgb.settings.channel_names == ["red", "green", "blue"]
    assert rgb.predict(image, None).shape == (30, 31)


def test_bad_inputs_are_user_errors(predictor):
    image, dem = raw_inputs(30, 30)
    with pytest.raises(DataError, match="uint8"):
        predictor.predict(image.astype(np.float32), dem)
    with pytest.raises(DataError, match="RGB"):
        predictor.predict(np.concatenate([image, image[..., :1]], -1), dem)
    with pytest.raises(UserError, match="needs a DEM"):
        predictor.predict(image, None)
    with pytest.raises(DataError, match="aspect ratio"):
        predictor.predict(image, dem[:, :10])
    # a coarser DEM of the same extent is fine (resampled in the graph)
    assert predictor.predict(image, dem[::2, ::2]).shape == (30, 30)


def test_check_extents_tolerates_rounding():
    check_extents((97, 113), (49, 57))
    with pytest.raises(DataError, match="97x113"):
        check_extents((97, 113), (97, 60))


def test_dataset_norm_without_stats_is_an_error():
    with pytest.raises(UserError, match="dem_stats"):
        InferenceSettings.from_dict({"dem_norm": "dataset", "modalities": "rgb+dem"})
    ok = InferenceSettings.from_dict({"dem_norm": "dataset", "dem_mean": 5, "dem_std": 2})
    assert ok.spec.dem_band.params == (5.0, 2.0)


def test_cli_writes_mask_overlay_and_probability(run_dir, tmp_path, capsys):
    image, dem = raw_inputs(45, 61)
    img = write_png(tmp_path / "a.png", image)
    dem_png = write_png(tmp_path / "a_dem.png", np.clip(dem, 0, 255).astype(np.uint8))
    out = tmp_path / "out" / "mask.png"
    code = main(
        [str(run_dir), "--image", str(img), "--dem", str(dem_png), "--out", str(out)]
        + ["--overlay", "--probability", str(tmp_path / "prob.png"), "--threshold", "0.5"]
    )
    assert code == 0
    mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (45, 61) and set(np.unique(mask)) <= {0, 255}
    overlay = cv2.imread(str(tmp_path / "out" / "mask_overlay.png"))[..., ::-1]
    assert overlay.shape == (45, 61, 3)
    prob = cv2.imread(str(tmp_path / "prob.png"), cv2.IMREAD_UNCHANGED)
    assert prob.shape == (45, 61)
    np.testing.assert_array_equal(mask > 0, prob >= 128)  # 0.5 threshold, up to rounding
    if mask.any():  # landslide pixels are tinted red
        assert (overlay[mask > 0, 0] >= image[mask > 0, 0]).all()
    assert "wrote" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys, run_dir):
    assert main([str(tmp_path / "nope"), "--image", "a.png", "--out", "m.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model not found") and err.count("\n") == 1
    assert main([str(run_dir), "--image", str(tmp_path / "missing.png"), "--out", "m.png"]) == 2
    assert capsys.readouterr().err.startswith("error:")


def _not_loaded(*args, **kwargs):
    raise AssertionError("the model was loaded before the options were checked")


@pytest.mark.parametrize("extra", [["--overlay"], ["--probability", "p.png"]])
def test_cli_refuses_image_only_options_with_scene(extra, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Predictor, "load", _not_loaded)
    out = tmp_path / "prob.tif"
    argv = ["run", "--scene", str(tmp_path / "s.tif"), "--out", str(out), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: --overlay and --probability apply to --image only\n"
    assert not out.exists()


def test_cli_checks_out_against_the_library_scene_outputs(tmp_path, capsys, monkeypatch):
    import landslide_tf.inference.predict as library

    monkeypatch.setattr(Predictor, "load", _not_loaded)
    monkeypatch.setattr(library, "SCENE_OUTPUTS", (".npy",))  # the one definition
    assert main(["run", "--scene", str(tmp_path / "s.tif"), "--out", "prob.tif"]) == 2
    assert "expected .npy" in capsys.readouterr().err
