"""Tests for landslide_tf.training.train and landslide_tf.training.callbacks: run dir, resume, NaN, bad arguments."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from landslide_tf.cli.train import main
from landslide_tf.cli.train_args import build_parser, config_from_args
from landslide_tf.errors import UserError
from landslide_tf.experiments.run import train
from landslide_tf.training import callbacks
from landslide_tf.training import runstate as cb
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.fit import TrainingDiverged
from landslide_tf.training.recipe import PRESETS

METRIC_KEYS = ("miou", "iou_background", "iou_landslide", "auc", "precision", "recall", "f1",
               "accuracy")  # fmt: skip
PAPER_MODELS = ("unet", "resunet", "unetpp", "unetpp_spatial", "unetpp_ctx", "unetpp_spatial_ctx")
ROOT = Path(__file__).resolve().parents[1]


def tiny(synth_dir: Path, run_dir: Path, **overrides) -> TrainConfig:
    """A run small enough for the default suite: 32x32, 4 base filters, depth 2."""
    values = dict(
        model="unet",
        data=str(synth_dir),
        run_dir=str(run_dir),
        epochs=1,
        image_size=32,
        base_filters=4,
        depth=2,
        batch_size=4,
        lr=1e-3,
    )
    values.update(overrides)
    return TrainConfig(**values)


def tiny_argv(synth_dir: Path, run_dir: Path, **flags: str) -> list[str]:
    """Command-line flags of a tiny run; ``flags`` (``{"--lr": "1"}``) override them."""
    options = {
        "--data": str(synth_dir), "--run-dir": str(run_dir), "--image-size": "32",
        "--base-filters": "4", "--depth": "2", "--batch-size": "4", "--lr": "1e-3",
        "--verbose": "0",
    }  # fmt: skip
    options.update(flags)
    return [token for item in options.items() for token in item]


def run_main(argv: list[str]) -> int:
    """``main(argv)``, turning argparse's SystemExit into its exit code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def tiny_run(synth_dir, tmp_path_factory):
    """One trained 1-epoch U-Net run shared by the tests of this module."""
    keras.utils.set_random_seed(0)
    run_dir = tmp_path_factory.mktemp("runs") / "unet"
    config = tiny(synth_dir, run_dir)
    result = train(config, verbose=0)
    return config, run_dir, result


def assert_metrics_in_unit_interval(metrics: dict) -> None:
    for key in METRIC_KEYS:
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    assert math.isclose(
        metrics["miou"], (metrics["iou_background"] + metrics["iou_landslide"]) / 2, rel_tol=1e-6
    )


# --- the run directory -------------------------------------------------------------------


