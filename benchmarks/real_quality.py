"""Quality of named training recipes on real imagery, with an honest protocol: val untouched.

The data folder (l4s-rgb-dev) has a train and a val list only. Every recipe choice (the
checkpoint kept, the tuned threshold of the strong recipes) is made on a **selection split
carved from train** (``--select-from-train 0.15``: a seeded random 15 % of train.txt, seed
``--select-seed``), and the given val list is scored once, untouched, after training: that
is the "val (untouched)" figure. ``train --select-from-train`` applies the same rule (same
seeded sample) inside one run; this script writes the
three lists itself into ``OUT/splits-...`` (train minus selection -> ``train.txt``,
selection -> ``val.txt``, the given val -> ``test.txt``) and passes that folder as
``--split-dir``; the record names the lists' sizes and hash.

Each recipe is one ``python -m landslide_tf.train ...`` subprocess (``--modalities rgb``)
into ``OUT/runs-<protocol>/<recipe>``; its ``metrics.json`` (the test split, i.e. the given
val) gives landslide F1, precision, recall, IoU, mIoU and AUC. The CPU seconds are user + sys
of the training process (``RUSAGE_CHILDREN``), the wall seconds its lifetime, the load the
mean 1-minute load average sampled while it ran.

Resumable: a recipe whose run finished earlier (``.../<recipe>/real_quality.json``) is
reported, not retrained; an interrupted one resumes where ``train`` left it (its CPU seconds
then cover the last invocation only, and the row says so). The data folder is only read.
``--limit-tiles N`` uses the first N stems of each given list (a smoke run, marked).

Writes one result record (``benchmarks/_record.py``, ``--results DIR``, ``--name``); with a
single recipe its headline figures (f1, precision, recall, miou, auc, cpu_seconds, epochs,
protocol) sit at the top of ``figures``, as the README's ``strong`` table reads them from
records named ``strong-*``::

    python benchmarks/real_quality.py --recipes strong --name strong-honest

Usage::

    python benchmarks/real_quality.py                       # all recipes, full length
    python benchmarks/real_quality.py --recipes paper strong --epochs 5   # a budget run
    python benchmarks/real_quality.py --epochs 1 --limit-tiles 64         # a smoke run

Where the data folder is absent it prints a message and exits 0 (no record).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
# this checkout's landslide_tf (the trainings run it too), before an installed one; the
# modules imported here import no TensorFlow
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]

from _children import stop  # noqa: E402
from _protocol import honest_splits, protocol_name, read_curve  # noqa: E402
from _record import Recorder, add_results_args, save, sha256_lines, split_summary  # noqa: E402

from landslide_tf.cli.common import (  # noqa: E402
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    Terminated,
    sigterm_as_interrupt,
)
from landslide_tf.files import atomic_write_text  # noqa: E402
from landslide_tf.training.recipe import PRESETS  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "l4s-rgb-dev"
RECORD = "real_quality.json"

#: ``--preset fast`` with the depth-4 U-Net it built before round 11: the recipes measured
#: then pin it, so they train what their records measured.
FAST_D4 = ["--preset", "fast", "--depth", "4"]
#: What ``--preset fast`` trained before round 9 (its length and test-time averaging then).
FAST_THEN = ["--epochs", "24", "--tta-transforms", "flips"]

Recipe = tuple[list[str], int, str]


def seeded(name: str, flags: list[str], epochs: int, text: str,
           seeds: tuple[int | None, ...] = (None, 1, 2, 3)) -> dict[str, Recipe]:  # fmt: skip
    """One recipe at several training seeds: ``NAME`` at its default seed (``None``) and
    ``NAME-sN`` with ``--seed N``, as benchmarks/report.py's seeds block joins them."""
    return {
        name + ("" if seed is None else f"-s{seed}"): (
            flags + ([] if seed is None else ["--seed", str(seed)]),
            epochs,
            text + ("" if seed is None else f", training seed {seed}"),
        )
        for seed in seeds
    }


