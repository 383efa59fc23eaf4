"""benchmarks/real_quality.py without training: skip, recipes, split limits, resume, table."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "real_quality.py"


@pytest.fixture(scope="module")
def rq():
    spec = importlib.util.spec_from_file_location("real_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_quality"] = module
    spec.loader.exec_module(module)
    return module


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("".join(f"t{i}\n" for i in range(10)))
    (data / "val.txt").write_text("".join(f"v{i}\n" for i in range(6)))
    return data


def test_skips_cleanly_without_the_data(rq, tmp_path, capsys):
    assert rq.main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("skipped:")
    assert not (tmp_path / "o").exists()


def test_recipe_epochs_are_what_its_flags_train(rq):
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.recipe import PRESETS

    for name, (flags, epochs, _) in rq.RECIPES.items():
        preset = flags[flags.index("--preset") + 1]
        if "--epochs" in flags:  # a recipe that overrides its preset's length says so
            assert epochs == int(flags[flags.index("--epochs") + 1]), name
        else:
            assert epochs == PRESETS[preset].get("epochs", TrainConfig().epochs), name
    assert any("--epochs" in flags for flags, _, _ in rq.RECIPES.values())


def test_honest_splits_carve_the_selection_from_train_into_the_output_folder(rq, tmp_path):
    data = _data(tmp_path)
    before = {p.name: p.read_text() for p in data.iterdir()}
    folder, lists = rq.honest_splits(data, tmp_path / "out", 0.2, 0)
    assert folder.parent == tmp_path / "out"
    train, select = (
        (folder / "train.txt").read_text().split(),
        (folder / "val.txt").read_text().split(),
    )
    assert len(select) == 2 and not set(train) & set(select)
    assert sorted(train + select) == sorted(f"t{i}" for i in range(10))
    assert (folder / "test.txt").read_text().split() == [f"v{i}" for i in range(6)]  # untouched
    assert lists == {"train": train, "select": select, "val": [f"v{i}" for i in range(6)]}
    assert rq.honest_splits(data, tmp_path / "again", 0.2, 0)[1] == lists  # seeded
    assert rq.honest_splits(data, tmp_path / "other", 0.2, 1)[1]["select"] != select
    limited = rq.honest_splits(data, tmp_path / "out", 0.5, 0, limit=4)[1]
    assert sorted(limited["train"] + limited["select"]) == ["t0", "t1", "t2", "t3"]
    assert limited["val"] == ["v0", "v1", "v2", "v3"]
    assert {p.name: p.read_text() for p in data.iterdir()} == before


def test_out_inside_the_data_folder_is_refused(rq, tmp_path, capsys):
    data = _data(tmp_path)
    assert rq.main(["--data", str(data), "--out", str(data / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: --out")
    assert not (data / "o").exists()


def test_finished_runs_are_reported_not_retrained_and_capped_rows_marked(rq, tmp_path, capsys):
    data, out = _data(tmp_path), tmp_path / "out"
    run = out / "runs-s0.15-seed0" / rq.run_name("strong", 2, 4)
    run.mkdir(parents=True)
    row = {"recipe": "strong", "epochs": 2, "capped": True,
           "cap": {"epochs": 2, "limit_tiles": 4}, "cpu_s": 12.0, "wall_s": 7.0,
           "load_mean": 1.5, "threshold_tuned": True,
           "val_untouched": {"f1": 0.5, "precision": 0.4, "recall": 0.6,
                             "iou_landslide": 0.33, "miou": 0.6, "auc": 0.9,
                             "threshold": 0.42}}  # fmt: skip
    (run / rq.RECORD).write_text(json.dumps(row))
    (run / "history.csv").write_text(  # selection F1 at 0.5: 0.48, then 0.6 (epoch 1)
        "epoch,cpu_seconds,val_precision,val_recall\n0,5,0.4,0.6\n1,5,0.6,0.6\n"
    )
    argv = ["--data", str(data), "--out", str(out), "--recipes", "strong", "--epochs", "2"]
    results = ["--results", str(tmp_path / "records")]
    assert rq.main([*argv, "--limit-tiles", "4", *results]) == 0  # would fail if it trained
    printed = capsys.readouterr().out
    assert "finished earlier" in printed
    line = next(ln for ln in printed.splitlines() if ln.startswith("| strong |"))
    assert (
        "| 0.500 | 0.400 | 0.600 | 0.330 | 0.600 | 0.900 | 0.42 (tuned on selection) | 12 | 7 | 1.5 |"
        in line
    )
    assert "CAPPED: 2 epochs, 4 tiles per list" in line
    saved = json.loads((out / "real_quality.json").read_text())
    assert saved["rows"][0]["status"] == "reported" and "CPU cores" in saved["machine"]
    assert saved["rows"][0]["best_selection_f1"] == 0.6
    assert saved["rows"][0]["best_selection_epoch"] == 1
    record = json.loads((tmp_path / "records" / "real_quality.json").read_text())
    assert record["figures"]["f1"] == 0.5 and record["figures"]["cpu_seconds"] == 12.0
    assert record["figures"]["protocol"] == "select-from-train 0.15 seed 0; val untouched"
    assert record["data"]["splits"] == {"select": 1, "train": 3, "val": 4}


def test_failed_row_says_why(rq):
    table = rq.markdown_table(
        [{"recipe": "paper", "epochs": 50, "status": "failed", "error": "error: boom"}]
    )
    assert "FAILED: error: boom" in table.splitlines()[-1]


def test_capped_runs_get_a_warm_up_shorter_than_their_epochs(rq, tmp_path):
    cmd = rq.train_command("strong", tmp_path, tmp_path, tmp_path / "r", 1)
    assert cmd[cmd.index("--test-split") + 1] == "test"  # the split dir's test.txt: given val
    assert cmd[cmd.index("--epochs") + 1] == "1"
    assert cmd[cmd.index("--warmup-epochs") + 1] == "0.25"
    assert "--warmup-epochs" not in rq.train_command("strong", tmp_path, tmp_path, tmp_path, 5)
    assert "--warmup-epochs" not in rq.train_command("paper", tmp_path, tmp_path, tmp_path, 1)
    # the fast preset inherits strong's one-epoch warm-up: a 1-epoch cap shortens it too
    cmd = rq.train_command("fast-preset", tmp_path, tmp_path, tmp_path / "f", 1)
    assert cmd[cmd.index("--warmup-epochs") + 1] == "0.25"
    assert "--epochs" not in rq.train_command("strong", tmp_path, tmp_path, tmp_path, None)


SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"

DRIVER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("real_quality", {bench!r})
rq = importlib.util.module_from_spec(spec)
sys.modules["real_quality"] = rq
spec.loader.exec_module(rq)
# each "training" writes its pid where the test finds it, then waits to be stopped
rq.train_command = lambda recipe, *_: [sys.executable, "-c", {sleeper!r}, {pids!r} + "/" + recipe]
sys.exit(rq.main(sys.argv[1:]))
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the processes")
def test_sigterm_stops_every_training_and_starts_no_other(tmp_path):
    import os
    import signal
    import subprocess
    import time

    from processes import alive

    pids = tmp_path / "pids"
    pids.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(bench=str(BENCH), sleeper=SLEEPER, pids=str(pids)))
    argv = ["--data", str(_data(tmp_path)), "--out", str(tmp_path / "out"), "--jobs", "2",
            "--recipes", "quick", "strong", "paper"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(driver), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    started: dict[str, int] = {}
    try:
        deadline = time.monotonic() + 60
        while len(started) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            started = {p.name: int(t) for p in pids.iterdir() if (t := p.read_text())}
        assert sorted(started) == ["quick", "strong"]  # --jobs 2: the first two recipes
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == 143, err
        assert "interrupted: the trainings were stopped" in err
        assert not any(alive(pid) for pid in started.values())
        assert not (pids / "paper").exists()  # the third recipe never started
    finally:
        proc.kill()
        for pid in started.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
