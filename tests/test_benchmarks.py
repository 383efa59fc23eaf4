"""Smoke tests of the benchmark scripts: tiny sizes, one round, one result record each.

Every script in ``benchmarks/`` (not the private ``_*.py`` helpers) runs once at toy size
with ``--results tmp_path`` and must write exactly one record holding every field of
``_record.FIELDS`` and the figure keys the README tables and later readers rely on. The
figures themselves are meaningless at this size; nothing here reads the real data set.
Scripts that only time models run in this process (TensorFlow is imported once); the ones
that train through ``python -m landslide_tf.train`` spawn processes and are marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))
#: Scripts that are not benchmarks (they write no record).
NOT_BENCHMARKS = {"report"}
#: Width options that make every model tiny.
TINY = ["--image-size", "32", "--base-filters", "4", "--depth", "2"]


def load(name: str):
    """Import ``benchmarks/<name>.py`` as a module (its own sys.path line finds _common)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: Scripts whose records are named for benchmarks/report.py rather than for the script.
RECORD_NAMES = {"time_to_quality": "time-to-quality", "ensemble_quality": "ensemble-quality"}


def run(name: str, argv: list[str], results: Path) -> dict:
    """Run one script's ``main`` into ``results``; its one record."""
    assert load(name).main([*argv, "--results", str(results)]) == 0
    records = list(results.glob("*.json"))
    record_name = RECORD_NAMES.get(name, name) if "--name" not in argv else None
    assert len(records) == 1 and record_name in (None, records[0].stem), records
    record = json.loads(records[0].read_text())
    sys.path.insert(0, str(BENCH))
    from _record import FIELDS

    assert set(FIELDS) <= set(record), set(FIELDS) - set(record)
    assert record["name"] == records[0].stem and record["benchmark"] == f"{name}.py"
    assert record["command"].startswith(f"python benchmarks/{name}.py ")
    assert "--results" in record["command"]
    assert record["machine"]["cores"] >= 1 and record["load"]["samples"] >= 1
    return record