#: Recipe name -> (extra train flags, the epochs those flags train for, description).
#: The epochs are the presets' (``landslide_tf.training.train.PRESETS``; a test keeps them equal).
RECIPES: dict[str, Recipe] = {
    "paper": (["--preset", "paper"], 50, "the paper: unetpp_spatial_ctx, Adam 1e-5, batch 2"),
    "quick": (
        ["--preset", "quick", "--derived"],
        8,
        "quick preset at 64 px (no slope channel: RGB has no DEM)",
    ),
    "strong": (["--preset", "strong"], 40, "strong preset: unetpp 16, AdamW + cosine, TTA"),
    # the fast preset's candidates, as measured (time-to-quality record): it first had a
    # weight EMA; fast-no-ema had the higher selection F1. They pin what the preset was then
    # (24 epochs, the four flips); the preset now is ``fast-preset``
    "fast": (
        [*FAST_D4, "--ema", "0.99"] + FAST_THEN,
        24,
        "fast candidate: unet 16, 24 epochs, weight EMA 0.99",
    ),
    "fast-lr2e-3": (
        [*FAST_D4, "--ema", "0.99", "--lr", "2e-3"] + FAST_THEN,
        24,
        "fast candidate: weight EMA 0.99, peak learning rate 2e-3",
    ),
    "fast-no-ema": (
        FAST_D4 + FAST_THEN,
        24,
        "the fast preset then: unet 16, 24 epochs, no EMA",
    ),
    # the fast preset as round 9's decisions left it (depth 4), at its default seed and seeds 1-3
    # (``NAME-sN``), so one time_to_quality run measures it against strong over four seeds
    **seeded(
        "fast-preset",
        [*FAST_D4, "--epochs", "32"],  # the preset's epochs then (30 since round 12)
        32,
        "the fast preset: unet 16, 32 epochs, dihedral TTA (round 9's decisions)",
    ),
    # round 11: the fast preset's U-Net one level shallower (depth 3: ~14% fewer CPU s per
    # training step on the 2-core Xeon, 24.1 against 28.0 ms a tile), the same four seeds, so
    # one time_to_quality run measures it against strong (rule in benchmarks/decisions.json)
    **seeded(
        "fast-d3",
        ["--preset", "fast", "--depth", "3", "--epochs", "32"],  # 30 since round 12
        32,
        "the fast preset with a depth-3 U-Net (one level fewer)",
    ),
    # round 12: fast-d3 trained 30 epochs instead of 32. In time-to-quality-r11 the four
    # fast-d3 runs took 0.326-0.347 of strong's CPU s (mean 0.336); their curves put 30
    # epochs at 0.307-0.327 (mean 0.317). The rule in benchmarks/decisions.json was written
    # before this recipe ran; it adopted 30 epochs (time-to-quality-r12), the preset since
    **seeded(
        "fast-d3-e30",
        ["--preset", "fast", "--depth", "3", "--epochs", "30"],
        30,
        "the fast preset with a depth-3 U-Net, 30 epochs",
    ),
    # rounds 3-9 (fast-e28*, fast-e32*) ran with the four flips, the preset's averaging then
    # round 3 of the time/quality trials: the fast preset at the most epochs its CPU budget
    # allows (a third of strong's 6,342 CPU s at ~72 CPU s per epoch), and a second strong
    # member (another training seed) short enough that strong + it stay within 3 CPU-hours
    "fast-e28": (
        [*FAST_D4, "--tta-transforms", "flips", "--epochs", "28"],
        28,
        "fast preset at 28 epochs (the most within a third of strong's CPU s)",
    ),
    # round 5: the Lovasz hinge (+ BCE, which it needs from scratch) instead of BCE + Dice,
    # paired with fast-e28 (same seed, epochs and selection)
    "fast-e28-lovasz": (
        [*FAST_D4, "--tta-transforms", "flips", "--epochs", "28"]
        + ["--loss", "lovasz_hinge", "--loss-kwargs", "bce_weight=1"],
        28,
        "fast-e28 with Lovasz hinge + BCE instead of BCE + Dice",
    ),
    # round 6: Lovasz fine-tuning as the issue names it (the last 4 of fast-e28's epochs)
    "fast-e28-lovasz-ft": (
        [*FAST_D4, "--tta-transforms", "flips", "--epochs", "28"]
        + ["--finetune-loss", "lovasz_hinge", "--finetune-epochs", "4"],
        28,
        "fast-e28, its last 4 epochs fine-tuned with the Lovasz hinge",
    ),
    # round 7: twice the optimizer steps for the same pixels (batch 4)
    "fast-e28-b4": (
        [*FAST_D4, "--tta-transforms", "flips", "--epochs", "28", "--batch-size", "4"],
        28,
        "fast-e28 with batch 4 instead of 8 (twice the steps)",
    ),
    # rounds 7-8: fast-e28 at seeds 1-3 (``NAME-sN``, as benchmarks/report.py's seeds block
    # joins them), for the spread of one recipe over four seeds
    **{
        f"fast-e28-s{seed}": (
            [
                *FAST_D4,
                "--tta-transforms",
                "flips",
                "--epochs",
                "28",
                "--seed",
                str(seed),
            ],
            28,
            f"fast-e28 with training seed {seed} (seed noise)",
        )
        for seed in (1, 2, 3)
    },
    # round 9: the fast preset at 32 epochs over the same four seeds (paired with fast-e28 run
    # by run; the CPU budget, a third of strong's 6,342 CPU s, is 2,114)
    **seeded(
        "fast-e32",
        [*FAST_D4, "--tta-transforms", "flips", "--epochs", "32"],
        32,
        "fast preset at 32 epochs",
    ),
    "strong-s1-e26": (
        ["--preset", "strong", "--seed", "1", "--epochs", "26"],
        26,
        "strong preset, training seed 1, 26 epochs (second ensemble member)",
    ),
    # round 4: does bfloat16 (what --precision auto picks on this CPU) cost the fast preset
    # its quality? (The GPU screen's U-Net in 26 epochs, float32 on JAX, scored 0.663.)
    "fast-f32": (
        [*FAST_D4, "--precision", "float32"] + FAST_THEN,
        24,
        "fast preset in float32 instead of bfloat16 (precision ablation)",
    ),
    # deep supervision, paired with strong-s1-e26 (same seed, epochs and selection)
    "strong-s1-e26-deep": (
        ["--preset", "strong", "--seed", "1", "--epochs", "26", "--deep-supervision"],
        26,
        "strong-s1-e26 with deep supervision (the mean of a head on every x_0_j)",
    ),
    "strong-resnet18": (
        ["--preset", "strong", "--encoder", "resnet18", "--encoder-weights", "none"],
        40,
        "strong + ResNet-18 encoder, random init",
    ),
    "strong-efficientnet_b0": (
        ["--preset", "strong", "--encoder", "efficientnet_b0", "--encoder-weights", "none"],
        40,
        "strong + EfficientNet-B0 encoder, random init",
    ),
}

