"""Tests for landslide_tf.evaluation.evaluate and landslide_tf.training.runs on a hand-made run directory.

The run holds a constant model (a 1x1 conv with zero kernel and a fixed bias), so every
metric is known from the masks alone: predicting background everywhere gives accuracy =
background share, landslide IoU = recall = F1 = 0, mIoU = background IoU / 2.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from fakes import constant_model

from landslide_tf.cli.evaluate import main
from landslide_tf.errors import UserError
from landslide_tf.evaluation.evaluate import METRIC_KEYS, evaluate_run
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.runs import load_run

SIZE = 32


@pytest.fixture
def fake_run(synth_dir, tmp_path):
    """A run dir as train writes it, whose best.keras predicts background everywhere."""
    from landslide_tf.data import find_samples, make_split

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(model="unet", data=str(synth_dir), run_dir=str(run_dir), image_size=SIZE)
    config.resolved().save(run_dir / "config.json")
    splits = make_split(find_samples(synth_dir), seed=config.seed, out_dir=run_dir)
    constant_model(-20.0).save(run_dir / "best.keras")
    return run_dir, splits


def landslide_share(samples) -> float:
    from landslide_tf.data.pipeline import make_dataset
    from landslide_tf.data.spec import bijie_spec

    ys = [np.asarray(y) for _, y in make_dataset(samples, bijie_spec(SIZE), batch_size=8)]
    return float(np.concatenate(ys).mean())


def test_all_background_model_scores_as_expected(fake_run):
    run_dir, splits = fake_run
    result = evaluate_run(run_dir)
    share = landslide_share(splits["test"])
    assert 0 < share < 1
    assert result["accuracy"] == pytest.approx(1 - share, abs=1e-6)
    assert result["iou_background"] == pytest.approx(1 - share, abs=1e-6)
    assert result["iou_landslide"] == 0 and result["recall"] == 0 and result["f1"] == 0
    assert result["miou"] == pytest.approx((1 - share) / 2, abs=1e-6)
    assert result["n_tiles"] == len(splits["test"]) and result["threshold"] == 0.5
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(saved) and result["file"] == "metrics.json"
    assert saved["miou"] == pytest.approx(result["miou"])


def test_other_split_and_threshold_do_not_overwrite_metrics_json(fake_run):
    run_dir, splits = fake_run
    evaluate_run(run_dir)
    original = (run_dir / "metrics.json").read_text()
    val = evaluate_run(run_dir, split="val")
    assert val["file"] == "metrics_val.json" and val["n_tiles"] == len(splits["val"])
    everything = evaluate_run(run_dir, threshold=0.0)  # every pixel called landslide
    assert everything["file"] == "metrics_test.json"
    assert everything["recall"] == 1.0
    assert everything["precision"] == pytest.approx(landslide_share(splits["test"]), abs=1e-6)
    assert (run_dir / "metrics.json").read_text() == original
    assert json.loads((run_dir / "metrics_test.json").read_text())["threshold"] == 0.0


def test_tune_threshold_uses_the_validation_split(fake_run):
    run_dir, _ = fake_run
    result = evaluate_run(run_dir, tune_threshold=True)
    assert result["threshold_tuned_on"] == "val" and 0.0 <= result["threshold"] <= 1.0
    assert result["file"] == "metrics_test.json"
    # A constant model: predicting nothing (threshold above its probability) is best for mIoU.
    assert result["threshold"] > 0 and result["recall"] == 0


def test_load_run_gives_config_and_model(fake_run):
    run_dir, _ = fake_run
    config, model = load_run(run_dir)
    assert config.model == "unet" and config.loss == "bce"
    assert tuple(model.output_shape) == (None, SIZE, SIZE, 1)
    with pytest.raises(UserError, match="last.keras not found: the run has no finished epoch"):
        load_run(run_dir, which="last")


def test_cli_prints_and_writes_metrics(fake_run, capsys):
    run_dir, _ = fake_run
    assert main([str(run_dir), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "mean of background and landslide IoU" in out
    assert "metrics_val.json" in out and "not metrics.json" in out
    shown = json.loads(out[: out.index("}") + 1])
    assert set(shown) == set(METRIC_KEYS) and not math.isnan(shown["miou"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}"], "does not exist"),
        (["{empty}"], "is not a training run"),
        (["{run}", "--split", "nope"], "invalid choice: 'nope'"),
        (["{run}", "--threshold", "0.3", "--tune-threshold"], "not both"),
        (["{run}", "--threshold", "2"], "threshold must be in [0, 1]"),
        (["{run}", "--data", "{missing}"], "does not exist"),
    ],
)
def test_cli_errors_are_one_line_exit_2(argv, message, fake_run, tmp_path, capsys):
    run_dir, _ = fake_run
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "absent", "empty": tmp_path / "empty", "run": run_dir}
    argv = [a.format(**paths) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert message in err, err


def test_nan_model_output_is_a_one_line_error_exit_2(fake_run, capsys):
    run_dir, _ = fake_run
    constant_model(float("nan")).save(run_dir / "best.keras")
    with pytest.raises(UserError, match="model output is not finite"):
        evaluate_run(run_dir)
    assert main([str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: model output is not finite")


# ------------------------------------------------- issue 12: the tuned threshold and TTA
def test_tune_threshold_is_stored_in_the_run_and_used_afterwards(fake_run):
    from landslide_tf.inference.settings import InferenceSettings
    from landslide_tf.metrics.thresholds import THRESHOLD_FILE
    from landslide_tf.training.runs import read_run_config

    run_dir, _ = fake_run
    tuned = evaluate_run(run_dir, tune_threshold=True)
    stored = json.loads((run_dir / THRESHOLD_FILE).read_text())
    assert stored["threshold"] == tuned["threshold"] and stored["split"] == "val"
    (run_dir / THRESHOLD_FILE).write_text(json.dumps({**stored, "threshold": 0.0}))
    again = evaluate_run(run_dir)  # no --threshold: the run's tuned one
    assert again["threshold"] == 0.0 and again["recall"] == 1.0
    assert evaluate_run(run_dir, threshold=0.5)["threshold"] == 0.5  # --threshold overrides
    _, raw = read_run_config(run_dir)
    assert InferenceSettings.from_dict(raw, run_dir=run_dir).threshold == 0.0
    assert InferenceSettings.from_dict(raw).threshold == 0.5


def test_damaged_threshold_file_is_a_one_line_error(fake_run):
    run_dir, _ = fake_run
    (run_dir / "threshold.json").write_text("{not json")
    with pytest.raises(UserError, match="threshold.json is damaged"):
        evaluate_run(run_dir)


def test_tta_flag_is_recorded(fake_run):
    run_dir, _ = fake_run
    assert evaluate_run(run_dir, tta=True)["tta"] is True
    assert evaluate_run(run_dir)["tta"] is False  # the run's own setting


def test_per_file_notes_are_said_once_per_kind(synth_dir, tmp_path, caplog):
    """Issue 22 item 3: an RGBA split gives one summarised note, not one line per tile, in
    threshold tuning and in evaluate."""
    import shutil

    import cv2

    from landslide_tf.cli.evaluate import main as evaluate_main
    from landslide_tf.data import find_samples, make_split

    data = tmp_path / "rgba"
    shutil.copytree(synth_dir, data)
    images = sorted((data / "landslide" / "image").glob("*.png"))
    for path in images:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        cv2.imwrite(str(path), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(model="unet", data=str(data), run_dir=str(run_dir), image_size=SIZE)
    config.resolved().save(run_dir / "config.json")
    splits = make_split(find_samples(data), seed=config.seed, out_dir=run_dir)
    assert len(splits["test"]) > 1 and len(splits["val"]) > 1
    constant_model(-20.0).save(run_dir / "best.keras")
    with caplog.at_level("INFO"):
        assert evaluate_main([str(run_dir), "--tune-threshold"]) == 0
    notes = [r.getMessage() for r in caplog.records if "alpha channel" in r.getMessage()]
    assert 1 <= len(notes) <= 2, notes  # one per split read (val for tuning, then test)
    assert all("files: RGBA image" in note for note in notes), notes


# ------------------------------- issue 21: one threshold reader, a robust tuned threshold
@pytest.mark.parametrize("text", ["{not json", '{"threshold": 2}', "[]", '{"metric": "f1"}'])
def test_damaged_threshold_json_is_one_line_data_error_in_evaluate_and_predictor(fake_run, text):
    from landslide_tf.errors import DataError
    from landslide_tf.inference.predictor import Predictor

    run_dir, _ = fake_run
    (run_dir / "threshold.json").write_text(text)
    for load in (lambda: evaluate_run(run_dir), lambda: Predictor.load(run_dir)):
        with pytest.raises(DataError) as info:
            load()
        assert "\n" not in str(info.value) and "threshold.json" in str(info.value)


def test_tuned_threshold_records_metric_shrinkage_and_plateau(fake_run, capsys):
    run_dir, _ = fake_run
    result = evaluate_run(run_dir, tune_threshold=True)
    stored = json.loads((run_dir / "threshold.json").read_text())
    assert stored["metric"] == "f1" and stored["split"] == "val"
    assert 0 < stored["shrink_weight"] < 1 and stored["n_positive"] > 0
    lo, hi = stored["plateau"]
    assert lo <= stored["best"] <= hi
    assert stored["threshold"] == pytest.approx(
        0.5 + stored["shrink_weight"] * (stored["best"] - 0.5), abs=1e-4
    )
    assert result["threshold_plateau"] == stored["plateau"]
    assert evaluate_run(run_dir, tune_threshold=True, tune_metric="miou")["threshold"] > 0
    assert json.loads((run_dir / "threshold.json").read_text())["metric"] == "miou"
    assert main([str(run_dir)]) == 0  # at the stored threshold: the plateau is printed
    assert "F1 plateau thresholds" in capsys.readouterr().out


def test_missing_best_keras_after_finished_epochs_says_so(fake_run):
    """Issue 23 case 15: not "training did not complete an epoch?" when it did."""
    import json

    run_dir, _ = fake_run
    (run_dir / "state.json").write_text(json.dumps({"epochs_done": 2}))
    (run_dir / "best.keras").unlink()
    with pytest.raises(UserError, match="missing although .*state.json records 2 finished"):
        evaluate_run(run_dir)


def test_tta_transforms_are_recorded_and_named_in_the_metrics_file(fake_run):
    from landslide_tf.evaluation.evaluate import tta_suffix
    from landslide_tf.training.config import TrainConfig

    run_dir, _ = fake_run
    result = evaluate_run(run_dir, tta=True, tta_transforms="dihedral")
    assert result["tta_transforms"] == "dihedral" and result["file"] == "metrics_test_dihedral.json"
    assert (run_dir / "metrics_test_dihedral.json").is_file()
    with pytest.raises(UserError, match="needs flip averaging on"):
        evaluate_run(run_dir, tta_transforms="dihedral")  # the run's TTA is off
    flips_run = TrainConfig(tta=True)
    assert tta_suffix(True, "flips", flips_run) is None
    assert tta_suffix(True, "dihedral", flips_run) == "dihedral"
    assert tta_suffix(False, "flips", flips_run) == "notta"
    assert tta_suffix(True, "flips", TrainConfig(tta=False)) == "tta"
    assert tta_suffix(True, "flips", TrainConfig(tta=True, tta_transforms="dihedral")) == "flips"


# ------------------------- review: the stored threshold is tuned as predict and export apply it
@pytest.mark.parametrize(
    "settings, named",
    [
        ({"tta": True}, "--tta"),
        ({"tta": True, "tta_transforms": "dihedral"}, "--tta"),
        ({"precision": "bfloat16"}, "--precision"),
        ({"dem_nodata": -9999.0}, "--dem-nodata"),
    ],
)
def test_tune_threshold_refuses_settings_other_than_the_runs(fake_run, settings, named):
    """predict and the SavedModel apply threshold.json with the run's own TTA, float32 and
    DEM nodata: a threshold tuned on other probabilities must not be stored in the run."""
    run_dir, _ = fake_run
    with pytest.raises(UserError, match=f"--tune-threshold stores .*{named}") as info:
        evaluate_run(run_dir, tune_threshold=True, **settings)
    assert "\n" not in str(info.value)
    assert not (run_dir / "threshold.json").exists()
    assert not list(run_dir.glob("metrics*.json"))
    evaluate_run(run_dir, **settings)  # scoring under other settings stays allowed


def test_tune_threshold_under_the_runs_own_settings_is_allowed(fake_run):
    run_dir, _ = fake_run
    config = json.loads((run_dir / "config.json").read_text())
    nodata = config.get("dem_nodata")
    result = evaluate_run(run_dir, tune_threshold=True, tta=False, precision="float32",
                          dem_nodata=nodata)  # fmt: skip
    assert (run_dir / "threshold.json").is_file() and result["threshold_tuned_on"] == "val"


@pytest.mark.parametrize("plateau", [[0.4], [0.3, None], [0.6, 0.2], "0.2-0.6", [True, 1]])
def test_damaged_plateau_in_threshold_json_is_one_line_exit_2(fake_run, capsys, plateau):
    """Review finding: only "threshold" was checked; evaluate unpacked the plateau after
    writing the metrics and the model card formatted it: tracebacks."""
    from landslide_tf.errors import DataError
    from landslide_tf.metrics.thresholds import read_threshold_info

    run_dir, _ = fake_run
    (run_dir / "threshold.json").write_text(json.dumps({"threshold": 0.5, "plateau": plateau}))
    with pytest.raises(DataError, match="plateau"):
        read_threshold_info(run_dir)
    assert main([str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "threshold.json" in err and "\n" not in err
    (run_dir / "threshold.json").write_text(json.dumps({"threshold": 0.5, "plateau": [0.2, 0.6]}))
    assert read_threshold_info(run_dir)["plateau"] == [0.2, 0.6]


def _renamed_copy(src, dst, prefix="other", count=10):
    """Another dataset: the first ``count`` landslide tiles of ``src`` under new stems, with
    its own train/val lists (as a published dataset ships them)."""
    import shutil

    stems = sorted(p.stem for p in (src / "landslide" / "image").glob("*.png"))[:count]
    for sub in ("image", "dem", "mask"):
        (dst / "landslide" / sub).mkdir(parents=True)
        for i, stem in enumerate(stems):
            shutil.copy(src / "landslide" / sub / f"{stem}.png", dst / "landslide" / sub / f"{prefix}{i}.png")  # fmt: skip
    (dst / "train.txt").write_text("".join(f"{prefix}{i}\n" for i in range(6)))
    (dst / "val.txt").write_text("".join(f"{prefix}{i}\n" for i in range(6, count)))
    return dst


def test_another_dataset_is_scored_on_its_own_lists_or_whole(fake_run, tmp_path, capsys):
    """A run scored on a dataset it never saw: its own split lists would name missing tiles,
    so the refusal says how (--split-dir, --split all); the file names the dataset and the
    run's metrics.json and threshold are untouched."""
    run_dir, _ = fake_run
    evaluate_run(run_dir)
    original = (run_dir / "metrics.json").read_text()
    config = json.loads((run_dir / "config.json").read_text())
    other = _renamed_copy(Path(config["data"]), tmp_path / "area-b")
    assert main([str(run_dir), "--data", str(other), "--split", "val"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--split-dir" in err and "--split all" in err
    assert "delete" not in err
    val = evaluate_run(run_dir, data=other, split="val", split_dir=other)
    assert val["n_tiles"] == 4 and val["file"] == "metrics_val_on-area-b.json"
    assert val["data"] == str(other) and val["split_dir"] == str(other)
    whole = evaluate_run(run_dir, data=other, split="all")
    assert whole["n_tiles"] == 10 and whole["file"] == "metrics_all_on-area-b.json"
    from landslide_tf.data import find_samples

    share = landslide_share(find_samples(other))  # the constant model calls all background
    assert whole["accuracy"] == pytest.approx(1 - share, abs=1e-6) and whole["recall"] == 0
    assert (run_dir / "metrics.json").read_text() == original
    with pytest.raises(UserError, match="--threshold instead"):
        evaluate_run(run_dir, data=other, split="val", split_dir=other, tune_threshold=True)
    assert not (run_dir / "threshold.json").exists()
    assert main([str(run_dir), "--data", str(other), "--split-dir", str(tmp_path)]) == 2
    assert "no train.txt and val.txt" in capsys.readouterr().err
