"""Evaluate and DEM nodata: settings other than the run's never overwrite ``metrics.json``,
and tiles without any valid DEM cell are left out of the scores as predict leaves them out
of its maps (``landslide_tf.inference.predictor.no_dem_as_nodata``)."""

import json
import shutil

import cv2
import numpy as np
import pytest
from fakes import constant_model

from landslide_tf.cli.evaluate import main
from landslide_tf.evaluation.evaluate import evaluate_run
from landslide_tf.training.config import TrainConfig

SIZE = 32


def make_run(data, run_dir, dem_nodata=None):
    from landslide_tf.data import find_samples, make_split

    run_dir.mkdir()
    config = TrainConfig(
        model="unet", data=str(data), run_dir=str(run_dir), image_size=SIZE, dem_nodata=dem_nodata
    )
    config.resolved().save(run_dir / "config.json")
    splits = make_split(find_samples(data), seed=config.seed, out_dir=run_dir)
    constant_model(-20.0).save(run_dir / "best.keras")  # background everywhere
    return splits


def masks(samples) -> np.ndarray:
    from landslide_tf.data.pipeline import make_dataset
    from landslide_tf.data.spec import bijie_spec

    ys = [np.asarray(y) for _, y in make_dataset(samples, bijie_spec(SIZE), batch_size=8)]
    return np.concatenate(ys)  # (N, S, S, 1)


def test_other_dem_nodata_does_not_overwrite_metrics_json(synth_dir, tmp_path):
    run_dir = tmp_path / "run"
    make_run(synth_dir, run_dir)
    assert evaluate_run(run_dir)["file"] == "metrics.json"
    (run_dir / "metrics.json").unlink()
    other = evaluate_run(run_dir, dem_nodata=255.0)  # not the run's (none)
    assert other["file"] != "metrics.json" and not (run_dir / "metrics.json").exists()
    saved = json.loads((run_dir / other["file"]).read_text())
    assert saved["dem_nodata"] == 255.0 and saved["split"] == "test"
    same = evaluate_run(run_dir, dem_nodata=None)  # the run's own: the training result
    assert same["file"] == "metrics.json" and same["dem_nodata"] is None


@pytest.fixture
def run_with_a_dem_less_tile(synth_dir, tmp_path):
    """A run (dem_nodata 0) whose first test landslide tile has a DEM of 0 everywhere."""
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    run_dir = tmp_path / "run"
    splits = make_run(data, run_dir, dem_nodata=0.0)
    test = splits["test"]
    blank = next(i for i, s in enumerate(test) if s.mask is not None and masks([s]).any())
    dem = cv2.imread(str(test[blank].dem), cv2.IMREAD_UNCHANGED)
    assert dem.min() > 0  # the other tiles keep every cell
    cv2.imwrite(str(test[blank].dem), np.zeros_like(dem))
    return run_dir, test, blank


def test_tile_without_any_valid_dem_cell_is_left_out_and_counted(run_with_a_dem_less_tile):
    run_dir, test, blank = run_with_a_dem_less_tile
    kept = [s for i, s in enumerate(test) if i != blank]
    share = float(masks(kept).mean())
    result = evaluate_run(run_dir)
    assert result["n_tiles_no_dem"] == 1 and result["n_tiles"] == len(test) - 1
    assert result["n_pixels"] == (len(test) - 1) * SIZE * SIZE
    assert result["accuracy"] == pytest.approx(1 - share, abs=1e-6)  # only the kept tiles
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["n_tiles_no_dem"] == 1


def test_cli_says_how_many_tiles_were_left_out(run_with_a_dem_less_tile, capsys):
    run_dir, _, _ = run_with_a_dem_less_tile
    assert main([str(run_dir)]) == 0
    assert "left out   1 tiles whose DEM has no valid cell" in capsys.readouterr().out


def test_predictor_gives_the_left_out_tile_nodata(run_with_a_dem_less_tile):
    """The rule evaluate applies is the predictor's: the same tile is NaN there."""
    from landslide_tf.data.formats import read_tile
    from landslide_tf.evaluation.evaluate import no_dem_tiles
    from landslide_tf.inference.predictor import Predictor
    from landslide_tf.training.runs import dataset_options, read_run_config

    run_dir, test, blank = run_with_a_dem_less_tile
    options = dataset_options(*read_run_config(run_dir))
    missing = no_dem_tiles(test, options["spec"], options["data_format"])
    assert np.flatnonzero(missing).tolist() == [blank]
    predictor = Predictor.load(run_dir)
    for i in (blank, (blank + 1) % len(test)):
        image, dem, _, _ = read_tile(test[i], options["spec"])
        prob = predictor.predict(image, dem)
        assert bool(np.isnan(prob).all()) == bool(missing[i])


def test_model_card_takes_no_metrics_scored_with_another_dem_nodata(tmp_path):
    """A metrics file ``evaluate --dem-nodata V`` wrote (``dem_nodata`` recorded) is not the
    export's when the export treats another value as missing, and is when it treats V."""
    from landslide_tf.inference.model_card import metrics_at_threshold

    other = {"threshold": 0.5, "f1": 0.9, "tta": False, "dem_nodata": 255.0}
    (tmp_path / "metrics_test_nodata.json").write_text(json.dumps(other))
    run_config = {"tta": False, "dem_nodata": None}
    card = metrics_at_threshold(0.5, None, tmp_path, run_config=run_config)
    assert card["source"] is None and card["metrics"] is None
    baked = metrics_at_threshold(0.5, None, tmp_path, run_config=run_config, dem_nodata=255.0)
    assert baked["source"] == "metrics_test_nodata.json" and baked["metrics"]["f1"] == 0.9
    # the run's own metrics.json (no dem_nodata key: the run's) is the export's at the run's
    own = {"threshold": 0.5, "f1": 0.8, "tta": False}
    mine = metrics_at_threshold(0.5, own, tmp_path, run_config={**run_config, "dem_nodata": 7.0},
                                dem_nodata=7.0)  # fmt: skip
    assert mine["source"] == "metrics.json"
    note = metrics_at_threshold(0.5, own, tmp_path, run_config=run_config, dem_nodata=3.0)
    assert note["source"] is None and "--dem-nodata 3" in note["note"]


def test_a_split_without_any_valid_dem_cell_is_one_line(synth_dir, tmp_path, capsys):
    """Every tile left out: one line naming the count and the nodata value, not a metrics file
    of nulls."""
    run_dir = tmp_path / "run"
    splits = make_run(synth_dir, run_dir)
    before = sorted(p.name for p in run_dir.iterdir())
    nodata = float(cv2.imread(str(splits["test"][0].dem), cv2.IMREAD_UNCHANGED).flat[0])
    shutil.copytree(synth_dir, tmp_path / "data")
    for sample in splits["test"]:  # the test tiles' DEMs become one value: the nodata
        target = tmp_path / "data" / sample.dem.relative_to(synth_dir)
        dem = cv2.imread(str(target), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(target), np.full_like(dem, int(nodata)))
    code = main([str(run_dir), "--data", str(tmp_path / "data"), "--dem-nodata", f"{nodata:g}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert f"none of the {len(splits['test'])} tiles has a valid DEM cell" in err[0]
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written