METRICS = ("f1", "precision", "recall", "iou_landslide", "miou", "auc")
#: Headline figures of a single-recipe record (the README's ``strong`` table).
HEADLINE = ("f1", "precision", "recall", "miou", "auc")


def warmup_epochs(recipe: str) -> float:
    """The recipe's linear warm-up in epochs: its preset's (strong and fast, which inherits
    strong's choices, warm up; the others do not)."""
    flags = RECIPES[recipe][0]
    return float(PRESETS[flags[flags.index("--preset") + 1]].get("warmup_epochs", 0.0))


def capped_warmup(recipe: str, cap: int | None) -> float | None:
    """A shorter warm-up for a capped run whose epochs would not exceed it, else None.

    Training refuses a warm-up of ``epochs`` or more; a capped run warms up for a quarter
    of its epochs at most (the row says so).
    """
    warmup = warmup_epochs(recipe)
    if cap is None or warmup <= 0 or cap / 4 >= warmup:
        return None
    return cap / 4


def machine() -> str:
    """CPU model and core count (no TensorFlow import)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}"


def run_name(recipe: str, epochs: int | None, limit: int | None) -> str:
    """``strong``, ``strong-e5``, ``strong-e1-l64``: capped runs never share a full run's dir."""
    return recipe + (f"-e{epochs}" if epochs else "") + (f"-l{limit}" if limit else "")


