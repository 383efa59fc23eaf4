"""Tests for landslide_tf.explain on a tiny U-Net trained briefly on synthetic tiles."""

import json
import math

import keras
import numpy as np
import pytest

from landslide_tf.cli.gradcam import main as gradcam_main
from landslide_tf.errors import UserError
from landslide_tf.explain.cam import RegionScoreHead, compute_cam
from landslide_tf.explain.explain import explain_run
from landslide_tf.explain.figures import display_channels, save_grid, save_overlay
from landslide_tf.explain.targets import (
    METHODS,
    cam_energy_inside,
    mask_area_share,
    resolve_layer,
    target_regions,
    valid_layers,
)
from landslide_tf.training.config import TrainConfig

SIZE = 32
MODEL = "unet"
BASE_FILTERS = 8
DEPTH = 2
EPOCHS = 6


@pytest.fixture(scope="module")
def trained(synth_dir):
    """A U-Net (32x32, 8 filters, depth 2) fitted for a few epochs on the synthetic tiles."""
    from landslide_tf.data import bijie_spec, find_samples
    from landslide_tf.data.pipeline import load_tile
    from landslide_tf.models import build_model

    keras.utils.set_random_seed(0)
    samples = find_samples(synth_dir, modalities="rgb+dem")
    pairs = [load_tile(s, bijie_spec(SIZE, "rgb+dem")) for s in samples]
    x = np.stack([p[0] for p in pairs]).astype("float32")  # (N, 32, 32, 4)
    y = np.stack([p[1] for p in pairs]).astype("float32")  # (N, 32, 32, 1)
    model = build_model(
        MODEL, input_shape=(SIZE, SIZE, 4), base_filters=BASE_FILTERS, depth=DEPTH, dropout=0.0
    )
    model.compile(keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(x, y, batch_size=4, epochs=EPOCHS, verbose=0, shuffle=True)
    return model, x, y


def test_gradcam_shape_range_and_looks_at_the_landslide(trained):
    model, x, y = trained
    cams = compute_cam(model, x, method="gradcam", target="predicted", batch_size=8)
    assert cams.shape == x.shape[:3]
    assert cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    assert cams.max() > 0.5  # not all zero: each map is min-max normalized
    masks = y[..., 0]
    with_landslide = masks.reshape(len(masks), -1).any(axis=1)
    energy = cam_energy_inside(cams[with_landslide], masks[with_landslide])
    area = float(np.mean([mask_area_share(m) for m in masks[with_landslide]]))
    assert energy > area, (energy, area)


def test_default_layer_is_head_features(trained):
    model, _, _ = trained
    assert resolve_layer(model) == "head_features"
    assert valid_layers(model)[:2] == ["head_features", "bottleneck"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_and_leaves_the_model_unchanged(trained, method):
    model, x, y = trained
    before = [w.copy() for w in model.get_weights()]
    probs_before = model.predict(x[:3], verbose=0)
    cams = compute_cam(
        model, x[:3], method=method, layer="bottleneck", target="truth", mask=y[:3], batch_size=2
    )
    assert cams.shape == (3, SIZE, SIZE)
    assert np.all(np.isfinite(cams)) and cams.min() >= 0.0 and cams.max() <= 1.0
    assert cams.max() > 0.0
    after = model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    np.testing.assert_array_equal(model.predict(x[:3], verbose=0), probs_before)


def test_replace_to_linear_clones_and_keeps_the_sigmoid(trained):
    model, x, _ = trained
    probs_before = model.predict(x[:2], verbose=0)
    cams = compute_cam(model, x[:2], target="all", linear=True)
    assert cams.shape == (2, SIZE, SIZE) and cams.max() > 0.0
    assert model.get_layer("probability").activation is keras.activations.sigmoid
    np.testing.assert_array_equal(model.predict(x[:2], verbose=0), probs_before)


def test_scorecam_on_the_raw_single_output_has_constant_weights(trained):
    """Why ScoreCAM needs the two-class head: softmax over one channel is always 1."""
    model, x, _ = trained
    pooled = keras.Model(model.inputs, keras.layers.GlobalAveragePooling2D()(model.outputs[0]))
    scores = keras.ops.convert_to_numpy(keras.ops.softmax(pooled(x[:3])))  # (3, 1)
    np.testing.assert_allclose(scores, 1.0)
    head = RegionScoreHead(SIZE, SIZE)
    probs = model.predict(x[:3], verbose=0)
    two = keras.ops.convert_to_numpy(keras.ops.softmax(head(probs)))  # (3, 2)
    np.testing.assert_allclose(two[:, 1], probs.reshape(3, -1).mean(axis=1), rtol=1e-4)


def test_unknown_layer_is_a_one_line_error_listing_valid_names(trained):
    model, x, _ = trained
    with pytest.raises(UserError) as info:
        compute_cam(model, x[:1], layer="no_such_layer")
    message = str(info.value)
    assert "\n" not in message and "no_such_layer" in message and "head_features" in message
    with pytest.raises(UserError, match="method"):
        compute_cam(model, x[:1], method="saliency")
    with pytest.raises(UserError, match="truth"):
        compute_cam(model, x[:1], target="truth")


def test_default_layer_of_a_foreign_model_is_its_last_feature_map_not_its_output():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="feat")(inputs)
    out = keras.layers.Conv2D(1, 1, activation="sigmoid", name="seg")(x)
    model = keras.Model(inputs, out, name="foreign")
    assert resolve_layer(model) == "feat"
    tiles = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
    assert compute_cam(model, tiles, target="all").shape == (1, 16, 16)


def test_figures_leave_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # a caller's own backend (a notebook's inline one, say)
    try:
        rng = np.random.default_rng(0)
        x = rng.random((2, 8, 8, 4), dtype=np.float32)
        masks, probs, cams = np.zeros((2, 8, 8)), rng.random((2, 8, 8)), rng.random((2, 8, 8))
        one = save_overlay(tmp_path / "one.png", x[0], masks[0], probs[0], cams[0], "title")
        grid = save_grid(tmp_path / "grid.png", x, masks, probs, cams, ["a", "b"], "title")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    for path in (one, grid):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "one.png"]  # no temp


