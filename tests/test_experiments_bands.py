"""Studies on the l4s format, and the ``bands`` study (band-set ablation)."""

import json

import pytest
from band_data import make_l4s

from landslide_tf.data.bands import L4S_BANDS
from landslide_tf.experiments.bands import (
    BandRunSpec,
    band_sets,
    summarise,
    write_bands_outputs,
)
from landslide_tf.experiments.runs import RunResult

TINY = ["--epochs", "1", "--image-size", "32", "--base-filters", "4", "--set", "depth=2"]
TINY += ["--batch-size", "2"]


def test_band_sets_per_format():
    l4s = band_sets("l4s", list(L4S_BANDS))
    assert [label for label, _ in l4s] == [
        "RGB",
        "RGB + DEM",
        "RGB + DEM + slope",
        "all 14 bands",
    ]
    assert l4s[2][1]["bands"] == ["B4", "B3", "B2", "dem", "slope"]
    folder = band_sets("folder", ["1", "2", "3", "4", "dem"])
    assert [s["bands"] for _, s in folder] == [
        ["1", "2", "3"],
        ["1", "2", "3", "dem"],
        ["1", "2", "3", "4", "dem"],
    ]
    bijie = band_sets("bijie", [])
    assert bijie[2][1] == {"modalities": "rgb+dem", "derived": ["slope"], "bands": None}


def test_summary_means_stds_and_deltas(tmp_path):
    sets = band_sets("l4s", list(L4S_BANDS))[:2]
    specs, results = [], []
    for tag, mious in (("rgb", [0.5, 0.6]), ("rgb+dem", [0.7, 0.7])):
        for seed, miou in enumerate(mious):
            spec = BandRunSpec("unet", "dice", seed, 1, {"run_dir": str(tmp_path)}, tag=tag)
            specs.append(spec)
            metrics = {"miou": miou, "iou_landslide": miou / 2, "f1": miou}
            results.append(RunResult.from_spec(spec, "trained", metrics=metrics))
    rows = summarise(sets, specs, results)
    assert rows[0]["miou_mean"] == pytest.approx(0.55)
    assert rows[0]["miou_std"] == pytest.approx(0.0707107, rel=1e-5)  # sample std (n - 1)
    assert rows[1]["delta_prev"] == pytest.approx(0.15) and rows[1]["delta_rgb"] == pytest.approx(
        0.15
    )
    write_bands_outputs(rows, tmp_path, "l4s")
    table = (tmp_path / "bands.md").read_text()
    assert "0.5500 ± 0.0707" in table and "+0.1500" in table
    assert (tmp_path / "bands.png").stat().st_size > 0
    assert specs[0].name == "rgb-unet-dice-s0"


@pytest.mark.slow
def test_bands_study_on_l4s(tmp_path):
    pytest.importorskip("h5py")
    from landslide_tf.cli.experiments import main

    data = make_l4s(tmp_path / "L4S", size=32)
    out = tmp_path / "out"
    args = ["bands", "--data", str(data), "--out", str(out), "--seeds", "2", "--set", "model=unet"]
    assert main([*args, *TINY]) == 0
    rows = list((out / "bands.csv").read_text().splitlines())
    assert len(rows) == 1 + 4  # header + RGB, +DEM, +slope, all 14
    config = json.loads((out / "runs" / "all14bands-unet-dice-s43" / "config.json").read_text())
    assert config["channels"] == 14 and config["split_dir"] == str(out / "split")
    assert (out / "bands.png").is_file()


@pytest.mark.slow
def test_paper_protocol_on_l4s(tmp_path):
    pytest.importorskip("h5py")
    from landslide_tf.cli.experiments import main

    study = tmp_path / "tiny.json"
    study.write_text(json.dumps({
        "name": "tiny", "extends": "quick",
        "stage1": {"bases": ["unet"], "losses": ["bce"]},
        "stage3": {"base": "unet", "models": []},
    }))  # fmt: skip
    data = make_l4s(tmp_path / "L4S", size=32)
    out = tmp_path / "out"
    argv = [str(study), "--data", str(data), "--out", str(out), "--data-format", "l4s"]
    assert main([*argv, "--bands", "B2,B3,B4,slope,dem", *TINY]) == 0
    config = json.loads(next((out / "runs").glob("*/config.json")).read_text())
    assert config["data_format"] == "l4s" and config["bands"] == ["B2", "B3", "B4", "slope", "dem"]
    assert (out / "split" / "test.txt").read_text().split() == ["test_7", "test_8"]
    assert (out / "fig5_predictions.png").is_file()  # figures read l4s tiles too


def test_bands_std_is_the_tables_sample_std(tmp_path):
    """bands.csv and the study tables give one seed spread: 0.60, 0.62 -> 0.014, not 0.010."""
    from landslide_tf.experiments.tables import format_mean_std

    sets = [("RGB", {"modalities": "rgb", "derived": [], "bands": None})]
    specs = [BandRunSpec("m", "l", s, 1, {"run_dir": str(tmp_path)}, tag="rgb") for s in (1, 2)]
    results = [
        RunResult.from_spec(spec, "trained", metrics={"miou": v, "iou_landslide": v, "f1": v})
        for spec, v in zip(specs, (0.60, 0.62), strict=True)
    ]
    row = summarise(sets, specs, results)[0]
    assert f"{row['miou_mean']:.3f} ± {row['miou_std']:.3f}" == format_mean_std([0.60, 0.62])
    assert row["miou_std"] == pytest.approx(0.0141421, rel=1e-5)
    one = summarise(sets, specs[:1], results[:1])[0]  # one seed: no spread, as in the tables
    assert one["miou_std"] is None
    write_bands_outputs([one], tmp_path, "bijie")
    assert "| 0.6000 |" in (tmp_path / "bands.md").read_text()


def test_bands_md_records_its_command_and_settings(tmp_path):
    """Issue 22 item 7: bands.md says how it was made."""
    rows = [
        {"band_set": "RGB", "bands": "rgb", "runs": 1, "failed": 0, "miou_mean": 0.5,
         "miou_std": 0.0, "iou_landslide_mean": 0.2, "iou_landslide_std": 0.0, "f1_mean": 0.3,
         "f1_std": 0.0, "delta_prev": None, "delta_rgb": 0.0},
    ]  # fmt: skip
    command = "python -m landslide_tf.experiments bands --data D --out O --epochs 2"
    write_bands_outputs(rows, tmp_path, "folder", settings={"epochs": 2, "lr": 1e-5},
                        command=command)  # fmt: skip
    text = (tmp_path / "bands.md").read_text()
    assert command in text and "epochs=2" in text and "lr=1e-05" in text


def test_bands_is_listed_beside_the_studies(capsys):
    from landslide_tf.cli.experiments import main

    assert main(["--list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert {"paper", "quick", "bands"} <= set(names)


def test_bands_without_data_uses_the_synthetic_default(tmp_path, monkeypatch, capsys):
    """No --data: the bands study runs on the default dataset, as the other studies do."""
    from landslide_tf.cli.experiments import main
    from landslide_tf.experiments import bands

    default = tmp_path / "synthetic"
    (default / "landslide").mkdir(parents=True)  # an existing default dataset
    monkeypatch.setenv("LANDSLIDE_TF_DATA", str(default))
    used = []

    def fake_study(study, data, out, **kwargs):
        used.append(data)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "bands.md").write_text("table\n")
        return []

    monkeypatch.setattr(bands, "run_bands_study", fake_study)
    assert main(["bands", "--out", str(tmp_path / "out")]) == 0
    assert used == [default]
    assert f"no --data: using the synthetic dataset {default}" in capsys.readouterr().out