def train_command(recipe: str, data: Path, split_dir: Path, run_dir: Path, epochs: int | None):
    """The ``python -m landslide_tf.train`` argv of one recipe (``epochs``: a cap)."""
    flags, _, _ = RECIPES[recipe]
    cmd = [sys.executable, "-m", "landslide_tf.train", *flags, "--modalities", "rgb"]
    # the split dir's val.txt is the selection, its test.txt the given val (scored once)
    cmd += ["--data", str(data), "--split-dir", str(split_dir), "--test-split", "test"]
    cmd += ["--run-dir", str(run_dir), "--verbose", "2"]
    if epochs:
        cmd += ["--epochs", str(epochs)]
        warmup = capped_warmup(recipe, epochs)
        if warmup is not None:
            cmd += ["--warmup-epochs", f"{warmup:g}"]
    return cmd


class Trainings:
    """The training subprocesses of one benchmark run, each started through ``start``.

    The worker threads (``--jobs``) each wait on their own; Ctrl-C or SIGTERM reaches the main
    thread only, which calls ``stop``: every training still running is terminated (its worker
    then reaps it) and none starts after, so an interrupted benchmark leaves no training
    running without it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopped = threading.Event()

    def start(self, cmd: list[str], log: Any, env: dict[str, str]) -> subprocess.Popen:
        """Start ``cmd`` with its output to the open file ``log``, unless ``stop`` came first."""
        with self._lock:
            if self._stopped.is_set():
                raise KeyboardInterrupt("the benchmark is stopping: no new training")
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
            self._running.add(proc)
            return proc

    @property
    def stopping(self) -> bool:
        """``stop`` was called."""
        return self._stopped.is_set()

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` between two looks at a training; 0.2 s once ``stop`` is called
        (the terminated trainings unwind in a few seconds)."""
        if not self._stopped.wait(seconds):
            return
        time.sleep(0.2)

    def finished(self, proc: subprocess.Popen) -> None:
        """``proc`` was reaped: ``stop`` has nothing more to do for it."""
        with self._lock:
            self._running.discard(proc)

    def stop(self) -> None:
        """Terminate every training still running and refuse new ones."""
        with self._lock:
            self._stopped.set()
            running = list(self._running)
        for proc in running:
            proc.terminate()