def test_train_writes_the_run_directory(tiny_run):
    _, run_dir, result = tiny_run
    for name in ("config.json", "train.txt", "val.txt", "test.txt", "best.keras", "last.keras",
                 "state.json", "history.csv", "loss_curve.png", "predictions.png",
                 "metrics.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "logs" / "train").iterdir()), "no TensorBoard events"
    assert [row["epoch"] for row in cb.read_history(run_dir / "history.csv")] == [1]
    assert cb.read_state(run_dir)["epochs_done"] == 1
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert_metrics_in_unit_interval(saved)
    assert saved["n_tiles"] == len((run_dir / "test.txt").read_text().split())
    assert result["miou"] == pytest.approx(saved["miou"])
    assert result["epochs_trained"] == 1 and result["resumed_from"] == 0


def test_config_json_is_resolved(tiny_run):
    _, run_dir, _ = tiny_run
    raw = json.loads((run_dir / "config.json").read_text())
    assert raw["loss"] == "bce"  # the paper's best loss for U-Net, filled in
    assert raw["run_dir"] == str(run_dir.resolve())
    assert len(raw["dem_stats"]) == 2 and raw["dem_stats"][1] > 0
    assert 0 < raw["landslide_fraction"] < 1
    assert TrainConfig.load(run_dir / "config.json").model == "unet"


def test_finished_run_is_not_retrained(tiny_run, synth_dir):
    config, run_dir, first = tiny_run
    mtime = (run_dir / "best.keras").stat().st_mtime_ns
    again = train(config, verbose=0)
    assert again["epochs_trained"] == 0 and again["resumed_from"] == 1
    assert again["miou"] == pytest.approx(first["miou"])
    assert (run_dir / "best.keras").stat().st_mtime_ns == mtime


def test_different_config_in_existing_run_dir_is_an_error(tiny_run, synth_dir):
    _, run_dir, _ = tiny_run
    with pytest.raises(UserError, match=r"different config \(lr: 0.001 -> 0.01\)"):
        train(tiny(synth_dir, run_dir, lr=1e-2), verbose=0)


def test_resume_continues_and_keeps_each_epoch_once(tiny_run, synth_dir, tmp_path):
    # Simulate a kill after history.csv got epoch 2 but before state.json committed it.
    _, src, _ = tiny_run
    run_dir = tmp_path / "copy"
    shutil.copytree(src, run_dir)
    rows = cb.read_history(run_dir / "history.csv")
    cb.write_history(run_dir / "history.csv", [*rows, {**rows[0], "epoch": 2, "loss": 99.0}])
    result = train(tiny(synth_dir, run_dir, epochs=3), verbose=0)
    assert result["resumed_from"] == 1 and result["epochs_trained"] == 2
    history = cb.read_history(run_dir / "history.csv")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[0] == pytest.approx(rows[0])  # epoch 1 was not retrained
    assert history[1]["loss"] != 99.0
    assert cb.read_state(run_dir)["epochs_done"] == 3


@pytest.mark.slow
def test_force_retrains_from_scratch(tiny_run, synth_dir, tmp_path):
    _, src, _ = tiny_run
    run_dir = tmp_path / "forced"
    shutil.copytree(src, run_dir)
    result = train(tiny(synth_dir, run_dir, lr=2e-3), force=True, verbose=0)
    assert result["epochs_trained"] == 1 and result["resumed_from"] == 0
    assert json.loads((run_dir / "config.json").read_text())["lr"] == 2e-3


def test_force_on_a_folder_that_holds_no_run_deletes_nothing(synth_dir, tmp_path, capsys):
    """--force clears a run; the user's own files in a folder that holds none survive."""
    run_dir = tmp_path / "mine"
    (run_dir / "logs").mkdir(parents=True)
    files = {"logs/notes.txt": "mine", "metrics.json": "{}", "metrics_val.json": "{}",
             "train.txt": "a\n", "val.txt": "b\n", "test.txt": "c\n"}  # fmt: skip
    for name, text in files.items():
        (run_dir / name).write_text(text)
    rc = run_main([*tiny_argv(synth_dir, run_dir, **{"--batch-size": "100000"}), "--force"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "holds none" in err, err
    assert {n: (run_dir / n).read_text() for n in files} == files
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["logs", "metrics.json", "metrics_val.json", "train.txt", "val.txt", "test.txt"]
    )  # nothing added either


def test_force_with_a_bad_option_leaves_the_old_run_whole(tiny_run, synth_dir, tmp_path):
    """The new run is checked before --force deletes the old one."""
    _, src, _ = tiny_run
    run_dir = tmp_path / "kept"
    shutil.copytree(src, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(UserError, match="is larger than the training split"):
        train(tiny(synth_dir, run_dir, batch_size=100000), force=True, verbose=0)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_finished_run_asked_with_tta_is_scored_again_not_retrained(tiny_run, synth_dir, tmp_path):
    """Other scoring options on a finished run: metrics.json and config.json follow them."""
    config, src, first = tiny_run
    run_dir = tmp_path / "tta"
    shutil.copytree(src, run_dir)
    mtime = (run_dir / "best.keras").stat().st_mtime_ns
    again = train(tiny(synth_dir, run_dir, tta=True, tta_transforms="dihedral"), verbose=0)
    assert again["epochs_trained"] == 0 and again["resumed_from"] == 1
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["tta"] is True and saved["tta_transforms"] == "dihedral"
    assert not json.loads((src / "metrics.json").read_text())["tta"]  # the source: without
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["tta"] is True and stored["tta_transforms"] == "dihedral"
    assert (run_dir / "best.keras").stat().st_mtime_ns == mtime  # nothing was fitted
    assert cb.read_state(run_dir)["epochs_done"] == 1
    same = train(tiny(synth_dir, run_dir, tta=True, tta_transforms="dihedral"), verbose=0)
    assert same["miou"] == pytest.approx(saved["miou"])  # now reported as it is


def test_a_rescore_stopped_before_scoring_is_scored_again_not_reported_stale(
    tiny_run, synth_dir, tmp_path
):
    """config.json names the new scoring options only once the old metrics are gone: a
    re-score that stops before scoring (here: fit_run alone) is scored on the next call."""
    from landslide_tf.training.train import fit_run

    _, src, _ = tiny_run
    run_dir = tmp_path / "stopped"
    shutil.copytree(src, run_dir)
    fitted = fit_run(tiny(synth_dir, run_dir, tta=True), verbose=0)  # no finish_run after it
    assert fitted.metrics is None and fitted.epochs_trained == 0
    assert json.loads((run_dir / "config.json").read_text())["tta"] is True
    assert not (run_dir / "metrics.json").exists()  # not the non-TTA scores under TTA's name
    again = train(tiny(synth_dir, run_dir, tta=True), verbose=0)
    assert again["epochs_trained"] == 0
    assert json.loads((run_dir / "metrics.json").read_text())["tta"] is True


def test_a_cosine_run_is_not_extended_a_constant_one_is(tiny_run, synth_dir, tmp_path):
    """More --epochs would rebuild a cosine schedule for the new total: the lr would jump."""
    _, src, _ = tiny_run
    run_dir = tmp_path / "cosine"
    shutil.copytree(src, run_dir)
    raw = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**raw, "lr_schedule": "cosine"}))
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(
        UserError, match=r"cosine learning-rate schedule laid out over 1 ep.*--force"
    ):
        train(tiny(synth_dir, run_dir, lr_schedule="cosine", epochs=2), verbose=0)
    assert sorted(p.name for p in run_dir.iterdir()) == before
    assert cb.read_state(run_dir)["epochs_done"] == 1
    constant = tmp_path / "constant"
    shutil.copytree(src, constant)
    result = train(tiny(synth_dir, constant, epochs=2), verbose=0)
    assert result["resumed_from"] == 1 and result["epochs_trained"] == 1


