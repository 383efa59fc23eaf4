"""Tests for landslide_tf.inference.export: a SavedModel served by plain TensorFlow in another process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from test_predict import make_run, raw_inputs, write_png

from landslide_tf.cli.export import main
from landslide_tf.cli.predict import main as predict_main
from landslide_tf.errors import UserError
from landslide_tf.inference.export import export_run
from landslide_tf.inference.predictor import Predictor

NODATA = -9999.0

# Runs in a fresh interpreter that never imports landslide_tf: plain TensorFlow only.
PLAIN_TF_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    saved_model, inputs, outputs = sys.argv[1:4]
    data = np.load(inputs)
    loaded = tf.saved_model.load(saved_model)
    serve = loaded.signatures["serving_default"]
    normalized = loaded.signatures["normalized"]
    result = {
        "serving_inputs": sorted(serve.structured_input_signature[1]),
        "normalized_inputs": sorted(normalized.structured_input_signature[1]),
        "card": json.load(open(f"{saved_model}/assets/model_card.json"))["model"]["name"],
    }
    arrays = {
        "prob": serve(image=tf.constant(data["image"]), dem=tf.constant(data["dem"]))[
            "probability"
        ].numpy(),
        "prob_coarse_dem": serve(
            image=tf.constant(data["image"]), dem=tf.constant(data["dem"][:, ::2, ::2])
        )["probability"].numpy(),
        "prob_nodata": serve(image=tf.constant(data["image"]), dem=tf.constant(data["holed"]))[
            "probability"
        ].numpy(),
        "prob_nan": serve(image=tf.constant(data["image"]), dem=tf.constant(data["nan"]))[
            "probability"
        ].numpy(),
        "normalized": normalized(inputs=tf.constant(data["x"]))["probability"].numpy(),
        "mask": serve(image=tf.constant(data["image"]), dem=tf.constant(data["dem"]))[
            "mask"
        ].numpy(),
        "normalized_mask": normalized(inputs=tf.constant(data["x"]))["mask"].numpy(),
    }
    errors = {}
    bad_calls = {
        "channels": lambda: serve(
            image=tf.constant(np.concatenate([data["image"], data["image"][..., :1]], -1)),
            dem=tf.constant(data["dem"]),
        ),
        "dtype": lambda: serve(
            image=tf.constant(data["image"].astype(np.float32)), dem=tf.constant(data["dem"])
        ),
        "batch": lambda: serve(image=tf.constant(data["image"]), dem=tf.constant(data["dem"][:1])),
    }
    for name, call in bad_calls.items():
        try:
            call()
            errors[name] = None
        except Exception as exc:
            errors[name] = f"{type(exc).__name__}: {exc}"
    result["errors"] = errors
    result["landslide_tf_imported"] = any(m.startswith("landslide_tf") for m in sys.modules)
    np.savez(outputs, **arrays)
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export")
    run = make_run(root / "run", threshold=0.4)
    return run, export_run(run, root / "saved", dem_nodata=NODATA)


def test_plain_tensorflow_process_matches_in_package(exported, tmp_path):
    run, saved = exported
    image, dem = raw_inputs(97, 113, seed=3)
    image2, dem2 = raw_inputs(97, 113, seed=4)
    images, dems = np.stack([image, image2]), np.stack([dem, dem2])
    holed, nan = dems.copy(), dems.copy()
    holed[:, 10:30, 20:40] = NODATA
    nan[:, 10:30, 20:40] = np.nan
    x = np.random.default_rng(0).random((2, 32, 32, 4)).astype(np.float32)
    np.savez(tmp_path / "in.npz", image=images, dem=dems, holed=holed, nan=nan, x=x)
    script = tmp_path / "plain.py"
    script.write_text(PLAIN_TF_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, str(script), str(saved), str(tmp_path / "in.npz"), str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: landslide_tf is not importable by accident
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["landslide_tf_imported"] is False
    assert result["serving_inputs"] == ["dem", "image"]
    assert result["normalized_inputs"] == ["inputs"]
    assert result["card"] == "unet"
    out = np.load(tmp_path / "o.npz")

    predictor = Predictor.load(run, nodata=NODATA)
    expected = predictor.predict_batch(images, dems)
    assert out["prob"].shape == (2, 97, 113) and out["prob"].dtype == np.float32
    assert expected.std() > 1e-3
    np.testing.assert_allclose(out["prob"], expected, atol=1e-5)
    # the mask output: uint8 0/1 at the run's threshold (0.4), beside the probabilities
    assert out["mask"].dtype == np.uint8 and out["normalized_mask"].dtype == np.uint8
    np.testing.assert_array_equal(out["mask"], (out["prob"] >= 0.4).astype(np.uint8))
    np.testing.assert_array_equal(
        out["normalized_mask"], (out["normalized"] >= 0.4).astype(np.uint8)
    )
    coarse = predictor.predict_batch(images, dems[:, ::2, ::2])
    np.testing.assert_allclose(out["prob_coarse_dem"], coarse, atol=1e-5)
    # nodata: the baked-in value and NaN both mean "missing"
    np.testing.assert_allclose(out["prob_nodata"], out["prob_nan"], atol=1e-6)
    np.testing.assert_allclose(out["prob_nan"], predictor.predict_batch(images, nan), atol=1e-5)
    # second signature: already normalized inputs at the training size
    np.testing.assert_allclose(
        out["normalized"], np.asarray(predictor.model(x, training=False))[..., 0], atol=1e-5
    )
    errors = result["errors"]
    assert "image must have 3 channels" in errors["channels"]
    assert "uint8" in errors["dtype"]
    assert "batch sizes differ" in errors["batch"]


def test_model_card_in_assets(exported):
    run, saved = exported
    card = json.loads((saved / "assets" / "model_card.json").read_text())
    assert card["model"]["name"] == "unet" and card["model"]["parameters"] > 0
    assert card["loss"]["name"] == "bce"
    assert card["channels"] == ["red", "green", "blue", "dem"]
    assert card["normalization"]["image_size"] == 32
    assert card["normalization"]["dem_norm"] == "minmax"
    assert card["normalization"]["dem_nodata"] == NODATA
    assert card["threshold"] == 0.4
    assert card["training_data"]["split_sizes"] == {"train": 5, "val": 2, "test": 3}
    assert card["test_metrics"] == json.loads((run / "metrics.json").read_text())
    markdown = (saved / "assets" / "MODEL_CARD.md").read_text()
    assert "# Model card: unet" in markdown and "miou: 0.6100" in markdown


def test_saved_model_predictor_matches_run(exported):
    run, saved = exported
    from_saved = Predictor.load(saved)
    assert from_saved.threshold == 0.4
    image, dem = raw_inputs(50, 41, seed=5)
    np.testing.assert_allclose(
        from_saved.predict(image, dem), Predictor.load(run).predict(image, dem), atol=1e-5
    )


def test_rgb_only_export_takes_no_dem(tmp_path):
    run = make_run(tmp_path / "rgb", modalities="rgb")
    saved = export_run(run, tmp_path / "saved")
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    assert sorted(serve.structured_input_signature[1]) == ["image"]
    image, _ = raw_inputs(37, 29)
    prob = serve(image=tf.constant(image[np.newaxis]))["probability"].numpy()
    assert prob.shape == (1, 37, 29)
    np.testing.assert_allclose(prob[0], Predictor.load(run).predict(image), atol=1e-5)


def test_existing_output_is_not_overwritten(exported, tmp_path):
    run, _ = exported
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="--overwrite"):
        export_run(run, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").is_file()


def test_cli_error_on_non_run_dir(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "saved")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "config.json" in err


@pytest.mark.slow
def test_tta_and_tuned_threshold_travel_into_the_saved_model(tmp_path):
    run = make_run(tmp_path / "rgb", modalities="rgb")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "tta": True}))
    (run / "threshold.json").write_text(json.dumps({"threshold": 0.3, "split": "val"}))
    saved = export_run(run, tmp_path / "saved")
    card = json.loads((saved / "assets" / "model_card.json").read_text())
    assert card["threshold"] == 0.3 and card["settings"]["tta"] is True
    image, _ = raw_inputs(37, 29)
    with_tta = Predictor.load(run).predict(image)
    without = Predictor.load(run, tta=False).predict(image)
    assert np.abs(with_tta - without).max() > 1e-6  # the flips change the result
    from_saved = Predictor.load(saved)
    assert from_saved.threshold == 0.3
    np.testing.assert_allclose(from_saved.predict(image), with_tta, atol=1e-5)
    with pytest.raises(UserError, match="export the run again with --no-tta"):
        Predictor.load(saved, tta=False)
    with pytest.raises(UserError, match="--tta --tta-transforms dihedral"):
        Predictor.load(saved, tta_transforms="dihedral")
    # the eight dihedral passes travel the same way: one answer from the run and the export
    d4_run = Predictor.load(run, tta_transforms="dihedral").predict(image)
    assert np.abs(d4_run - with_tta).max() > 1e-6
    d4_saved = export_run(run, tmp_path / "saved_d4", tta_transforms="dihedral")
    card = json.loads((d4_saved / "assets" / "model_card.json").read_text())
    assert card["settings"]["tta_transforms"] == "dihedral"
    np.testing.assert_allclose(Predictor.load(d4_saved).predict(image), d4_run, atol=1e-5)


def test_mask_output_uses_the_tuned_threshold_unless_export_threshold_overrides(tmp_path):
    run = make_run(tmp_path / "rgb", modalities="rgb", threshold=0.5)
    image, _ = raw_inputs(41, 37, seed=5)
    prob = Predictor.load(run).predict(image)
    tuned, override = (round(float(q), 4) for q in np.quantile(prob, [0.4, 0.8]))
    assert 0 < tuned < override < 1
    (run / "threshold.json").write_text(json.dumps({"threshold": tuned, "split": "val"}))

    for threshold, expected in ((None, tuned), (override, override)):
        saved = export_run(run, tmp_path / f"saved-{threshold}", threshold=threshold)
        card = json.loads((saved / "assets" / "model_card.json").read_text())
        assert card["threshold"] == expected
        assert f">= {expected:g}" in card["signatures"]["serving_default"]["outputs"]["mask"]
        assert "`mask`" in (saved / "assets" / "MODEL_CARD.md").read_text()
        out = tf.saved_model.load(str(saved)).signatures["serving_default"](
            image=tf.constant(image[np.newaxis])
        )
        got_prob, mask = out["probability"].numpy()[0], out["mask"].numpy()[0]
        assert mask.dtype == np.uint8 and 0 < mask.mean() < 1
        np.testing.assert_array_equal(mask, (got_prob >= expected).astype(np.uint8))


def test_export_cli_refuses_a_threshold_outside_0_1(tmp_path, capsys):
    run = make_run(tmp_path / "rgb", modalities="rgb")
    assert main([str(run), "--out", str(tmp_path / "saved"), "--threshold", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--threshold" in err
    assert not (tmp_path / "saved").exists()


# --------------------- issue 22 item 6: the card says at which threshold it scored
def _card(run: Path, threshold: float) -> tuple[dict, str]:
    from landslide_tf.inference.model_card import model_card, model_card_markdown, read_json
    from landslide_tf.inference.settings import InferenceSettings

    settings = InferenceSettings(threshold=threshold)
    card = model_card(
        {"model": "unet"}, settings, metrics=read_json(run / "metrics.json"), run_dir=run
    )
    return card, model_card_markdown(json.loads(json.dumps(card)))


def test_model_card_metrics_at_the_exported_threshold(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    scored = {"miou": 0.61, "f1": 0.42, "threshold": 0.5, "split": "test"}
    (run / "metrics.json").write_text(json.dumps(scored))

    # metrics at 0.5, mask at 0.4, nothing stored at 0.4: said, not invented
    card, markdown = _card(run, 0.4)
    assert card["test_metrics"] == scored and card["test_metrics_threshold"] == 0.5
    exported = card["metrics_at_exported_threshold"]
    assert exported["threshold"] == 0.4 and exported["metrics"] is None
    assert "not computed" in exported["note"] and "--threshold 0.4" in exported["note"]
    assert "## Test metrics (at threshold 0.5)" in markdown
    assert "## Test metrics at the exported threshold (0.4)" in markdown
    assert "not computed" in markdown

    # evaluate --threshold 0.4 wrote metrics_test.json: the card takes it from there
    at_04 = {"miou": 0.63, "f1": 0.47, "threshold": 0.4, "split": "test"}
    (run / "metrics_test.json").write_text(json.dumps(at_04))
    exported = _card(run, 0.4)[0]["metrics_at_exported_threshold"]
    assert exported["source"] == "metrics_test.json" and exported["metrics"] == at_04

    # the usual case: training scored at the exported (tuned) threshold
    card, markdown = _card(run, 0.5)
    assert card["metrics_at_exported_threshold"]["source"] == "metrics.json"
    assert card["metrics_at_exported_threshold"]["metrics"] == scored
    assert "- from metrics.json" in markdown


def test_model_card_reports_the_tuning_and_its_f1_plateau(tmp_path):
    from landslide_tf.metrics.thresholds import write_threshold

    run = tmp_path / "run"
    run.mkdir()
    info = {"metric": "f1", "best": 0.7, "shrink_weight": 0.8, "n_positive": 80000}
    write_threshold(run, 0.66, **info, plateau=[0.55, 0.78], plateau_tolerance=0.01, split="val")
    card, markdown = _card(run, 0.66)
    assert card["threshold_tuning"]["plateau"] == [0.55, 0.78]
    assert "F1 plateau" in markdown and "0.55 to 0.78" in markdown
    assert "none recorded" in markdown and "not computed (no test metrics stored)" in markdown


# --------------------- a TTA export: both signatures average, the card scores it as exported
@pytest.fixture(scope="module")
def exported_tta(exported, tmp_path_factory) -> tuple[Path, Path]:
    """The ``exported`` run, its metrics.json scored at 0.4 without TTA, exported with TTA."""
    root = tmp_path_factory.mktemp("export_tta")
    run = Path(shutil.copytree(exported[0], root / "run"))
    scored = {"miou": 0.61, "threshold": 0.4, "tta": False, "inference_precision": "float32"}
    (run / "metrics.json").write_text(json.dumps(scored))
    return run, export_run(run, root / "saved", tta=True)


def test_normalized_signature_averages_the_flips_like_serving_default(exported_tta):
    from landslide_tf.inference.tta import flip_average

    run, saved = exported_tta
    model = Predictor.load(run).model
    x = np.random.default_rng(1).random((2, 32, 32, 4)).astype(np.float32)
    got = tf.saved_model.load(str(saved)).signatures["normalized"](inputs=tf.constant(x))
    averaged = flip_average(lambda t: model(t, training=False), tf.constant(x))
    np.testing.assert_allclose(got["probability"].numpy(), averaged.numpy()[..., 0], atol=1e-5)
    plain = np.asarray(model(x, training=False))[..., 0]
    assert np.abs(got["probability"].numpy() - plain).max() > 1e-4  # not flip-symmetric
    np.testing.assert_array_equal(
        got["mask"].numpy(), (got["probability"].numpy() >= 0.4).astype(np.uint8)
    )


def test_card_of_a_tta_export_ignores_metrics_scored_without_tta(exported_tta):
    _, saved = exported_tta
    card = json.loads((saved / "assets" / "model_card.json").read_text())
    exported = card["metrics_at_exported_threshold"]
    assert card["test_metrics_threshold"] == 0.4 == exported["threshold"]  # same threshold
    assert exported["metrics"] is None and exported["source"] is None
    assert "with TTA off, float32, the export with TTA flips, float32" in exported["note"]
    assert "--threshold 0.4 --tta --tta-transforms flips" in exported["note"]
    assert "not computed" in (saved / "assets" / "MODEL_CARD.md").read_text()


def _card_with(run: Path, settings, config: dict) -> dict:
    from landslide_tf.inference.model_card import model_card, read_json

    card = model_card(config, settings, metrics=read_json(run / "metrics.json"), run_dir=run)
    return card["metrics_at_exported_threshold"]


def test_model_card_metrics_must_match_the_exported_tta_and_precision(tmp_path):
    from landslide_tf.inference.settings import InferenceSettings

    run = tmp_path / "run"
    run.mkdir()
    plain, tta = InferenceSettings(threshold=0.5), InferenceSettings(threshold=0.5, tta=True)
    # an old metrics.json (no tta keys): scored with the run's own TTA setting
    (run / "metrics.json").write_text(json.dumps({"miou": 0.6, "threshold": 0.5}))
    assert _card_with(run, tta, {"tta": True})["source"] == "metrics.json"
    assert _card_with(run, plain, {"tta": True})["metrics"] is None
    assert _card_with(run, plain, {})["source"] == "metrics.json"
    note = _card_with(run, tta, {})["note"]
    assert "TTA off, the export with TTA flips" in note and "--tta --tta-transforms" in note
    dihedral = tta.replace(tta_transforms="dihedral")
    assert _card_with(run, dihedral, {"tta": True})["metrics"] is None  # flips != dihedral
    # evaluate --tta wrote metrics_test_tta.json: the card takes it from there
    flipped = {"miou": 0.65, "threshold": 0.5, "tta": True, "tta_transforms": "flips"}
    (run / "metrics_test_tta.json").write_text(json.dumps(flipped))
    found = _card_with(run, tta, {})
    assert (found["source"], found["metrics"]) == ("metrics_test_tta.json", flipped)
    # the precision counts where both sides record it
    scored = {"miou": 0.6, "threshold": 0.5, "tta": False, "inference_precision": "float32"}
    (run / "metrics.json").write_text(json.dumps(scored))
    assert _card_with(run, plain, {"exported_precision": "float32"})["source"] == "metrics.json"
    assert _card_with(run, plain, {})["source"] == "metrics.json"  # not recorded: not checked
    other = _card_with(run, plain, {"exported_precision": "bfloat16"})
    assert other["metrics"] is None and "--precision bfloat16" in other["note"]
    assert "TTA off, float32, the export with TTA off, bfloat16" in other["note"]


# --------------------- --dem-nodata with a SavedModel: applied, or refused, never ignored
def test_saved_model_refuses_another_nodata_than_the_baked_one(exported, monkeypatch):
    _, saved = exported
    assert Predictor.load(saved, nodata=NODATA).settings.nodata == NODATA  # the same: fine

    def not_loaded(*args, **kwargs):
        raise AssertionError("the SavedModel was loaded before the check")

    monkeypatch.setattr(tf.saved_model, "load", not_loaded)
    with pytest.raises(UserError, match="exported with DEM nodata -9999 and cannot take") as exc:
        Predictor.load(saved, nodata=-32768.0)
    assert "\n" not in str(exc.value) and "--dem-nodata -32768" in str(exc.value)


def test_saved_model_without_nodata_takes_the_users_value(exported, tmp_path, capsys):
    run, _ = exported
    saved = export_run(run, tmp_path / "saved")  # no nodata baked in
    from_saved = Predictor.load(saved, nodata=NODATA)
    assert from_saved.settings.nodata == NODATA  # the predictor says what it applies
    image, dem = raw_inputs(40, 44, seed=6)
    holed = dem.copy()
    holed[5:15, 5:15] = NODATA
    expected = Predictor.load(run, nodata=NODATA).predict(image, holed)
    np.testing.assert_allclose(from_saved.predict(image, holed), expected, atol=1e-5)

    # predict --image with a 0-filled DEM block: --dem-nodata 0 is taken, as for the run
    dem16 = (dem * 100).astype(np.uint16)
    dem16[:20, :20] = 0
    img, dem_png = write_png(tmp_path / "i.png", image), write_png(tmp_path / "d.png", dem16)
    probs = []
    for model in (run, saved):
        prob = tmp_path / f"prob_{model.name}.png"
        args = [str(model), "--image", str(img), "--dem", str(dem_png), "--dem-nodata", "0"]
        args += ["--out", str(tmp_path / "mask.png"), "--probability", str(prob)]
        assert predict_main(args) == 0, capsys.readouterr().err
        probs.append(cv2.imread(str(prob), cv2.IMREAD_UNCHANGED).astype(int))
    assert np.abs(probs[0] - probs[1]).max() <= 1  # 8-bit rounding of equal probabilities


def test_saved_multiband_model_takes_nodata_for_its_dem_band(tmp_path, capsys):
    from landslide_tf.data.spec import multiband_spec
    from landslide_tf.inference.export import export_model
    from landslide_tf.inference.settings import InferenceSettings
    from landslide_tf.models import build_model

    spec = multiband_spec(("B2", "dem"), "standard", [[0.0, 1.0], [100.0, 20.0]], size=16)
    settings = InferenceSettings(spec=spec)
    model = build_model("unet", input_shape=(None, None, 2), base_filters=4, depth=2)
    saved = export_model(model, settings, tmp_path / "saved")
    from_saved = Predictor.load(saved, nodata=NODATA)
    assert from_saved.settings.nodata == NODATA
    rng = np.random.default_rng(0)
    bands = np.stack([rng.random((20, 24)), 100 + 20 * rng.random((20, 24))], -1)
    bands = bands.astype(np.float32)
    bands[2:9, 3:10, 1] = NODATA
    expected = Predictor.from_keras(model, settings.replace(nodata=NODATA)).predict(bands)
    np.testing.assert_allclose(from_saved.predict(bands), expected, atol=1e-5)
    ignored = Predictor.from_keras(model, settings).predict(bands)
    assert np.abs(ignored - expected).max() > 1e-4  # the nodata value matters here
    # predict --image of a float-band model is a small scene: no tile-only extras either
    out = tmp_path / "mask.png"
    argv = [str(saved), "--image", str(tmp_path / "a.tif"), "--out", str(out), "--overlay"]
    assert predict_main(argv) == 2 and not out.exists()
    assert "--overlay and --probability apply to RGB tiles only" in capsys.readouterr().err