def test_target_regions_fall_back_to_the_whole_tile():
    probs = np.zeros((2, 4, 4, 1), np.float32)
    probs[0, :2, :2] = 0.9
    region = target_regions(probs, "predicted", threshold=0.5)
    assert region[0].sum() == 4 and region[1].sum() == 16
    truth = target_regions(probs, "truth", mask=np.zeros((2, 4, 4)))
    assert truth.sum() == 32


def test_cam_energy_inside_by_hand():
    cam = np.array([[1.0, 1.0], [0.0, 2.0]])
    mask = np.array([[0, 0], [0, 1]])
    assert cam_energy_inside(cam, mask) == pytest.approx(0.5)
    assert cam_energy_inside(cam, mask[..., None]) == pytest.approx(0.5)
    assert math.isnan(cam_energy_inside(np.zeros((2, 2)), mask))
    batch = np.stack([cam, cam, cam])
    masks = np.stack([mask, np.ones((2, 2)), np.zeros((2, 2))])  # last: no landslide, skipped
    assert cam_energy_inside(batch, masks) == pytest.approx(0.75)
    assert mask_area_share(mask) == pytest.approx(0.25)


def test_display_channels_splits_rgb_and_dem():
    x = np.random.default_rng(0).random((8, 8, 4)).astype("float32")
    rgb, dem = display_channels(x, "rgb+dem")
    assert rgb.shape == (8, 8, 3) and dem.shape == (8, 8)
    assert dem.min() == pytest.approx(0.0) and dem.max() == pytest.approx(1.0)
    rgb, dem = display_channels(x[..., :3], "rgb")
    assert dem is None and rgb.shape == (8, 8, 3)
    rgb, dem = display_channels(x[..., :1], "dem")
    assert rgb is None and dem.shape == (8, 8)


