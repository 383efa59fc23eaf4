"""Studies: settings a study cannot honour are refused up front, a study's run has the config
``train`` gives it, and the figures never show an earlier invocation's runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from landslide_tf.cli import experiments as cli
from landslide_tf.errors import UserError
from landslide_tf.experiments.study import load_study


def _study_file(tmp_path: Path, **sections) -> Path:
    raw = {"name": "s", "train": {"epochs": 1, "image_size": 64, "base_filters": 8,
                                  "depth": 3},
           "stage1": {"bases": ["unet", "unetpp"], "losses": ["bce", "dice"]},
           "stage3": {"base": "unetpp", "models": ["unetpp_ctx"]}}  # fmt: skip
    raw.update(sections)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("model", ["unet", "unetpp"])
def test_a_stage3_model_that_is_a_stage1_base_is_refused(tmp_path, model):
    """A stage-3 model that is also a base trains into the stage-1 run's folder (same
    model, loss and seed): the study lists that run twice, and tables count it as two seeds
    (``0.612 ± 0.000`` from one run)."""
    path = _study_file(tmp_path, stage3={"base": "unetpp", "models": ["unetpp_ctx", model]})
    with pytest.raises(UserError, match=f"stage3 model {model} is also a stage1 base"):
        load_study(path)


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_select_from_train_is_refused_before_anything_is_written(tmp_path, capsys, fraction):
    """Every study split has a test list, which ``--select-from-train`` refuses: each run
    failed after the split, study.json and the run folders were written."""
    with pytest.raises(UserError, match="select_from_train"):
        load_study(_study_file(tmp_path)).with_overrides(train={"select_from_train": fraction})
    out = tmp_path / "out"
    argv = [str(_study_file(tmp_path)), "--data", str(tmp_path / "no-such-data"), "--out",
            str(out), "--set", f"select_from_train={fraction}"]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "select_from_train" in err
    assert not out.exists()


PER_RUN = ['loss_kwargs={"gamma":3}', "model=unet", "loss=dice", "data=/elsewhere",
           "run_dir=/elsewhere", "split_dir=/elsewhere"]  # fmt: skip


@pytest.mark.parametrize("setting", PER_RUN)
def test_run_settings_the_study_sets_itself_are_refused_not_ignored(tmp_path, capsys, setting):
    """``--set loss_kwargs=...`` (or a study file's train.loss_kwargs, model, loss, data,
    run_dir, split_dir) was silently replaced per run by the study's own value."""
    out = tmp_path / "out"
    argv = [str(_study_file(tmp_path)), "--data", str(tmp_path / "no-such-data"), "--out",
            str(out), "--set", setting]  # fmt: skip
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    key = setting.partition("=")[0]
    assert len(err.splitlines()) == 1 and f"'{key}'" in err and "does not exist" not in err
    with pytest.raises(UserError, match=key):
        load_study(_study_file(tmp_path, train={"epochs": 1, key: "x"}))


def test_a_study_run_with_an_encoder_has_the_config_train_gives_it(tmp_path):
    """One answer per model: ``train --encoder`` fills in depth 5 and ImageNet weights; the
    study's run of the same settings had depth 4 and no weights named, so train refused the
    study's run as another run (and the study moved train's aside)."""
    from landslide_tf.cli.train_args import build_parser, config_from_args
    from landslide_tf.experiments.core import make_spec
    from landslide_tf.training.config import config_differences

    study = load_study(_study_file(tmp_path, train={"epochs": 1, "image_size": 64,
                                                    "encoder": "resnet18"},
                                   stage1={"bases": ["unet"], "losses": ["dice"]},
                                   stage3={"base": "unet", "models": []}))  # fmt: skip
    data, out = tmp_path / "data", tmp_path / "out"
    spec = make_spec(study, "unet", "dice", 42, 1, data, out)
    argv = ["--model", "unet", "--loss", "dice", "--encoder", "resnet18", "--epochs", "1",
            "--image-size", "64", "--data", str(data), "--split-dir", str(out / "split"),
            "--run-dir", str(out / "runs" / "unet-dice-s42")]  # fmt: skip
    trained = config_from_args(build_parser().parse_args(argv)).to_dict()
    assert config_differences(spec.config, trained) == []
    assert spec.config["depth"] == 5 and spec.config["encoder_weights"] == "imagenet"
    given = load_study(_study_file(tmp_path, train={"encoder": "resnet18", "depth": 3},
                                   stage1={"bases": ["unet"], "losses": ["dice"]},
                                   stage3={"base": "unet", "models": []}))  # fmt: skip
    assert make_spec(given, "unet", "dice", 42, 1, data, out).config["depth"] == 3


FIGURES = ("fig4_loss_curves.png", "fig5_predictions.png", "fig6_gradcam.png")


@pytest.mark.parametrize("finished", [False, True])
def test_a_figure_not_drawn_this_time_leaves_no_earlier_file(tmp_path, finished):
    """A figure skipped (no finished final model) or failed left the previous invocation's
    PNG in OUT: other runs' curves and predictions under the README's 'failed'."""
    from landslide_tf.experiments.report import StudyOutcome, write_figures
    from landslide_tf.experiments.runs import RunResult

    study = load_study(_study_file(tmp_path))
    for name in FIGURES:
        (tmp_path / name).write_bytes(b"an earlier invocation's figure")
    results = []
    if finished:  # its run folder is gone: every figure fails
        results = [RunResult("unet-bce-s42", "unet", "bce", 42, 1, "cached",
                             metrics={"miou": 0.5}, run_dir=str(tmp_path / "gone"))]  # fmt: skip
    outcome = StudyOutcome(
        study=study, out=tmp_path, results=results, selected={"unet": "bce", "unetpp": None},
        attention_loss="dice", attention_loss_note="", split_sizes={}, figures={},
        gradcam_energy={}, wall_s=0.0,
    )  # fmt: skip
    write_figures(outcome, n=1)
    drawn = [name for name in FIGURES if outcome.figures[name] == "ok"]
    assert drawn == (["fig4_loss_curves.png"] if finished else [])  # fig 5/6: no tiles
    assert [name for name in FIGURES if (tmp_path / name).exists()] == drawn
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in drawn)