def test_a_continued_run_stopped_before_scoring_is_scored_again(
    tiny_run, synth_dir, tmp_path, monkeypatch
):
    """A finished 1-epoch run continued to 2 epochs and stopped after training but before its
    new metrics.json: the next call scores the 2-epoch run, never reports the 1-epoch figures."""
    from landslide_tf.experiments import run as run_module

    _, src, _ = tiny_run
    run_dir = tmp_path / "continued"
    shutil.copytree(src, run_dir)
    assert (run_dir / "metrics.json").is_file()

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "finish_run", stopped)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(synth_dir, run_dir, epochs=2), verbose=0)
    monkeypatch.undo()
    assert cb.read_state(run_dir)["epochs_done"] == 2
    assert not (run_dir / "metrics.json").exists()  # the 1-epoch figures went with config.json
    result = train(tiny(synth_dir, run_dir, epochs=2), verbose=0)
    assert result["epochs_trained"] == 0 and result["resumed_from"] == 2
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again == {k: v for k, v in result.items() if k in again}


def test_torn_last_history_row_is_rewritten_from_state_json(tiny_run, synth_dir, tmp_path):
    """Issue 23 case 10: a resume validates the committed row against state.json."""
    _, src, _ = tiny_run
    run_dir = tmp_path / "torn"
    shutil.copytree(src, run_dir)
    committed = cb.read_state(run_dir)["last_row"]
    text = (run_dir / "history.csv").read_text().rstrip("\n")
    (run_dir / "history.csv").write_text(text[: len(text) - 3])  # the row torn mid-number
    train(tiny(synth_dir, run_dir, epochs=2), verbose=0)
    rows = cb.read_history(run_dir / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[0] == pytest.approx({k: float(v) for k, v in committed.items()}, rel=1e-5)


def test_a_second_process_on_a_run_dir_in_use_exits_2_naming_the_owner(synth_dir, tmp_path, capsys):
    """Issue 23 case 3: a run dir is locked while a process trains in it."""
    run_dir = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom landslide_tf.training.runstate import RunLock\n"
         f"lock = RunLock({str(run_dir)!r}).acquire()\nprint('held', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in run_dir.iterdir())
        rc = run_main(tiny_argv(synth_dir, run_dir))
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1
        assert "is in use" in err and f"pid {holder.pid}" in err, err
        assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written
    finally:
        holder.communicate("", timeout=30)
    assert run_main(tiny_argv(synth_dir, run_dir)) == 0  # freed when its owner ends


def test_a_failure_before_the_first_epoch_leaves_no_run_dir(
    synth_dir, tmp_path, monkeypatch, capsys
):
    """Issue 22 item 4: an offline encoder fetch (simulated) leaves nothing behind, so the
    retry runs without --force."""
    import landslide_tf.models

    def offline(*args, **kwargs):
        raise UserError("cannot fetch ImageNet weights for resnet18 (offline?)")

    run_dir = tmp_path / "fresh"
    monkeypatch.setattr(landslide_tf.models, "build_model", offline)
    assert run_main(tiny_argv(synth_dir, run_dir)) == 2
    assert "offline" in capsys.readouterr().err
    assert not run_dir.exists()
    monkeypatch.undo()
    assert run_main(tiny_argv(synth_dir, run_dir)) == 0
    assert (run_dir / "best.keras").is_file()


# --- options --------------------------------------------------------------------------


def test_paper_defaults_and_quick_preset():
    paper = config_from_args(build_parser().parse_args(["--model", "resunet"])).resolved()
    assert (paper.lr, paper.batch_size, paper.epochs, paper.image_size, paper.dropout) == (
        1e-5, 2, 50, 128, 0.5,
    )  # fmt: skip
    assert paper.loss == "wce" and paper.modalities == "rgb+dem"
    for model, loss in (("unet", "bce"), ("unetpp", "dice"), ("unetpp_spatial_ctx", "dice")):
        assert TrainConfig(model=model).resolved().loss == loss
    quick = config_from_args(build_parser().parse_args(["--preset", "quick", "--epochs", "3"]))
    assert quick.epochs == 3  # an explicit flag beats the preset
    assert quick.image_size == PRESETS["quick"]["image_size"] and quick.lr == 1e-3
    assert quick.derived == ["slope"] and quick.dropout == 0.1  # look-alikes lie on flat ground
    plain = config_from_args(build_parser().parse_args(["--preset", "quick", "--derived"]))
    assert plain.derived == [] and plain.channels == 4


def test_loss_kwargs_as_key_values_or_json():
    parse = build_parser().parse_args
    a = config_from_args(parse(["--loss", "focal", "--loss-kwargs", "alpha=0.25", "gamma=2"]))
    assert a.loss_kwargs == {"alpha": 0.25, "gamma": 2}
    b = config_from_args(parse(["--loss", "wce", "--loss-kwargs", '{"class_weights": [1, 9]}']))
    assert b.loss_kwargs == {"class_weights": [1, 9]}
    c = config_from_args(parse(["--loss", "wce", "--loss-kwargs", "class_weights=[1,9]"]))
    assert c.loss_kwargs == {"class_weights": [1, 9]}


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"--model": "nope"}, "unknown model 'nope'; expected one of unet"),
        ({"--loss": "nope"}, "unknown loss 'nope'"),
        ({"--batch-size": "100"}, "batch size 100 is larger than the training split (15 tiles"),
        ({"--epochs": "many"}, "invalid int value: 'many'"),
        ({"--image-size": "30"}, "image size 30 is not divisible by 4"),
        ({"--loss": "focal", "--loss-kwargs": "beta=1"}, "unexpected argument(s) beta"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(flags, message, synth_dir, tmp_path, capsys):
    run_dir = tmp_path / "bad"
    rc = run_main(["--model", "unet", *tiny_argv(synth_dir, run_dir, **flags)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err, err
    assert not run_dir.exists()  # no half-made run dir left behind


def test_a_refused_run_leaves_no_folder_it_made_and_keeps_what_was_there(
    synth_dir, tmp_path, monkeypatch
):
    """The default ``runs/<name>`` and a nested ``--run-dir`` go whole when training is
    refused before it starts: no empty ``runs/`` in the user's folder; a folder that was
    there before, or that holds anything else, stays."""
    monkeypatch.chdir(tmp_path)
    argv = [arg for arg in tiny_argv(synth_dir, tmp_path) if arg != str(tmp_path)]
    argv.remove("--run-dir")
    assert run_main(["--model", "unet", *argv, "--batch-size", "100"]) == 2
    assert not (tmp_path / "runs").exists()
    nested = tmp_path / "a" / "b" / "run"
    assert (
        run_main(["--model", "unet", *tiny_argv(synth_dir, nested, **{"--batch-size": "100"})]) == 2
    )
    assert not (tmp_path / "a").exists()
    (tmp_path / "runs" / "other").mkdir(parents=True)
    assert run_main(["--model", "unet", *argv, "--batch-size", "100"]) == 2
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["other"]


@pytest.mark.parametrize("negatives", ["bogus", "-1", "nan"])
def test_unknown_negatives_are_refused_with_the_valid_values(negatives):
    from landslide_tf.errors import UserError
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.rundir import validated

    with pytest.raises(UserError, match=f"unknown --negatives '{negatives}'; expected 'off', 'on'"):
        validated(TrainConfig(negatives=negatives))
    for good in ("off", "on", "0.5"):
        assert validated(TrainConfig(negatives=good)).negatives == good


def test_missing_data_dir_exits_2(tmp_path, capsys):
    rc = main(["--model", "unet", "--data", str(tmp_path / "absent"), "--run-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: dataset") and len(err.splitlines()) == 1


# --- NaN --------------------------------------------------------------------------------


def test_nan_loss_stops_with_a_clear_message(synth_dir, tmp_path, monkeypatch, capsys):
    from landslide_tf.data import pipeline as ldata

    real = ldata.make_dataset

    def poisoned(samples, **kwargs):
        ds = real(samples, **kwargs)
        if kwargs.get("shuffle"):  # the training set only
            return ds.map(lambda x, y: (x * float("nan"), y))
        return ds

    monkeypatch.setattr(ldata, "make_dataset", poisoned)
    run_dir = tmp_path / "nan"
    rc = run_main(["--model", "unet", *tiny_argv(synth_dir, run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: the training loss became NaN at epoch 1, batch 1"), err
    assert "lower --lr" in err[-1]
    assert not (run_dir / "last.keras").exists() and not (run_dir / "state.json").exists()
    assert issubclass(TrainingDiverged, UserError)


def test_nan_guard_and_checkpoint_callbacks(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(
        keras.optimizers.Adam(1e-3), "mse", metrics=[keras.metrics.MeanSquaredError("miou")]
    )
    x = np.ones((8, 2), np.float32)
    guard = callbacks.NaNGuard()
    ckpt = callbacks.ResumeCheckpoint(tmp_path, nan_guard=guard)
    model.fit(x, x[:, :1], validation_data=(x, x[:, :1]), epochs=2, verbose=0,
              callbacks=[guard, ckpt])  # fmt: skip
    assert guard.nan_at is None and cb.read_state(tmp_path)["epochs_done"] == 2
    bad = x.copy()
    bad[0, 0] = np.nan
    model.fit(bad, x[:, :1], validation_data=(x, x[:, :1]), epochs=4, initial_epoch=2,
              verbose=0, callbacks=[guard, ckpt])  # fmt: skip
    assert guard.nan_at == (3, 1)
    assert cb.read_state(tmp_path)["epochs_done"] == 2  # the NaN epoch was not committed
    assert [r["epoch"] for r in cb.read_history(tmp_path / "history.csv")] == [1, 2]


# --- slow: every paper model, learning, kill -9 -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model", PAPER_MODELS)
def test_each_paper_model_trains_one_epoch_and_evaluates(model, synth_dir, tmp_path, capsys):
    from landslide_tf.cli.evaluate import main as evaluate_main
    from landslide_tf.losses import wce_weights

    run_dir = tmp_path / model
    argv = ["--model", model, "--epochs", "1", "--base-filters", "8", "--data", str(synth_dir),
            "--image-size", "64", "--depth", "3", "--batch-size", "4", "--lr", "1e-3",
            "--run-dir", str(run_dir), "--verbose", "0"]  # fmt: skip
    assert main(argv) == 0
    assert "mean of background and landslide IoU" in capsys.readouterr().out
    assert evaluate_main([str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert_metrics_in_unit_interval(metrics)
    raw = json.loads((run_dir / "config.json").read_text())
    if model == "resunet":  # WCE weights derived from the training split
        assert raw["loss"] == "wce"
        expected = wce_weights(raw["landslide_fraction"])
        assert raw["loss_kwargs"]["class_weights"] == pytest.approx(list(expected))


def test_a_few_epochs_beat_the_all_background_prediction(synth_dir, tmp_path):
    result = train(
        TrainConfig(model="unet", data=str(synth_dir), run_dir=str(tmp_path / "learn"),
                    epochs=10, image_size=64, base_filters=8, depth=3, batch_size=4, lr=1e-3),
        verbose=0,
    )  # fmt: skip
    # Predicting background everywhere gives landslide F1 = 0 and IoU = 0.
    assert result["f1"] > 0.3, result
    assert result["iou_landslide"] > 0.15, result


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def test_kill_9_then_rerun_resumes_without_gaps_or_duplicates(synth_dir, tmp_path):
    run_dir = tmp_path / "killed"
    epochs, kill_after = 6, 2
    cmd = [sys.executable, "-m", "landslide_tf.train", "--model", "unet", "--epochs",
           str(epochs), *tiny_argv(synth_dir, run_dir)]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            state = cb.read_state(run_dir) or {}  # the commit point, not history.csv
            if state.get("epochs_done", 0) >= kill_after:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done_at_kill = cb.read_state(run_dir)["epochs_done"]
    assert kill_after <= done_at_kill < epochs
    before = cb.read_history(run_dir / "history.csv")[:done_at_kill]

    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming {run_dir.resolve()} after epoch {done_at_kill}" in rerun.stderr
    history = cb.read_history(run_dir / "history.csv")
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1))
    for kept, old in zip(history[:done_at_kill], before, strict=True):
        assert kept == pytest.approx(old)  # completed epochs kept as they were
    assert_metrics_in_unit_interval(json.loads((run_dir / "metrics.json").read_text()))


def test_trains_and_evaluates_on_the_real_bijie_sample_rgb_only(bijie_sample, tmp_path):
    """The 20 real tiles (RGB + mask, no DEM): RGB-only training end to end, real sizes."""
    metrics = train(tiny(bijie_sample, tmp_path / "real", modalities="rgb", batch_size=2, epochs=2))
    assert_metrics_in_unit_interval(metrics)
    config = json.loads((tmp_path / "real" / "config.json").read_text())
    assert config["modalities"] == "rgb" and config["channels"] == 3
    splits = {
        s: (tmp_path / "real" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")
    }
    assert sorted(sum(splits.values(), [])) == [f"df{i:03d}" for i in range(2, 22)]
    assert metrics["n_tiles"] == len(splits["test"])


def test_quick_preset_drops_its_slope_channel_for_rgb_only_data():
    from landslide_tf.cli.train_args import build_parser, config_from_args

    rgb = config_from_args(build_parser().parse_args(["--preset", "quick", "--modalities", "rgb"]))
    assert rgb.derived == [] and rgb.channels == 3
    dem = config_from_args(build_parser().parse_args(["--preset", "quick"]))
    assert dem.derived == ["slope"] and dem.channels == 5


def test_a_failed_selection_write_keeps_the_old_selection_txt(tmp_path, monkeypatch):
    """selection.txt is written atomically: a failing write leaves the old list whole."""
    import errno
    from types import SimpleNamespace

    from landslide_tf.training.selection import SELECTION_FILE, record_selection

    (tmp_path / SELECTION_FILE).write_text("old\n")
    config = SimpleNamespace(select_from_train=0.1, select_seed=0)
    splits = {name: [SimpleNamespace(stem=f"{name}{i}") for i in range(2)]
              for name in ("train", "val", "test")}  # fmt: skip

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        record_selection(config, tmp_path, splits)
    monkeypatch.undo()
    assert (tmp_path / SELECTION_FILE).read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [SELECTION_FILE]  # no temporary left
    record_selection(config, tmp_path, splits)
    assert (tmp_path / SELECTION_FILE).read_text() == "val0\nval1\n"
