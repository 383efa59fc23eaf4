"""Tests for landslide_tf.experiments: study files, selection, tables, resume, failures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from landslide_tf.cli import experiments as cli
from landslide_tf.errors import UserError
from landslide_tf.experiments import runner, tables
from landslide_tf.experiments.reference import PAPER_TABLE1, PAPER_TABLE3
from landslide_tf.experiments.runs import RunResult, RunSpec, run_name
from landslide_tf.experiments.study import (
    EMBEDDED_STUDIES,
    REPO_STUDY_DIR,
    available_studies,
    load_study,
)

BASES = ["unet", "resunet", "unetpp"]
LOSSES = ["bce", "focal", "dice", "wce"]
ATTENTION = ["unetpp_spatial", "unetpp_ctx", "unetpp_spatial_ctx"]
TINY = ["--epochs", "1", "--base-filters", "4", "--image-size", "32", "--set", "depth=2"]


def fake(model, loss, seed=42, miou=0.5, val=None, status="trained", stage=1, **metrics):
    """A RunResult as a finished (or failed) run would give."""
    values = {"miou": miou, "auc": 0.8, "precision": 0.7, "recall": 0.6, "f1": 0.65,
              "accuracy": 0.9, "iou_background": 0.9, "iou_landslide": miou, **metrics}  # fmt: skip
    if status == "failed":
        return RunResult(run_name(model, loss, seed), model, loss, seed, stage, "failed",
                         error="ValueError: boom")  # fmt: skip
    return RunResult(run_name(model, loss, seed), model, loss, seed, stage, status,
                     metrics=values, val_miou=val, wall_s=1.0)  # fmt: skip


# ---------------------------------------------------------------- study files


@pytest.mark.parametrize("name", ["paper", "quick"])
def test_study_json_matches_embedded_copy(name):
    raw = json.loads((REPO_STUDY_DIR / f"{name}.json").read_text())
    assert raw == EMBEDDED_STUDIES[name]


def test_paper_study_is_the_paper_protocol():
    study = load_study("paper")
    assert study.bases == BASES and study.losses == LOSSES
    assert study.attention_base == "unetpp" and study.attention_models == ATTENTION
    assert study.select_on == "test"
    train = study.train
    assert (train["lr"], train["batch_size"], train["epochs"], train["image_size"]) == (
        1e-5, 2, 50, 128)  # fmt: skip
    assert train["dropout"] == 0.5 and train["modalities"] == "rgb+dem"
    assert study.split_fractions == (0.64, 0.16, 0.2)


def test_quick_extends_paper_with_small_sizes():
    quick, paper = load_study("quick"), load_study("paper")
    assert quick.bases == paper.bases and quick.attention_models == paper.attention_models
    assert quick.train["image_size"] < paper.train["image_size"]
    assert quick.train["epochs"] < paper.train["epochs"]
    assert quick.train["batch_size"] == paper.train["batch_size"]


def test_embedded_fallback_when_no_json_found(monkeypatch, tmp_path):
    import landslide_tf.experiments.study as study_mod

    monkeypatch.setattr(study_mod, "REPO_STUDY_DIR", tmp_path / "none")
    monkeypatch.chdir(tmp_path)
    study = load_study("quick")
    assert study.source == "embedded" and study.train["image_size"] == 64


def test_study_from_path_and_overrides(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"stage1": {"bases": ["unet"], "losses": ["dice"]},
                                "train": {"epochs": 3}}))  # fmt: skip
    study = load_study(str(path)).with_overrides(train={"epochs": 1, "lr": None}, seeds=3,
                                                 select_on="val")  # fmt: skip
    assert study.name == "mine" and study.train == {"epochs": 1}
    assert study.seed_list == [42, 43, 44] and study.select_on == "val"
    assert study.attention_models == []


@pytest.mark.parametrize(
    "kwargs, match",
    [({"train": {"epochs": 1, "nonsense": 2}}, "unknown train settings"),
     ({"select_on": "train"}, "select_on"),
     ({"seeds": 0}, "seeds")],
)  # fmt: skip
def test_bad_overrides_are_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        load_study("paper").with_overrides(**kwargs)


@pytest.mark.parametrize(
    "train, match",
    [({"test_split": "val"}, "test_split must be 'test'"),
     ({"strategy": "foo"}, "unknown strategy 'foo'"),
     ({"precision": "fp8"}, "unknown precision 'fp8'"),
     ({"steps_per_execution": -5}, "steps per execution must be at least 0"),
     ({"deep_supervision": True}, "'quick', unet with bce: --deep-supervision needs")],
)  # fmt: skip
def test_study_settings_are_checked_for_every_run_up_front(train, match):
    """Every (model, loss) of the study, not only the default model, before any run."""
    with pytest.raises(UserError, match=match):
        load_study("quick").with_overrides(train=train)


def test_study_loss_kwargs_are_checked_for_their_loss(tmp_path):
    study = tmp_path / "kw.json"
    study.write_text(json.dumps({"name": "kw", "extends": "quick",
                                 "loss_kwargs": {"focal": {"bogus": 1}}}))  # fmt: skip
    with pytest.raises(UserError, match="unet with focal: bad --loss-kwargs for focal"):
        load_study(str(study))


def test_study_strategy_flag_has_the_registry_choices(tmp_path, capsys):
    from landslide_tf.training.config import STRATEGIES

    action = next(a for a in cli.build_parser()._actions if a.dest == "strategy")
    assert tuple(action.choices) == STRATEGIES
    with pytest.raises(SystemExit) as stop:
        cli.main(["quick", "--out", str(tmp_path / "o"), "--strategy", "foo"])
    assert stop.value.code == 2 and "invalid choice: 'foo'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "content, match",
    [({"split": [1, 2]}, "is malformed: AttributeError"),
     ({"stage3": "unetpp_ctx"}, "is malformed: AttributeError"),
     ({"stage1": {"bases": ["unet", "unet"], "losses": ["bce"]}}, "stage1 bases name unet twice"),
     ({"stage1": {"bases": ["unet"], "losses": ["bce", "dice", "bce"]}},
      "stage1 losses name bce twice"),
     ({"stage3": {"base": "unet", "models": ["unetpp_ctx", "unetpp_ctx"]}},
      "stage3 models name unetpp_ctx twice")],
)  # fmt: skip
def test_malformed_or_repeating_study_files_are_one_line(tmp_path, content, match):
    """A section of the wrong type is one line, not a traceback; a repeated base, loss or
    model would train one run directory twice and count its row twice in the tables."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"name": "bad", "extends": "quick", **content}))
    with pytest.raises(UserError, match=match) as exc:
        load_study(str(path))
    assert "\n" not in str(exc.value)


