"""Project the paper study's wall time on this machine from a short run of all 15 runs.

Usage::

    python benchmarks/study_time.py [--epochs 2] [--data DIR] [--jobs 1] [--target-epochs 50]
        [--precision auto] [--out DIR]

Runs ``python -m landslide_tf.experiments paper`` with ``--epochs`` (default 2) on ``--data``
(default: the synthetic set ``train`` uses), every run with the study's other settings (batch 2,
128x128, RGB + DEM, the paper's models and losses), then reads each run's ``history.csv``:
the first epoch (tracing) and the median of the later epochs. The projection for
``--target-epochs`` (the paper's 50) is, per run::

    overhead + first epoch + (target - 1) x median later epoch

where ``overhead`` = the run's wall time minus its epochs (loading, test evaluation, plots),
summed over the 15 runs (``--jobs`` > 1: divided by the jobs, an optimistic bound). Prints
the measured wall time, the per-run table and the projection, with the machine's load.
The paper reports 5-9 min per run on a Colab T4. ``--smoke`` shrinks the runs (32 px,
width 4) to check the script, not to project anything.
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


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    with open(path) as fh:
        return list(csv.DictReader(fh))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--target-epochs", type=int, default=50)
    parser.add_argument("--data", help="dataset (default: the synthetic set)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--precision", default=None, help="passed on (default: auto)")
    parser.add_argument("--out", type=Path, help="keep the study here (default: temporary)")
    parser.add_argument("--smoke", action="store_true", help="tiny runs: checks the script only")
    parser.add_argument("--study", default="paper", help="study to run (default: paper)")
    add_results_args(parser)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch traces)")

    load = lambda: " ".join(f"{v:.2f}" for v in os.getloadavg())  # noqa: E731
    print(f"{os.cpu_count()} CPUs, load average {load()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Recorder() as recorder:
        out = args.out or Path(tmp) / "study"
        data = args.data
        if data is None:
            from landslide_tf.data import ensure_default_dataset

            data = str(ensure_default_dataset())
        cmd = [sys.executable, "-m", "landslide_tf.experiments", args.study, "--data", data,
               "--out", str(out), "--epochs", str(args.epochs), "--jobs", str(args.jobs)]  # fmt: skip
        if args.precision:
            cmd += ["--precision", args.precision]
        if args.smoke:
            cmd += ["--image-size", "32", "--base-filters", "4", "--set", "depth=2"]
        env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        start = time.perf_counter()
        proc = run_child(cmd, env=env)
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 1):
            raise SystemExit(f"experiments failed:\n{proc.stderr[-3000:]}")
        runs = sorted(p for p in (out / "runs").iterdir() if p.is_dir())
        total = 0.0
        print(f"{'run':40s} {'1st s':>7s} {'later s':>8s} {'other s':>8s} {'projected s':>12s}")
        for run_dir in runs:
            history = _history(run_dir)
            if not history:
                print(f"{run_dir.name:40s} no history (failed?)")
                continue
            record = (
                json.loads((run_dir / "experiment.json").read_text())
                if (run_dir / "experiment.json").is_file()
                else {}
            )
            epochs = [float(r["seconds"]) for r in history]
            first, later = epochs[0], statistics.median(epochs[1:])
            run_wall = float(record.get("wall_s", sum(epochs)))
            other = max(0.0, run_wall - sum(epochs))
            projected = other + first + (args.target_epochs - 1) * later
            total += projected
            print(f"{run_dir.name:40s} {first:7.1f} {later:8.1f} {other:8.1f} {projected:12.0f}")
            rows.append(
                {
                    "run": run_dir.name,
                    "first_epoch_s": first,
                    "later_epoch_s": later,
                    "other_s": other,
                    "projected_s": projected,
                }
            )
        used = ""
        config = runs[0] / "config.json" if runs else None
        if config and config.is_file():
            raw = json.loads(config.read_text())
            used = f", precision {raw.get('precision_used')}"
    jobs = max(1, args.jobs)
    print(
        f"measured: {len(runs)} runs x {args.epochs} epochs in {wall:.0f} s "
        f"(jobs {args.jobs}{used}); load {load()}"
    )
    print(
        f"projected full study ({args.target_epochs} epochs per run): {total / jobs / 3600:.2f} h"
        f"{' (jobs > 1: optimistic, assumes perfect sharing)' if jobs > 1 else ''}"
    )
    figures = {
        "study": args.study,
        "epochs": args.epochs,
        "target_epochs": args.target_epochs,
        "jobs": args.jobs,
        "smoke": args.smoke,
        "runs": len(runs),
        "measured_wall_s": wall,
        "projected_h": total / jobs / 3600,
        "precision_used": used.removeprefix(", precision ") or None,
        "rows": rows,
    }
    save(args, "study_time.py", argv, figures, recorder=recorder)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, interrupted=INTERRUPTED))