def synthetic(folder: Path, n: int = 6, lists: bool = False) -> Path:
    """A tiny synthetic Bijie-layout set; with ``lists``, train.txt / val.txt beside it."""
    from landslide_tf.data import find_samples, synthesize

    root = Path(synthesize(folder, n=n, seed=0))
    if lists:
        stems = sorted(s.stem for s in find_samples(root))  # landslide tiles (negatives off)
        cut = max(2, len(stems) * 2 // 3)
        (root / "train.txt").write_text("".join(f"{s}\n" for s in stems[:cut]))
        (root / "val.txt").write_text("".join(f"{s}\n" for s in stems[cut:]))
    return root


def test_every_benchmark_has_a_smoke_test():
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert set(SCRIPTS) - NOT_BENCHMARKS <= tested, set(SCRIPTS) - NOT_BENCHMARKS - tested


def test_models(tmp_path):
    argv = ["--models", "unet", "--no-peers", "--batch", "1", "--steps", "1", "--warmup", "0"]
    record = run("models", [*argv, *TINY], tmp_path)
    figures = record["figures"]
    assert {"input", "base_filters", "depth", "models"} <= set(figures)
    (row,) = figures["models"]
    assert row["model"] == "unet" and row["paper_name"] == "1. U-Net"
    assert row["params"] > 0 and row["gflops"] > 0 and row["train_tiles_s"] > 0


def test_models_with_encoders_records_under_encoders_not_the_six_model_table():
    """``--encoders`` without ``--name`` writes the ``encoders`` record the README's encoder
    table reads, instead of replacing the six-model ``models`` record."""
    models = load("models")
    assert models.parse_args(["--encoders", "resnet18", "--steps", "0"]).name == "encoders"
    assert models.parse_args(["--encoders", "resnet18", "--name", "x"]).name == "x"
    assert models.parse_args(["--steps", "0"]).name is None  # the script's name: models


def _comparison(tmp_path, name, count):
    argv = ["--models", "unet", "--no-peers", "--batch-sizes", "1", f"--{count}", "1"]
    record = run(name, [*argv, "--warmup", "0", *TINY], tmp_path)
    figures = record["figures"]
    assert {"input", "policy", "jit", count, "unit", "rows"} <= set(figures)
    (row,) = figures["rows"]
    assert row["model"] == "unet" and row[f"ours_{figures['unit']}"] > 0
    assert row["peer"] is None and row["ratio"] is None


def test_inference_latency(tmp_path):
    _comparison(tmp_path, "inference_latency", "repeats")


def test_train_throughput(tmp_path):
    _comparison(tmp_path, "train_throughput", "steps")


def test_interleaved(tmp_path):
    argv = ["--models", "unet", "--against", "unet", "--batch", "1", "--rounds", "1"]
    record = run("interleaved", [*argv, "--warmup", "0", *TINY], tmp_path)
    (row,) = record["figures"]["rows"]
    assert row["model"] == "unet" and row["peer"] == "unet"
    assert {"ours_ms_per_tile", "peer_ms_per_tile", "infer_ratio", "train_ratio"} <= set(row)


@pytest.mark.slow  # XLA compilation: about a minute on a loaded 2-core machine
def test_xla_cpu(tmp_path):
    argv = ["--model", "unet", "--base-filters", "4", "--depth", "2", "--batch", "1"]
    argv += ["--image-size", "32"]
    record = run("xla_cpu", [*argv, "--precisions", "float32", "--steps", "1", "--rounds", "1"], tmp_path)  # fmt: skip
    (row,) = record["figures"]["rows"]
    assert row["precision"] == "float32"
    assert row["plain_s_per_step"] > 0 and row["xla_s_per_step"] > 0


def test_data_pipeline(tmp_path):
    argv = ["--n", "6", "--image-size", "32", "--batch-size", "4", "--turns", "1"]
    record = run("data_pipeline", [*argv, "--real", str(tmp_path / "absent")], tmp_path / "r")
    figures = record["figures"]
    assert figures["real"] is None and record["data"] is None
    synth = figures["synthetic"]
    assert set(synth["tiles_per_s"]) == {"old", "new", "stream"}
    assert synth["tiles"] > 0 and synth["ratio_new_over_old"] > 0


@pytest.mark.slow
def test_scene(tmp_path):
    argv = ["--sizes", "256", "--window", "128", "--batch", "2", "--base-filters", "4"]
    record = run("scene", [*argv, "--depth", "2"], tmp_path)
    (row,) = record["figures"]["rows"]
    assert row["size"] == 256 and row["windows"] > 0 and row["seconds"] > 0
    assert {"peak_rss_mib", "scene_rss_growth_mib", "tracemalloc_peak_mib"} <= set(row)


@pytest.mark.slow
def test_precision_speed(tmp_path):
    data = synthetic(tmp_path / "synth")
    argv = ["--model", "unet", "--base-filters", "4", "--batch-size", "4", "--image-size", "32"]
    argv += ["--epochs", "2", "--turns", "1", "--data", str(data)]
    record = run("precision_speed", argv, tmp_path / "r")
    figures = record["figures"]
    assert set(figures["epoch_s"]) == {"default", "float32"}
    assert figures["ratio_float32_over_default"] > 0 and figures["default_used"]


@pytest.mark.slow
def test_precision_quality(tmp_path):
    data = synthetic(tmp_path / "synth", n=8, lists=True)
    argv = ["--data", str(data), "--model", "unet", "--base-filters", "4", "--batch-size", "2"]
    argv += ["--epochs", "1", "--image-size", "32", "--no-augment"]
    record = run("precision_quality", argv, tmp_path / "r")
    figures = record["figures"]
    assert set(figures["runs"]) == {"float32", "auto"}
    assert {"f1", "miou", "cpu_s", "wall_s"} <= set(figures["runs"]["auto"])
    assert "f1_auto_minus_float32" in figures and figures["protocol"].startswith("select-")
    assert set(record["data"]["splits"]) == {"train", "select", "val"}


@pytest.mark.slow
def test_study_time(tmp_path):
    data = synthetic(tmp_path / "synth", n=10)
    study = tmp_path / "tiny.json"
    study.write_text(
        json.dumps(
            {
                "name": "tiny",
                "extends": "quick",
                "stage1": {"bases": ["unet"], "losses": ["bce"]},
                "stage3": {"base": "unet", "models": ["unet_spatial"]},
            }
        )
    )
    argv = ["--smoke", "--epochs", "2", "--study", str(study), "--data", str(data)]
    record = run("study_time", argv, tmp_path / "r")
    figures = record["figures"]
    # one summary row per run (not a run's epoch history), and the total is their sum
    assert figures["runs"] == 2 and [r["run"] for r in figures["rows"]] == [
        "unet-bce-s42",
        "unet_spatial-bce-s42",
    ]
    total = sum(r["projected_s"] for r in figures["rows"])
    assert figures["projected_h"] == pytest.approx(total / 3600)
    assert figures["projected_h"] > 0 and figures["measured_wall_s"] > 0


@pytest.mark.slow
def test_real_quality(tmp_path):
    data = synthetic(tmp_path / "synth", n=16, lists=True)
    argv = ["--data", str(data), "--recipes", "quick", "--epochs", "1"]
    record = run("real_quality", [*argv, "--out", str(tmp_path / "out")], tmp_path / "r")
    figures = record["figures"]
    (row,) = figures["rows"]
    assert row["recipe"] == "quick" and row["status"] == "trained"
    assert {"f1", "miou", "auc"} <= set(row["val_untouched"])
    assert figures["protocol"].startswith("select-from-train")
    assert set(record["data"]["splits"]) == {"train", "select", "val"}
    # training ran in subprocesses, yet the record names the TensorFlow and Keras it used
    assert record["machine"]["tensorflow"] and record["machine"]["keras"]


@pytest.mark.slow
def test_time_to_quality(tmp_path):
    data = synthetic(tmp_path / "synth", n=16, lists=True)
    argv = ["--data", str(data), "--recipes", "quick", "--epochs", "2"]
    out = tmp_path / "out"
    record = run("time_to_quality", [*argv, "--out", str(out)], tmp_path / "r")
    figures = record["figures"]
    quick = figures["recipes"]["quick"]
    assert figures["reference"] == "quick" and quick["capped"] is True
    assert [p["epoch"] for p in quick["curve"]] == [1, 2]
    cpu = [p["cpu_s"] for p in quick["curve"]]
    assert 0 < cpu[0] < cpu[1]  # cumulative
    assert all(0 <= p["selection_f1"] <= 1 for p in quick["curve"])
    assert 0 <= quick["val_untouched_f1"] <= 1 and quick["ratio_to_reference"] == 1.0
    assert (out / "time_to_quality.png").stat().st_size > 0
    # the default record name is one benchmarks/report.py reads: its runs join the tables
    report = load("report")
    (row,) = report.trained_runs({record["name"]: record})
    assert row.recipe == "quick" and row.val_f1 == quick["val_untouched_f1"]


@pytest.mark.parametrize("name", ["precision_quality", "real_quality", "time_to_quality"])
def test_real_data_benchmarks_skip_cleanly(tmp_path, capsys, name):
    argv = ["--data", str(tmp_path / "absent"), "--results", str(tmp_path / "r")]
    if name in ("real_quality", "time_to_quality"):
        argv += ["--out", str(tmp_path / "out")]
    assert load(name).main(argv) == 0
    assert "skipped" in capsys.readouterr().out
    assert not (tmp_path / "r").exists()


def _tiny_run(data: Path, split_dir: Path, run_dir: Path, seed: int) -> Path:
    """One tiny RGB run trained on ``split_dir``'s lists (val = selection, test = val)."""
    from landslide_tf.train import main as train_main

    argv = ["--data", str(data), "--modalities", "rgb", "--split-dir", str(split_dir),
            "--test-split", "test", "--run-dir", str(run_dir), "--epochs", "1",
            "--seed", str(seed), "--batch-size", "2", *TINY]  # fmt: skip
    assert train_main(argv) == 0
    return run_dir


def _honest_lists(data: Path, folder: Path) -> Path:
    """train/val(selection)/test(val) lists over a synthetic set's landslide tiles."""
    from landslide_tf.data import find_samples

    stems = sorted(s.stem for s in find_samples(data))
    folder.mkdir()
    for name, part in (("train", stems[:8]), ("val", stems[8:11]), ("test", stems[11:])):
        (folder / f"{name}.txt").write_text("".join(f"{s}\n" for s in part))
    return folder


@pytest.mark.slow
def test_ensemble_quality(tmp_path):
    data = synthetic(tmp_path / "synth", n=14)
    lists = _honest_lists(data, tmp_path / "lists")
    runs = [_tiny_run(data, lists, tmp_path / f"run{k}", seed=k) for k in (0, 1)]
    argv = ["--members", *map(str, runs), "--split-dir", str(lists), "--data", str(data),
            "--out", str(tmp_path / "ensemble")]  # fmt: skip
    record = run("ensemble_quality", argv, tmp_path / "r")
    figures = record["figures"]
    assert figures["k"] == 2 and len(figures["members"]) == 2
    assert figures["members_cpu_s"] > 0 and figures["members_cpu_h"] >= 0
    assert all(m["cpu_source"] == "epochs only (history.csv)" for m in figures["members"])
    assert 0 <= figures["val_untouched"]["f1"] <= 1 and figures["val_untouched"]["n_tiles"] == 3
    assert figures["threshold"] == figures["threshold_tuning"]["threshold"]
    assert any(line.startswith("serving_default(") for line in figures["signatures"])
    assert record["data"]["splits"] == {"select": 3, "val": 3}
    # the ensemble is ONE SavedModel that plain TensorFlow loads
    import tensorflow as tf

    assert tf.saved_model.load(figures["saved_model"]).signatures
    # the default record name is one benchmarks/report.py reads: a row of the ideas table
    ideas = load("report").render_ideas({record["name"]: record})
    assert "ensemble run0 + run1" in ideas and f"results/{record['name']}.json" in ideas
    # one member: the single-run export through the same scoring
    argv = ["--members", str(runs[0]), "--split-dir", str(lists), "--data", str(data),
            "--out", str(tmp_path / "single"), "--tta-transforms", "dihedral"]  # fmt: skip
    single = run("ensemble_quality", argv, tmp_path / "r1")["figures"]
    assert single["k"] == 1 and single["members_cpu_s"] == figures["members"][0]["cpu_s"]
    assert single["tta"] and single["tta_transforms"] == "dihedral"  # baked into the export
    assert figures["tta_transforms"] is None  # the tiny runs' own setting: no TTA
    # --each: every member alone through the same path (paired runs of one recipe), and means
    argv = ["--members", *map(str, runs), "--split-dir", str(lists), "--data", str(data),
            "--out", str(tmp_path / "each"), "--tta-transforms", "dihedral", "--each"]  # fmt: skip
    each = run("ensemble_quality", argv, tmp_path / "r2")["figures"]
    assert each["each"] and each["k"] == 2 and each["tta_transforms"] == "dihedral"
    assert [r["run_dir"] for r in each["runs"]] == [str(r) for r in runs]
    assert [Path(r["saved_model"]).name for r in each["runs"]] == ["run0", "run1"]
    first = each["runs"][0]  # the same run, export and TTA as the single scoring above
    assert first["selection_f1"] == single["selection_f1"]
    assert first["val_untouched"] == single["val_untouched"]
    assert each["mean"]["selection_f1"] == pytest.approx(
        sum(r["selection_f1"] for r in each["runs"]) / 2, abs=1e-4
    )
    assert each["mean"]["val_untouched_f1"] == pytest.approx(
        sum(r["val_untouched"]["f1"] for r in each["runs"]) / 2, abs=1e-4
    )
    twice = ["--members", str(runs[0]), str(runs[0]), "--split-dir", str(lists), "--data",
             str(data), "--out", str(tmp_path / "twice"), "--each"]  # fmt: skip
    assert load("ensemble_quality").main(twice) == 2  # one SavedModel folder per member name
    assert not (tmp_path / "twice").exists()


@pytest.mark.slow
def test_ideas_screen(tmp_path):
    """Pack a synthetic set, then screen two U-Net variants with the JAX backend, without
    TensorFlow (a stand-in package that refuses the import), as on the GPU machine."""
    import os
    import subprocess

    data = synthetic(tmp_path / "synth", n=14)
    lists = _honest_lists(data, tmp_path / "lists")
    packed = tmp_path / "tiles.npz"
    assert (
        load("ideas_screen").main(["pack", str(data), str(lists), str(packed), "--size", "64"]) == 0
    )
    no_tf = tmp_path / "no_tf" / "tensorflow"
    no_tf.mkdir(parents=True)
    (no_tf / "__init__.py").write_text("raise ImportError('no TensorFlow on this machine')\n")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(no_tf.parent),
               JAX_PLATFORMS="cpu")  # fmt: skip
    cmd = [sys.executable, str(BENCH / "ideas_screen.py"), "run", "--data", str(packed),
           "--variants", "fast_unet26", "fast_unet26_lr2", "--epochs", "1", "--parallel", "2",
           "--work", str(tmp_path / "work"), "--results", str(tmp_path / "r")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    record = json.loads((tmp_path / "r" / "ideas_screen.json").read_text())
    assert record["figures"]["backend"] == "jax"
    rows = {r["variant"]: r for r in record["figures"]["rows"]}
    assert rows["fast_unet26"]["status"] == "trained" and rows["fast_unet26"]["epochs_done"] == 1
    assert rows["fast_unet26_lr2"]["settings"]["lr"] == 2e-3
    ens = rows["ens_fast_unet_x2"]
    assert ens["status"] == "ensemble" and ens["members"] == ["fast_unet26", "fast_unet26_lr2"]
    for row in rows.values():
        assert 0 <= row["val_untouched"]["f1"] <= 1
    assert record["data"]["splits"] == {"train": 8, "sel": 3, "val": 3}


def test_a_record_names_the_tree_its_run_started_on(tmp_path, monkeypatch, capsys):
    """A commit made while a long benchmark runs is not named as the code that ran."""
    sys.path.insert(0, str(BENCH))
    import argparse

    import _record

    heads = iter([("a" * 40, False), ("b" * 40, False), ("c" * 40, False), ("c" * 40, False)])
    monkeypatch.setattr(_record, "git_commit", lambda: next(heads))
    args = argparse.Namespace(results=str(tmp_path), name="changed")
    with _record.Recorder(every_s=60) as recorder:  # HEAD a at the start
        pass
    record = json.loads(_record.save(args, "x.py", [], {}, recorder=recorder).read_text())
    assert (record["commit"], record["dirty"]) == ("a" * 40, True)  # HEAD b at the end
    assert "aaaaaaaaaa (clean) at the start, bbbbbbbbbb (clean) at the end" in record["note"]

    args.name = "unchanged"
    with _record.Recorder(every_s=60) as recorder:  # HEAD c at the start and the end
        pass
    record = json.loads(_record.save(args, "x.py", [], {}, recorder=recorder).read_text())
    assert (record["commit"], record["dirty"]) == ("c" * 40, False) and "note" not in record


CHILD = """
import os, signal, sys, time
def stopped(*_):
    open(sys.argv[1] + ".terminated", "w").close()  # its own clean-up ran
    sys.exit(0)
signal.signal(signal.SIGTERM, stopped)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(300)
"""

CHILD_DRIVER = """
import sys
sys.path.insert(0, {bench!r})
from _children import INTERRUPTED, run_child
from landslide_tf.cli.common import run_cli
sys.exit(run_cli(lambda: run_child([sys.executable, "-c", {child!r}, {pid!r}]).returncode,
                 interrupted=INTERRUPTED))
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to see the processes")
def test_sigterm_to_a_benchmark_terminates_its_child(tmp_path):
    import os
    import signal
    import subprocess
    import time

    from processes import alive

    pid_file = tmp_path / "child.pid"
    driver = tmp_path / "driver.py"
    driver.write_text(CHILD_DRIVER.format(bench=str(BENCH), child=CHILD, pid=str(pid_file)))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    child = None
    try:
        deadline = time.monotonic() + 60
        while child is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            child = int(text) if pid_file.is_file() and (text := pid_file.read_text()) else None
        assert child is not None, proc.communicate(timeout=10)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == 143, err
        assert "no result record was written (terminated by SIGTERM)" in err
        assert not alive(child)
        assert (tmp_path / "child.pid.terminated").is_file()  # SIGTERM, not SIGKILL
    finally:
        proc.kill()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)


def test_benchmarks_run_their_children_through_run_child():
    # subprocess.run leaves its child running when SIGTERM reaches the benchmark alone
    for path in sorted(BENCH.glob("*.py")):
        if path.name not in ("_record.py", "_children.py"):  # _record: quick git queries
            assert "subprocess.run(" not in path.read_text(), path.name
