"""Seconds per epoch of ``train`` with no precision flag against ``--precision float32``.

Usage::

    python benchmarks/precision_speed.py [--model unetpp] [--base-filters 32] [--batch-size 8]
        [--n 48] [--epochs 2] [--turns 2] [--data DIR]

Runs ``python -m landslide_tf.train`` as separate processes in turns (default flags, then
``--precision float32``, then default, ...), each on the same small synthetic set (``--n``
landslide tiles, made once in a temporary folder, or ``--data``) for ``--epochs`` epochs, and
reads the per-epoch wall and CPU seconds from each run's ``history.csv``. The first epoch
(tracing) is left out; the median of the later epochs is compared. Prints what ``auto``
chose (``config.json``'s ``precision_used`` and ``precision_reason``), both medians, the
ratio float32 / auto (> 1: the default is faster) and the load average before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# this checkout's landslide_tf before an installed one
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from _children import INTERRUPTED, run_child  # noqa: E402
from _record import Recorder, add_results_args, save  # noqa: E402

from landslide_tf.cli.common import run_cli  # noqa: E402


def _run(args, data: str, run_dir: Path, precision: str | None) -> dict:
    cmd = [
        sys.executable, "-m", "landslide_tf.train", "--model", args.model,
        "--base-filters", str(args.base_filters), "--batch-size", str(args.batch_size),
        "--epochs", str(args.epochs), "--image-size", str(args.image_size),
        "--data", data, "--run-dir", str(run_dir), "--verbose", "0", "--seed", "0",
    ]  # fmt: skip
    if precision:
        cmd += ["--precision", precision]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("LANDSLIDE_TF_PRECISION", None)
    start = time.perf_counter()
    proc = run_child(cmd, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"train failed ({precision or 'default'}):\n{proc.stderr[-2000:]}")
    with open(run_dir / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    config = json.loads((run_dir / "config.json").read_text())
    later = rows[1:] or rows
    return {
        "epoch_s": statistics.median(float(r["seconds"]) for r in later),
        "epoch_cpu_s": statistics.median(float(r["cpu_seconds"]) for r in later),
        "process_s": wall,
        "used": config.get("precision_used"),
        "reason": config.get("precision_reason"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unetpp")
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--n", type=int, default=48, help="synthetic landslide tiles")
    parser.add_argument("--epochs", type=int, default=2, help="per run; the first is not timed")
    parser.add_argument("--turns", type=int, default=2, help="runs per precision, alternating")
    parser.add_argument("--data", help="dataset instead of the synthetic set")
    add_results_args(parser)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch traces and is not timed)")

    load = lambda: " ".join(f"{v:.2f}" for v in os.getloadavg())  # noqa: E731
    print(f"{os.cpu_count()} CPUs, load average {load()}")
    print(
        f"train --model {args.model} --base-filters {args.base_filters} "
        f"--batch-size {args.batch_size} --image-size {args.image_size} --epochs {args.epochs}"
    )
    results: dict[str, list[dict]] = {"default": [], "float32": []}
    with tempfile.TemporaryDirectory() as tmp, Recorder() as recorder:
        data = args.data
        if data is None:
            from landslide_tf.data.synthetic import synthesize

            data = str(synthesize(Path(tmp) / "synth", n=args.n, seed=0))
        for turn in range(args.turns):
            for key in ("default", "float32"):
                run_dir = Path(tmp) / f"{key}-{turn}"
                result = _run(args, data, run_dir, None if key == "default" else "float32")
                results[key].append(result)
                print(
                    f"turn {turn + 1} {key:8s}: {result['epoch_s']:7.1f} s/epoch "
                    f"(cpu {result['epoch_cpu_s']:.1f} s), {result['used']}, load {load()}",
                    flush=True,
                )
    auto = results["default"][0]
    print(f"no flag chose {auto['used']}: {auto['reason']}")
    med = {k: statistics.median(r["epoch_s"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["epoch_cpu_s"] for r in v) for k, v in results.items()}
    print(
        f"median s/epoch: default {med['default']:.1f} (cpu {cpu['default']:.1f}), "
        f"float32 {med['float32']:.1f} (cpu {cpu['float32']:.1f})"
    )
    print(f"ratio float32 / default: {med['float32'] / med['default']:.2f}x wall, "
          f"{cpu['float32'] / cpu['default']:.2f}x cpu")  # fmt: skip
    print(f"load average after: {load()}")
    figures = {
        "model": args.model,
        "base_filters": args.base_filters,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "turns": args.turns,
        "data": args.data or f"synthetic n={args.n}",
        "default_used": auto["used"],
        "default_reason": auto["reason"],
        "epoch_s": med,
        "epoch_cpu_s": cpu,
        "ratio_float32_over_default": med["float32"] / med["default"],
        "cpu_ratio_float32_over_default": cpu["float32"] / cpu["default"],
        "runs": results,
    }
    save(args, "precision_speed.py", argv, figures, recorder=recorder)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, interrupted=INTERRUPTED))