@pytest.fixture(scope="module")
def run_dir(trained, synth_dir, tmp_path_factory):
    """A run directory by the train contract: config.json, split files, best.keras."""
    from landslide_tf.data import find_samples, make_split

    model, _, _ = trained
    path = tmp_path_factory.mktemp("run")
    config = TrainConfig(
        model=MODEL,
        loss="bce",
        image_size=SIZE,
        base_filters=BASE_FILTERS,
        depth=DEPTH,
        data=str(synth_dir),
        run_dir=str(path),
        epochs=EPOCHS,
    )
    config.save(path / "config.json")
    make_split(find_samples(synth_dir, modalities="rgb+dem"), seed=config.seed, out_dir=path)
    model.save(path / "best.keras")
    return path


def test_cli_writes_overlays_grid_and_energy(run_dir, tmp_path, capsys):
    out = tmp_path / "cams"
    code = gradcam_main([str(run_dir), "--out", str(out), "--n", "3", "--target", "truth"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "energy inside" in printed
    summary = json.loads((out / "energy.json").read_text())
    assert summary["layer"] == "head_features" and summary["n_tiles"] == 3
    assert (out / "grid.png").stat().st_size > 1000
    test_stems = (run_dir / "test.txt").read_text().split()
    for row in summary["tiles"]:
        assert row["stem"] in test_stems
        assert (out / row["png"]).stat().st_size > 1000
        if row["landslide"]:
            assert 0.0 <= row["energy_inside"] <= 1.0
    csv_lines = (out / "energy.csv").read_text().strip().splitlines()
    assert csv_lines[0].startswith("stem,") and len(csv_lines) == 4
    assert summary["mean_energy_inside"] > summary["mean_area_share"]


def test_cli_errors_are_one_line(run_dir, tmp_path, capsys):
    code = gradcam_main([str(run_dir), "--out", str(tmp_path), "--layer", "nope", "--n", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown layer 'nope'") and "\n" not in err
    assert gradcam_main([str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2


def test_predicted_target_uses_the_runs_tuned_threshold(run_dir, tmp_path):
    import shutil

    tuned = tmp_path / "tuned"
    shutil.copytree(run_dir, tuned)
    (tuned / "threshold.json").write_text(json.dumps({"threshold": 0.125, "split": "val"}))
    assert gradcam_main([str(tuned), "--out", str(tmp_path / "a"), "--n", "1"]) == 0
    assert json.loads((tmp_path / "a" / "energy.json").read_text())["threshold"] == 0.125
    argv = [str(tuned), "--out", str(tmp_path / "b"), "--n", "1", "--threshold", "0.75"]
    assert gradcam_main(argv) == 0
    assert json.loads((tmp_path / "b" / "energy.json").read_text())["threshold"] == 0.75


@pytest.mark.parametrize("value", ["-3", "1.5", "nan"])
def test_cli_threshold_outside_0_1_is_one_line_exit_2(run_dir, tmp_path, capsys, value):
    argv = [str(run_dir), "--out", str(tmp_path / "cams"), "--n", "1", "--threshold", value]
    assert gradcam_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: threshold must be in [0, 1]") and "\n" not in err
    assert not (tmp_path / "cams").exists()


@pytest.mark.parametrize("value", ["0", "-2"])
def test_cli_batch_size_below_1_is_one_line_exit_2(run_dir, tmp_path, capsys, value):
    argv = [str(run_dir), "--out", str(tmp_path / "cams"), "--n", "1", "--batch-size", value]
    assert gradcam_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --batch-size must be at least 1, got {value}"
    assert not (tmp_path / "cams").exists()


@pytest.fixture
def bfloat16_run(run_dir, tmp_path):
    """``run_dir`` with its best.keras replaced by a tiny U-Net trained in mixed bfloat16."""
    import shutil

    from landslide_tf.models import build_model
    from landslide_tf.training.precision import model_precision

    path = tmp_path / "bf16"
    shutil.copytree(run_dir, path)
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = build_model(MODEL, input_shape=(SIZE, SIZE, 4), base_filters=4, depth=DEPTH)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model_precision(model) == "bfloat16"
    model.save(path / "best.keras")
    return path


@pytest.mark.parametrize("method", ["gradcam++", "scorecam"])
def test_methods_run_on_a_bfloat16_trained_run(bfloat16_run, tmp_path, method):
    out = tmp_path / "cams"
    summary = explain_run(bfloat16_run, out=out, method=method, n=1, target="all")
    assert summary["n_tiles"] == 1 and summary["layer"] == "head_features"
    assert (out / summary["tiles"][0]["png"]).stat().st_size > 1000


def test_predicted_region_is_the_runs_own_prediction_with_its_tta(run_dir, synth_dir, tmp_path):
    """Review finding: explain_run thresholded the plain model's probabilities, while
    evaluate, predict and the SavedModel average a TTA run's flips; the predicted target
    region and predicted_share must be the run's own prediction."""
    import shutil

    from landslide_tf.data import find_samples
    from landslide_tf.data.pipeline import load_tile
    from landslide_tf.inference.tta import apply_model
    from landslide_tf.training.runs import dataset_options, read_run_config

    tta_run = tmp_path / "tta"
    shutil.copytree(run_dir, tta_run)
    config = json.loads((tta_run / "config.json").read_text())
    config.update(tta=True, tta_transforms="dihedral")
    (tta_run / "config.json").write_text(json.dumps(config))
    summary = explain_run(tta_run, out=tmp_path / "cams", n=4, threshold=0.5)

    run_config, raw = read_run_config(tta_run)
    options = dataset_options(run_config, raw)
    by_stem = {s.stem: s for s in find_samples(synth_dir, modalities="rgb+dem")}
    model = keras.models.load_model(tta_run / "best.keras")
    plain_differs = False
    for row in summary["tiles"]:
        x = load_tile(by_stem[row["stem"]], **options)[0][None]
        averaged = np.asarray(apply_model(lambda t: model(t, training=False), x, True, "dihedral"))
        plain = np.asarray(model(x, training=False))
        assert row["predicted_share"] == pytest.approx(float((averaged >= 0.5).mean()), abs=1e-9)
        plain_differs |= float((plain >= 0.5).mean()) != float((averaged >= 0.5).mean())
    assert plain_differs  # the check can tell the two apart on these tiles


def test_energy_files_are_replaced_whole_or_not_at_all(run_dir, tmp_path, monkeypatch):
    """Review finding: energy.json and energy.csv were written in place, so a failure while
    writing the table left a truncated energy.csv beside a new energy.json."""
    import csv
    import errno

    out = tmp_path / "cams"
    explain_run(run_dir, out=out, n=2)
    before = {name: (out / name).read_bytes() for name in ("energy.json", "energy.csv")}

    def full_disk(self, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", full_disk)
    with pytest.raises(OSError):
        explain_run(run_dir, out=out, n=3)
    assert {name: (out / name).read_bytes() for name in before} == before


def test_tiles_with_landslide_pixels_come_first_even_when_every_tile_has_a_mask(
    run_dir, synth_dir, tmp_path
):
    """A tile with a mask is not a tile with a scar (every l4s or folder tile has a mask,
    most of them empty): the picked tiles are those with landslide pixels, in split order."""
    import shutil

    import cv2

    from landslide_tf.training.runs import read_run_config, run_splits

    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    config, _ = read_run_config(run_dir)
    flagged = [s for s in run_splits(config, run_dir, data)["test"] if s.landslide]
    blanked = flagged[:2]  # flagged landslide, masks emptied: no scar
    assert len(flagged) > 3
    for sample in blanked:
        mask = cv2.imread(str(sample.mask), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(sample.mask), np.zeros_like(mask))
    out = tmp_path / "cams"
    assert explain_run(run_dir, data=data, out=out, n=2)["n_tiles_with_landslide"] == 2
    stems = [row["stem"] for row in json.loads((out / "energy.json").read_text())["tiles"]]
    assert stems == [s.stem for s in flagged[2:4]]