def run_recipe(cmd: list[str], log: Path, trainings: Trainings) -> dict[str, Any]:
    """Run one training subprocess; its exit code, CPU and wall seconds, load average.

    The CPU seconds are the child's own (``os.wait4``), so recipes trained side by side
    (``--jobs``) do not count each other's.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    loads = [os.getloadavg()[0]]
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = trainings.start(cmd, fh, env)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                trainings.pause(10)
                loads.append(os.getloadavg()[0])
        except BaseException:  # interrupted here: stop the child we started, then re-raise
            stop(proc)
            raise
        finally:
            trainings.finished(proc)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return {
        "returncode": proc.returncode,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "wall_s": round(wall, 1),
        "load_mean": round(sum(loads) / len(loads), 2),
        "load_max": round(max(loads), 2),
    }


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    return (errors or lines or ["(no output)"])[-1][:300]


def best_selection(run_dir: Path) -> dict[str, Any]:
    """The best epoch's selection F1 at 0.5 (``history.csv``; what the checkpoint saw), so
    rows compare with the time-to-quality curves; empty without a history."""
    history = run_dir / "history.csv"
    curve = read_curve(history) if history.is_file() else []
    if not curve:
        return {}
    best = max(curve, key=lambda p: p["selection_f1"])
    return {"best_selection_f1": best["selection_f1"], "best_selection_epoch": best["epoch"]}


def bench_recipe(
    recipe: str,
    data: Path,
    split_dir: Path,
    runs: Path,
    epochs: int | None,
    limit: int | None,
    protocol: str,
    trainings: Trainings,
) -> dict[str, Any]:
    """Train (or report) one recipe into ``runs/<run name>``; its row as a dict."""
    flags, nominal, description = RECIPES[recipe]
    cap = epochs if epochs and epochs < nominal else None
    name = run_name(recipe, cap, limit)
    out = runs.parent
    run_dir = runs / name
    record_path = run_dir / RECORD
    if record_path.is_file():
        row = json.loads(record_path.read_text())
        print(f"{name}: finished earlier, reported from {record_path}", flush=True)
        return {**row, **best_selection(run_dir), "status": "reported"}
    cmd = train_command(recipe, data, split_dir, run_dir, cap)
    resumed = 0
    state = run_dir / "state.json"
    if state.is_file():
        resumed = int(json.loads(state.read_text()).get("epochs_done", 0))
    (out / "logs").mkdir(parents=True, exist_ok=True)
    log = out / "logs" / f"{name}.log"
    print(f"{name}: training ({description}), log {log}", flush=True)
    cost = run_recipe(cmd, log, trainings)
    shown = ["python", "-m", "landslide_tf.train", *cmd[3:]]
    row: dict[str, Any] = {
        "recipe": recipe,
        "run": name,
        "description": description,
        "protocol": protocol,
        "command": shlex.join(shown),
        "epochs": cap or nominal,
        "capped": bool(cap or limit),
        "cap": {"epochs": cap, "limit_tiles": limit, "warmup_epochs": capped_warmup(recipe, cap)},
        "resumed_from_epoch": resumed,
        "run_dir": str(run_dir),
        **cost,
    }
    metrics_path = run_dir / "metrics.json"  # the test split: the given val, untouched
    if cost["returncode"] != 0 or not metrics_path.is_file():
        row.update(status="failed", error=_last_line(log))
        if trainings.stopping:
            print(f"{name}: stopped (interrupted)", flush=True)
        else:
            print(f"{name}: FAILED ({row['error']})", flush=True)
        return row
    metrics = json.loads(metrics_path.read_text())
    row["val_untouched"] = {k: metrics.get(k) for k in (*METRICS, "threshold", "tta", "n_tiles")}
    row["threshold_tuned"] = (run_dir / "threshold.json").is_file()
    row.update(best_selection(run_dir), status="trained")
    tmp = record_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=2) + "\n")
    os.replace(tmp, record_path)
    return row


def _fmt(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results as a markdown table (capped and failed rows say so)."""
    head = ["recipe", "epochs", "val (untouched) F1", "precision", "recall", "IoU (landslide)",
            "mIoU", "AUC", "threshold", "CPU s", "wall s", "load", "note"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        notes = []
        if r.get("capped"):
            cap = r.get("cap") or {}
            n = cap.get("epochs")
            parts = [f"{n} epoch{'s' if n != 1 else ''}" if n else None,
                     f"warm-up {cap['warmup_epochs']:g} epochs" if cap.get("warmup_epochs") else None,
                     f"{cap['limit_tiles']} tiles per list" if cap.get("limit_tiles") else None]  # fmt: skip
            notes.append("CAPPED: " + ", ".join(p for p in parts if p))
        if r.get("resumed_from_epoch"):
            notes.append(f"resumed after epoch {r['resumed_from_epoch']}: CPU/wall of the last leg")
        if r.get("status") == "failed":
            notes.append(f"FAILED: {r.get('error', '')}")
        val = r.get("val_untouched") or {}
        threshold = _fmt(val.get("threshold"), 2)
        if threshold and r.get("threshold_tuned"):
            threshold += " (tuned on selection)"
        cells = [r["recipe"], str(r.get("epochs", "")), *(_fmt(val.get(k)) for k in METRICS),
                 threshold, _fmt(r.get("cpu_s"), 0), _fmt(r.get("wall_s"), 0),
                 _fmt(r.get("load_mean"), 1), "; ".join(notes)]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def add_run_args(
    parser: argparse.ArgumentParser, recipes: list[str], record_name: str | None = None
) -> None:
    """The options of scripts that train recipes under the honest protocol (``record_name``:
    the default ``--name``, see ``_record.add_results_args``)."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="l4s-rgb-dev folder")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "real_quality")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=recipes)
    parser.add_argument("--epochs", type=int, help="cap every recipe at N epochs (marked)")
    parser.add_argument(
        "--limit-tiles", type=int, help="first N stems of train.txt and val.txt (marked)"
    )
    parser.add_argument(
        "--select-from-train",
        type=float,
        default=0.15,
        metavar="FRACTION",
        help="share of train carved out as the selection split (default 0.15)",
    )
    parser.add_argument("--select-seed", type=int, default=0, help="seed of the selection")
    parser.add_argument(
        "--jobs", type=int, default=1, help="recipes trained side by side (default 1)"
    )
    add_results_args(parser, record_name)


class Trained(NamedTuple):
    """What ``train_recipes`` did: the data folder, OUT, the split lists, the protocol's
    name, one row per recipe and the load recorder that watched the training."""

    data: Path
    out: Path
    lists: dict[str, list[str]]
    protocol: str
    rows: list[dict[str, Any]]
    recorder: Recorder


def train_recipes(args: argparse.Namespace) -> Trained | int:
    """Check ``add_run_args``' options, write the honest split lists, train (or report) each
    recipe; or the exit code (0: no data folder, a message said so; 2: a bad option; 130 or 143:
    interrupted by Ctrl-C or SIGTERM, the trainings stopped)."""
    data = args.data.expanduser().resolve()
    if not (data / "train.txt").is_file() or not (data / "val.txt").is_file():
        print(f"skipped: {data} with train.txt and val.txt not found (nothing to benchmark)")
        return 0
    checked = (
        ("--epochs", args.epochs),
        ("--limit-tiles", args.limit_tiles),
        ("--jobs", args.jobs),
    )
    for flag, value in checked:
        if value is not None and value < 1:
            print(f"error: {flag} must be at least 1, got {value}", file=sys.stderr)
            return 2
    if not 0 < args.select_from_train < 1:
        print("error: --select-from-train must be between 0 and 1", file=sys.stderr)
        return 2
    out = args.out.expanduser().resolve()
    if out == data or data in out.parents:
        print(
            f"error: --out {out} is inside the data folder {data}: choose another", file=sys.stderr
        )
        return 2
    out.mkdir(parents=True, exist_ok=True)
    fraction, seed = args.select_from_train, args.select_seed
    protocol = protocol_name(fraction, seed)
    split_dir, lists = honest_splits(data, out, fraction, seed, args.limit_tiles)
    runs = out / f"runs-s{fraction:g}-seed{seed}"

    trainings = Trainings()

    def bench(recipe: str) -> dict[str, Any]:
        return bench_recipe(
            recipe, data, split_dir, runs, args.epochs, args.limit_tiles, protocol, trainings
        )

    try:
        with (
            sigterm_as_interrupt(),
            Recorder() as recorder,
            ThreadPoolExecutor(max_workers=args.jobs) as pool,
        ):
            try:
                rows = list(pool.map(bench, args.recipes))  # in --recipes order
            except BaseException:  # Ctrl-C or SIGTERM: no new training, and stop the others
                pool.shutdown(wait=False, cancel_futures=True)
                trainings.stop()
                raise
    except KeyboardInterrupt as exc:
        print(
            "interrupted: the trainings were stopped; rerun the same command to resume "
            "(finished recipes are reported, the others resume after their last completed epoch)",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    return Trained(data, out, lists, protocol, rows, recorder)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Train named recipes on l4s-rgb-dev train (selection carved from it), "
        "score the untouched val once, print a table and write a result record."
    )
    add_run_args(parser, list(RECIPES))
    parser.add_argument("--json", type=Path, help="also write the rows here (default OUT/)")
    args = parser.parse_args(argv)
    done = train_recipes(args)
    if isinstance(done, int):
        return done
    data, out, lists, protocol, rows, recorder = done
    fraction, seed = args.select_from_train, args.select_seed
    table = markdown_table(rows)
    where = machine()
    print(f"\nval (untouched) of {data.name}, {protocol} ({where}):\n")
    print(table)
    result = {"data": str(data), "machine": where, "protocol": protocol, "rows": rows,
              "table": table}  # fmt: skip
    path = args.json or out / "real_quality.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    failed = any(r.get("status") == "failed" for r in rows)
    figures: dict[str, Any] = {
        "protocol": protocol,
        "select_from_train": fraction,
        "select_seed": seed,
        "split_sha256": {k: sha256_lines(v) for k, v in lists.items()},
        "rows": rows,
    }
    if len(rows) == 1 and rows[0].get("val_untouched"):
        row = rows[0]
        figures.update({k: row["val_untouched"].get(k) for k in HEADLINE})
        figures.update(cpu_seconds=row.get("cpu_s"), epochs=row.get("epochs"))
    if not failed:
        data_entry = split_summary(data.name, lists)
        save(args, "real_quality.py", argv, figures, recorder=recorder, data=data_entry)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