def test_a_study_file_that_is_not_text_is_one_line(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_study(str(path))


@pytest.mark.parametrize(
    "argv, message",
    [(["quick", "--figure-tiles", "0"], "--figure-tiles must be at least 1, got 0"),
     (["bands", "--seeds", "0"], "seeds must be at least 1, got 0")],
)  # fmt: skip
def test_study_counts_below_one_are_refused_before_any_run(tmp_path, capsys, argv, message):
    """Checked up front: not after the whole study (figures), not silently 3 (bands)."""
    out = tmp_path / "o"
    assert cli.main([*argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_metric_no_finished_run_has_is_na_not_failed():
    """AUC is null for a test split with one class: the run finished, the cell says n/a."""
    results = [fake("unet", "dice", auc=None), fake("unet", "dice", seed=43, auc=float("nan"))]
    md, rows = tables.table3(results, [("unet", "dice")], seeds=2)
    (line,) = _table_rows(md)
    assert "n/a" in line and "failed" not in line and rows[0]["n"] == 2
    md1, _ = tables.table1(results, ["unet"], ["dice"], {"unet": "dice"}, "test", 2)
    assert "0.500 ± 0.000" in md1


def test_unknown_study_lists_the_known_ones():
    with pytest.raises(UserError, match="paper"):
        load_study("no-such-study")
    assert {"paper", "quick"} <= set(available_studies())


def test_cli_user_errors_exit_2(capsys, tmp_path):
    assert cli.main(["no-such-study", "--data", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown study") and "Traceback" not in err
    assert cli.main(["paper", "--data", str(tmp_path / "missing"), "--out",
                     str(tmp_path / "o")]) == 2  # fmt: skip
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------- selection and tables


def _table_rows(markdown: str) -> list[str]:
    """Body rows of the markdown table (header and separator dropped)."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return lines[2:]


def test_format_mean_std():
    assert tables.format_mean_std([0.5]) == "0.500"
    assert tables.format_mean_std([0.5, 0.7]) == "0.600 ± 0.141"
    assert tables.format_mean_std([0.5, 0.7], expected=3) == "0.600 ± 0.141 (n=2)"
    assert tables.format_mean_std([]) == "failed"
    mean, std, n = tables.mean_std([0.1, 0.2, 0.3, float("nan"), None])
    assert (round(mean, 6), round(std, 6), n) == (0.2, 0.1, 3)


def test_selection_is_argmax_of_mean_over_seeds():
    results = [
        fake("unet", "bce", 42, 0.60), fake("unet", "bce", 43, 0.40),  # mean 0.50
        fake("unet", "dice", 42, 0.55), fake("unet", "dice", 43, 0.53),  # mean 0.54
        fake("unet", "wce", 42, status="failed"),
        fake("resunet", "focal", 42, 0.7), fake("resunet", "wce", 42, 0.71),
        fake("unetpp", "bce", 42, status="failed"),
    ]  # fmt: skip
    chosen = tables.select_best_losses(results, BASES, LOSSES, "test")
    assert chosen == {"unet": "dice", "resunet": "wce", "unetpp": None}


def test_selection_on_val_uses_validation_scores():
    results = [fake("unet", "bce", miou=0.9, val=0.1), fake("unet", "focal", miou=0.2, val=0.3)]
    assert tables.select_best_losses(results, ["unet"], LOSSES, "test") == {"unet": "bce"}
    assert tables.select_best_losses(results, ["unet"], LOSSES, "val") == {"unet": "focal"}


def test_selection_tie_goes_to_the_earlier_loss():
    results = [fake("unet", loss, miou=0.5) for loss in reversed(LOSSES)]
    assert tables.select_best_losses(results, ["unet"], LOSSES) == {"unet": "bce"}


def test_table1_has_paper_values_differences_and_selection():
    results = [fake(b, loss, seed, 0.5 + 0.01 * i + 0.002 * seed)
               for i, (b, loss) in enumerate((b, l) for b in BASES for l in LOSSES)  # noqa: E741
               for seed in (0, 1)]  # fmt: skip
    results[0] = fake("unet", "bce", 0, status="failed")
    selected = tables.select_best_losses(results, BASES, LOSSES)
    md, rows = tables.table1(results, BASES, LOSSES, selected, "test", seeds=2)
    assert len(rows) == 12 and "selection on the **test** split" in md
    unet_bce = next(r for r in rows if r["model"] == "unet" and r["loss"] == "bce")
    assert unet_bce["n"] == 1 and unet_bce["n_failed"] == 1
    assert unet_bce["paper_miou"] == PAPER_TABLE1["unet"]["bce"]
    assert math.isclose(unet_bce["diff"], unet_bce["miou_mean"] - 0.575)
    assert "(n=1)" in md and "±" in md
    line = next(line for line in md.splitlines() if line.startswith("| U-Net++ |"))
    assert "**" in line and line.rstrip(" |").endswith("WCE")
    assert sum(r["selected"] for r in rows) == 3


def test_table3_has_six_rows_with_all_metrics_and_paper_values():
    results = [fake(b, "dice", miou=0.6) for b in BASES]
    results += [fake(m, "dice", miou=0.7, stage=3) for m in ATTENTION]
    results.append(fake("unetpp_ctx", "dice", seed=43, status="failed", stage=3))
    models = [(b, "dice") for b in BASES] + [(m, "dice") for m in ATTENTION]
    md, rows = tables.table3(results, models, seeds=1)
    body = _table_rows(md)
    assert len(body) == 6 and len(rows) == 6
    for metric in ("miou", "auc", "precision", "recall", "f1", "accuracy"):
        assert f"{metric}_mean" in rows[0] and f"paper_{metric}" in rows[0]
    assert rows[0]["paper_precision"] == PAPER_TABLE3["unet"]["precision"]
    assert math.isclose(rows[3]["diff_miou"], 0.7 - 0.72)
    assert "Dice (paper: BCE)" in body[0] and rows[4]["n_failed"] == 1


def test_write_table_csv(tmp_path):
    md, rows = tables.table3([fake("unet", "bce")], [("unet", "bce"), ("resunet", None)], 1)
    tables.write_table(tmp_path, "t", md, rows)
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("model,loss,paper_loss,n")
    assert "not run" in (tmp_path / "t.md").read_text()


# ---------------------------------------------------------------- resume logic and failures


def _spec(tmp_path, model="unet", loss="bce", seed=42, **extra):
    config = {"model": model, "loss": loss, "seed": seed, "epochs": 2,
              "run_dir": str(tmp_path / "runs" / run_name(model, loss, seed)), **extra}  # fmt: skip
    from landslide_tf.training.config import TrainConfig

    return RunSpec(model, loss, seed, 1, TrainConfig.from_dict(config).to_dict())


def _finish(spec, miou=0.5, epochs=None, **config_changes):
    """Write what a finished ``train`` leaves in a run dir."""
    run_dir = spec.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {**spec.config, **config_changes}
    if config["loss"] == "wce":
        config["loss_kwargs"] = {"class_weights": [0.6, 2.0]}
        config["auto_loss_kwargs"] = ["class_weights"]
    (run_dir / "config.json").write_text(json.dumps(config))
    done = epochs or config["epochs"]
    (run_dir / "state.json").write_text(json.dumps({"epochs_done": done, "monitor": "val_miou",
                                                    "best_value": miou - 0.1}))  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps({"miou": miou, "f1": 0.4, "threshold": 0.5}))


def test_prepare_run_skips_finished_runs_with_the_same_config(tmp_path):
    spec = _spec(tmp_path, loss="wce")
    assert runner.prepare_run(spec) is None
    _finish(spec, miou=0.61)
    cached = runner.prepare_run(spec)
    assert cached.status == "cached" and cached.metrics["miou"] == 0.61
    assert math.isclose(cached.val_miou, 0.51)


def test_prepare_run_moves_a_different_config_aside(tmp_path):
    spec = _spec(tmp_path)
    _finish(spec, lr=0.1)
    assert runner.prepare_run(spec) is None
    assert not spec.run_dir.exists()
    assert (spec.run_dir.parent / f"{spec.name}.stale-1" / "metrics.json").is_file()


def test_prepare_run_resumes_unfinished_and_retries_failed(tmp_path):
    spec = _spec(tmp_path)
    _finish(spec, epochs=1)  # one of two epochs: interrupted
    (spec.run_dir / "error.txt").write_text("old failure")
    assert runner.prepare_run(spec) is None
    assert (spec.run_dir / "state.json").is_file()  # kept: train resumes from it
    assert not (spec.run_dir / "error.txt").exists()
    more = _spec(tmp_path, epochs=5)  # more epochs than done: resumable, not cached
    assert runner.prepare_run(more) is None and more.run_dir.exists()


def test_prepare_run_leaves_a_finished_run_with_other_scoring_to_train(tmp_path):
    """A study asking for TTA does not reuse metrics scored without it (nor moves the run)."""
    spec = _spec(tmp_path)
    _finish(spec, miou=0.61)
    for change in ({"tta": True}, {"tune_threshold": True}, {"tta": True, "tta_transforms":
                   "dihedral"}):  # fmt: skip
        asked = _spec(tmp_path, **change)
        assert runner.prepare_run(asked) is None  # train scores it again
        assert (spec.run_dir / "metrics.json").is_file() and spec.run_dir.is_dir()
    flips = _spec(tmp_path, tta_transforms="dihedral")  # without TTA: no difference
    assert runner.prepare_run(flips).status == "cached"


def test_prepare_run_moves_aside_a_cosine_run_asked_for_more_epochs(tmp_path):
    spec = _spec(tmp_path, lr_schedule="cosine")
    _finish(spec)
    more = _spec(tmp_path, lr_schedule="cosine", epochs=5)
    assert runner.prepare_run(more) is None
    assert (spec.run_dir.parent / f"{spec.name}.stale-1" / "metrics.json").is_file()
    constant = _spec(tmp_path / "c")
    _finish(constant)
    assert runner.prepare_run(_spec(tmp_path / "c", epochs=5)) is None
    assert (constant.run_dir / "state.json").is_file()  # kept: train extends it


def test_tables_say_which_threshold_each_row_used():
    plain = fake("unet", "dice", miou=0.6, threshold=0.5)
    tuned = [
        fake("unetpp", "dice", seed=s, miou=0.7, threshold=t) for s, t in ((0, 0.41), (1, 0.47))
    ]
    for r in tuned:
        r.threshold_source = "tuned"
    results = [plain, *tuned]
    md, rows = tables.table3(results, [("unet", "dice"), ("unetpp", "dice")], seeds=2)
    assert "| Threshold |" in md
    assert [r["threshold"] for r in rows] == ["0.50", "0.41–0.47 tuned on val"]
    body = _table_rows(md)
    assert body[0].rstrip(" |").endswith("0.50") and "tuned on val" in body[1]
    selected = {"unet": "dice", "unetpp": "dice"}
    md1, rows1 = tables.table1(results, ["unet", "unetpp"], ["dice"], selected, "test", 2)
    assert "0.700 ± " in md1 and "† = scored at the run's validation-tuned threshold" in md1
    line = next(line for line in md1.splitlines() if line.startswith("| U-Net++ |"))
    assert "†" in line and "†" not in next(
        line for line in md1.splitlines() if line.startswith("| U-Net |")
    )
    md0, _ = tables.table1([plain], ["unet"], ["dice"], {"unet": "dice"}, "test", 1)
    assert "Every run scored at its configured threshold (0.50)." in md0


def test_cached_run_is_rescored_at_its_tuned_threshold(tmp_path, monkeypatch):
    """evaluate --tune-threshold after training: the study re-scores test at the tuned value."""
    import landslide_tf.evaluation.evaluate as evaluate

    spec = _spec(tmp_path)
    _finish(spec, miou=0.61)
    assert runner.prepare_run(spec).threshold_source == "config"
    (spec.run_dir / "threshold.json").write_text(json.dumps({"threshold": 0.3}))
    calls = []

    def fake_evaluate(run_dir, split="test", **kwargs):  # what evaluate_run writes
        calls.append((Path(run_dir), split, kwargs))
        (Path(run_dir) / "metrics.json").write_text(json.dumps({"miou": 0.66, "threshold": 0.3}))
        return {}

    monkeypatch.setattr(evaluate, "evaluate_run", fake_evaluate)
    cached = runner.prepare_run(spec)
    assert calls == [(spec.run_dir, "test", {})]
    assert cached.metrics == {"miou": 0.66, "threshold": 0.3}
    assert cached.threshold_source == "tuned"
    assert "at the tuned threshold 0.300" in runner._describe(cached)
    assert runner.prepare_run(spec).status == "cached" and len(calls) == 1  # not twice


def test_run_all_records_failures_and_goes_on(tmp_path, monkeypatch):
    import landslide_tf.experiments.run as train_mod

    trained = []

    def fake_train(config, verbose=0):
        trained.append(config.model + "-" + config.loss)
        if config.loss == "nope":
            raise ValueError("unknown loss 'nope'\nsecond line")
        spec = _spec(tmp_path, config.model, config.loss, config.seed)
        _finish(spec, miou=0.4)
        return {"miou": 0.4}

    monkeypatch.setattr(train_mod, "train", fake_train)
    specs = [_spec(tmp_path, "unet", "nope"), _spec(tmp_path, "unet", "bce"),
             _spec(tmp_path, "resunet", "bce")]  # fmt: skip
    _finish(specs[2], miou=0.7)  # finished before
    lines = []
    results = runner.run_all(specs, progress=lines.append)
    assert [r.status for r in results] == ["failed", "trained", "cached"]
    assert trained == ["unet-nope", "unet-bce"]
    assert results[0].error == "ValueError: unknown loss 'nope'"
    assert "Traceback" in (specs[0].run_dir / "error.txt").read_text()
    assert json.loads((specs[1].run_dir / "experiment.json").read_text())["status"] == "trained"
    done = [line for line in lines if line.startswith("[")]
    assert done[0].startswith("[1/3] resunet-bce-s42: done earlier") and "0.700" in done[0]
    assert "FAILED" in done[1] and done[2].startswith("[3/3] unet-bce-s42: ")
    # a failed run gives no estimate; after the last one nothing is left to estimate
    assert not any("left:" in line for line in lines)


def test_a_run_only_scored_again_is_rescored_with_its_training_wall_time(tmp_path, monkeypatch):
    """Other scoring options on a finished run: train fits 0 epochs and scores it again; the
    study says so and keeps the wall time of the training, not of the scoring."""
    import landslide_tf.experiments.run as train_mod

    spec = _spec(tmp_path)
    _finish(spec, miou=0.5)
    record = {"status": "trained", "wall_s": 11.0, "pid": 1, "config": spec.config}
    (spec.run_dir / "experiment.json").write_text(json.dumps(record))
    about = {"epochs_trained": 0, "resumed_from": 2}
    monkeypatch.setattr(train_mod, "train", lambda config, verbose=0: dict(about))
    result = runner.execute_run(spec, 0)
    assert result.status == "rescored" and result.ok and result.wall_s == 11.0
    saved = json.loads((spec.run_dir / "experiment.json").read_text())
    assert saved["status"] == "rescored" and saved["wall_s"] == 11.0
    assert "scored again" in runner._describe(result)
    ok = runner._result_from_record(spec, 0, 3.0, pid=saved["pid"])  # as a parallel job
    assert ok.status == "rescored" and ok.wall_s == 11.0
    about.update(epochs_trained=2, resumed_from=0)  # epochs trained here: its own wall time
    result = runner.execute_run(spec, 0)
    assert result.status == "trained" and result.wall_s < 11.0


def test_run_all_estimates_the_time_left_from_the_runs_trained(tmp_path, monkeypatch):
    import landslide_tf.experiments.run as train_mod

    def fake_train(config, verbose=0):
        _finish(_spec(tmp_path, config.model, config.loss, config.seed), miou=0.5)
        return {"miou": 0.5}

    monkeypatch.setattr(train_mod, "train", fake_train)
    specs = [_spec(tmp_path, "unet", loss) for loss in ("bce", "dice", "focal")]
    lines = []
    runner.run_all(specs, progress=lines.append)
    estimates = [line.strip() for line in lines if "left:" in line]
    assert len(estimates) == 2  # after the first and the second run, none after the last
    assert "2 run(s) to train" in estimates[0] and "trained so far" in estimates[0]
    assert "1 run(s) to train" in estimates[1] and "of the 2 trained" in estimates[1]


def test_killed_child_is_failed_not_the_earlier_runs_record(tmp_path):
    """A child killed before writing its record: the earlier run's experiment.json and
    metrics.json (kept for a rerun with more epochs) are not this run's result."""
    spec = _spec(tmp_path, epochs=8)
    _finish(spec, miou=0.42, epochs=5)
    record = {"status": "trained", "wall_s": 11.0, "pid": 1234, "config": spec.config}
    (spec.run_dir / "experiment.json").write_text(json.dumps(record))
    result = runner._result_from_record(spec, -9, 3.0, pid=5678)
    assert result.status == "failed" and result.metrics == {}
    assert "exited with code -9" in result.error
    assert json.loads((spec.run_dir / "experiment.json").read_text())["status"] == "failed"
    (spec.run_dir / "experiment.json").write_text(json.dumps({**record, "pid": 5678}))
    ok = runner._result_from_record(spec, 0, 3.0, pid=5678)  # the child's own record
    assert ok.status == "trained" and ok.metrics["miou"] == 0.42 and ok.wall_s == 11.0


def test_visible_gpus_from_environment(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert runner.visible_gpus() == ["0", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert runner.visible_gpus() == []


# ---------------------------------------------------------------- the real study, tiny


@pytest.fixture(scope="module")
def synth30(tmp_path_factory) -> Path:
    from landslide_tf.data import synthesize

    out = tmp_path_factory.mktemp("synth30") / "bijie"
    synthesize(out, n=30, seed=0)
    return out


def _log_statuses(out: Path) -> list[tuple[str, str]]:
    lines = (out / "runs.log.jsonl").read_text().splitlines()
    return [(e["run"], e["status"]) for e in map(json.loads, lines)]


@pytest.mark.slow
def test_paper_study_tiny_end_to_end_and_resume(synth30, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["paper", "--data", str(synth30), "--out", str(out), *TINY]
    assert cli.main(args) == 0
    for name in ("table1.md", "table1.csv", "table2.md", "table3.md", "table3.csv",
                 "fig4_loss_curves.png", "fig5_predictions.png", "fig6_gradcam.png",
                 "README.md", "runs.csv"):  # fmt: skip
        assert (out / name).is_file(), name
    rows = _table_rows((out / "table3.md").read_text())
    assert len(rows) == 6 and rows[1].startswith("| ResUNet |")
    readme = (out / "README.md").read_text()
    assert "TensorFlow" in readme and "train 19, val 5, test 6" in readme
    assert "**test** split" in readme and "fig6_gradcam.png`: ok" in readme
    first = _log_statuses(out)
    assert len(first) == 15 and {s for _, s in first} == {"trained"}
    assert sorted((out / "split").glob("*.txt")) and len(list((out / "runs").iterdir())) == 15

    # "interrupt": two runs lose their results, one of them all its files
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/metrics.json")}
    (out / "runs" / "unet-focal-s42" / "metrics.json").unlink()
    import shutil

    shutil.rmtree(out / "runs" / "resunet-dice-s42")
    assert cli.main(args) == 0
    second = _log_statuses(out)[15:]
    retrained = sorted(r for r, s in second if s == "trained")
    assert retrained == ["resunet-dice-s42"]  # all its files gone: trained again
    # its checkpoints kept, its metrics lost: scored again, no epoch trained
    assert [r for r, s in second if s == "rescored"] == ["unet-focal-s42"]
    assert sum(s == "cached" for _, s in second) == 13
    for run, stamp in stamps.items():
        if run not in ("resunet-dice-s42", "unet-focal-s42"):
            assert (out / "runs" / run / "metrics.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_failing_run_is_recorded_and_others_finish(synth30, tmp_path, capsys, monkeypatch):
    """A run that fails while training (settings are checked before any run starts, so the
    failure is injected: the dice run's training raises) is recorded; the others finish."""
    from landslide_tf.experiments import run as run_module

    real_train = run_module.train

    def train(config, **kwargs):
        if config.loss == "dice":
            raise RuntimeError("injected failure")
        return real_train(config, **kwargs)

    monkeypatch.setattr(run_module, "train", train)
    study = tmp_path / "broken.json"
    study.write_text(json.dumps({"name": "broken", "train": {"batch_size": 2},
                                 "stage1": {"bases": ["unet"], "losses": ["bce", "dice"]},
                                 "stage3": {"base": "unet", "models": []}}))  # fmt: skip
    out = tmp_path / "o"
    code = cli.main([str(study), "--data", str(synth30), "--out", str(out), *TINY])
    assert code == 1
    assert "unet-dice-s42" in capsys.readouterr().err
    assert "injected failure" in (out / "runs" / "unet-dice-s42" / "error.txt").read_text()
    assert (out / "runs" / "unet-bce-s42" / "metrics.json").is_file()
    table1 = (out / "table1.csv").read_text()
    assert "unet,dice,0,1" in table1
    assert "failed" in (out / "table1.md").read_text()


def test_a_study_with_an_unknown_loss_is_refused_before_any_run(synth30, tmp_path, capsys):
    study = tmp_path / "broken.json"
    study.write_text(json.dumps({"name": "broken", "train": {"batch_size": 2},
                                 "stage1": {"bases": ["unet"], "losses": ["bce", "nope"]},
                                 "stage3": {"base": "unet", "models": []}}))  # fmt: skip
    out = tmp_path / "o"
    assert cli.main([str(study), "--data", str(synth30), "--out", str(out), *TINY]) == 2
    assert "unknown loss 'nope'" in capsys.readouterr().err
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())


@pytest.mark.slow
def test_jobs_train_in_separate_processes(synth30, tmp_path):
    import os

    study = tmp_path / "two.json"
    study.write_text(json.dumps({"name": "two", "stage1": {"bases": ["unet"],
                                                           "losses": ["bce", "dice"]}}))  # fmt: skip
    out = tmp_path / "o"
    assert cli.main([str(study), "--data", str(synth30), "--out", str(out), "--jobs", "2",
                     *TINY]) == 0  # fmt: skip
    pids = {json.loads((out / "runs" / f"unet-{loss}-s42" / "experiment.json").read_text())["pid"]
            for loss in ("bce", "dice")}  # fmt: skip
    assert len(pids) == 2 and os.getpid() not in pids
    assert len(_table_rows((out / "table3.md").read_text())) == 1


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the processes")
def test_sigterm_stops_the_study_and_the_training_processes_it_started(synth30, tmp_path):
    import os
    import re
    import signal
    import subprocess
    import sys

    from processes import alive

    study = tmp_path / "two.json"
    study.write_text(json.dumps({"name": "two", "stage1": {"bases": ["unet"],
                                                           "losses": ["bce", "dice"]}}))  # fmt: skip
    tiny = [*TINY[:1], "200", *TINY[2:]]  # long enough to be running when the signal comes
    cmd = [sys.executable, "-m", "landslide_tf.experiments", str(study), "--data", str(synth30),
           "--out", str(tmp_path / "o"), "--jobs", "2", *tiny]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    workers: list[int] = []
    try:
        for line in proc.stdout:  # the progress names each training process
            workers += [int(pid) for pid in re.findall(r"training in process (\d+)", line)]
            if len(workers) == 2:
                break
        assert len(workers) == 2 and all(map(alive, workers))
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 143, out
        assert "interrupted: rerun the same command to resume (terminated by SIGTERM)" in out
        assert not any(map(alive, workers))  # stopped and reaped, not left running
    finally:
        proc.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_no_data_uses_the_synthetic_default_and_says_so(synth30, tmp_path, monkeypatch, capsys):
    import landslide_tf.experiments.run as train_mod
    from landslide_tf.experiments import report

    monkeypatch.setenv("LANDSLIDE_TF_DATA", str(synth30))
    used = []

    def fake_train(config, verbose=0):
        used.append(config.data)
        spec = RunSpec(config.model, config.loss, config.seed, 1, config.to_dict())
        _finish(spec, miou=0.4)
        return {"miou": 0.4}

    monkeypatch.setattr(train_mod, "train", fake_train)
    monkeypatch.setattr(report, "write_figures", lambda outcome, n=4: None)
    study = tmp_path / "one.json"
    study.write_text(json.dumps({"name": "one", "train": {"batch_size": 2},
                                 "stage1": {"bases": ["unet"], "losses": ["bce"]},
                                 "stage3": {"base": "unet", "models": []}}))  # fmt: skip
    out = tmp_path / "o"
    assert cli.main([str(study), "--out", str(out)]) == 0
    assert used == [str(synth30.resolve())]
    assert f"no --data: using the synthetic dataset {synth30}" in capsys.readouterr().out
    for name in ("table1.md", "table3.md", "README.md"):
        text = (out / name).read_text()
        assert report.SYNTHETIC_NOTE in text, name
        assert text.index(report.SYNTHETIC_NOTE) < text.index("paper"), name


def _one_study(tmp_path, name="one", bases=("unet",), **extra):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "train": {"batch_size": 2},
                                "stage1": {"bases": list(bases), "losses": ["bce"]},
                                "stage3": {"base": "unet", "models": []}, **extra}))  # fmt: skip
    return path


def test_a_study_refuses_another_split_in_its_out_and_keeps_study_json(
    synth30, tmp_path, monkeypatch, capsys
):
    """OUT/split/plan.json names the split options: a study asking for others is refused
    (not silently given the old split), as is a new split beside finished runs; a refused
    call leaves study.json (the description of the results in OUT) as it was."""
    import landslide_tf.experiments.run as train_mod
    from landslide_tf.experiments import report

    def fake_train(config, verbose=0):
        _finish(RunSpec(config.model, config.loss, config.seed, 1, config.to_dict()), miou=0.4)
        return {"miou": 0.4}

    monkeypatch.setattr(train_mod, "train", fake_train)
    monkeypatch.setattr(report, "write_figures", lambda outcome, n=4: None)
    out = tmp_path / "o"
    argv = ["--data", str(synth30), "--out", str(out)]
    assert cli.main([str(_one_study(tmp_path)), *argv]) == 0
    plan = json.loads((out / "split" / "plan.json").read_text())
    assert plan["seed"] == 42 and plan["fractions"] == [0.64, 0.16, 0.2]
    described = (out / "study.json").read_text()
    lists = {p.name: p.read_text() for p in (out / "split").glob("*.txt")}
    other = _one_study(tmp_path, "other", split={"seed": 7})
    capsys.readouterr()
    assert cli.main([str(other), *argv]) == 2
    assert "was made with other split options: seed 42 (asked: 7)" in capsys.readouterr().err
    assert (out / "study.json").read_text() == described
    assert {p.name: p.read_text() for p in (out / "split").glob("*.txt")} == lists
    assert cli.main([str(_one_study(tmp_path)), *argv]) == 0  # the same options: reused
    import shutil

    shutil.rmtree(out / "split")
    assert cli.main([str(_one_study(tmp_path)), *argv]) == 2
    assert "holds runs (unet-bce-s42, ...)" in capsys.readouterr().err
    assert not (out / "split").exists()


def test_runs_log_keeps_the_runs_an_interrupted_stage_finished(synth30, tmp_path, monkeypatch):
    import landslide_tf.experiments.run as train_mod
    from landslide_tf.experiments.core import run_study
    from landslide_tf.experiments.study import load_study as load

    def fake_train(config, verbose=0):
        if config.model == "unet":
            raise KeyboardInterrupt  # Ctrl-C during the stage's second run
        _finish(RunSpec(config.model, config.loss, config.seed, 1, config.to_dict()), miou=0.4)
        return {"miou": 0.4}

    monkeypatch.setattr(train_mod, "train", fake_train)
    study = load(str(_one_study(tmp_path, bases=("resunet", "unet"))))
    with pytest.raises(KeyboardInterrupt):
        run_study(study, synth30, tmp_path / "o")
    assert _log_statuses(tmp_path / "o") == [("resunet-bce-s42", "trained")]


# --- issue 14: --jobs placement on faked GPU lists


def test_jobs_placement_one_per_gpu_shared_gpu_and_cpu():
    from landslide_tf.experiments.placement import GROWTH_ENV, plan_slots

    own = plan_slots(2, ["0", "1"])
    assert [(s.gpu, s.shared) for s in own] == [("0", False), ("1", False)]
    shared = plan_slots(3, ["0"])
    assert [(s.gpu, s.shared) for s in shared] == [("0", True)] * 3
    mixed = plan_slots(3, ["0", "1"])  # GPU 0 takes two runs, GPU 1 one
    assert [(s.gpu, s.shared) for s in mixed] == [("0", True), ("1", False), ("0", True)]
    cpu = plan_slots(2, [])
    assert [(s.gpu, s.shared) for s in cpu] == [(None, False), (None, False)]

    env: dict[str, str] = {}
    shared[1].apply(env)
    assert env == {"CUDA_VISIBLE_DEVICES": "0", GROWTH_ENV: "true"}
    env = {}
    own[1].apply(env)
    assert env == {"CUDA_VISIBLE_DEVICES": "1"}
    env = {}
    cpu[0].apply(env)
    assert env == {}
    assert "memory growth" in shared[0].describe() and cpu[1].describe() == "slot 1"


@pytest.mark.parametrize(
    "setting, named",
    [("depth=abc", "depth"), ("dropout=1.5", "dropout"), ("lr=-1", "learning rate")],
)
def test_bad_set_overrides_are_refused_before_any_run(setting, named, tmp_path, capsys):
    """Issue 23 case 13: --set values are validated before the study starts."""
    out = tmp_path / "out"
    code = cli.main(["quick", "--out", str(out), "--set", setting])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and named in err, err
    assert not out.exists()
