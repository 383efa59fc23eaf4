"""Quality is not traded for speed: the same recipe and seed in float32 and in auto precision.

Usage (from the project root; a long run: two full trainings)::

    python benchmarks/precision_quality.py                       # l4s-rgb-dev, defaults below
    python benchmarks/precision_quality.py --epochs 1 --limit 64 # smoke run (minutes)

Trains ``python -m landslide_tf.train`` twice on ``../shared/data/l4s-rgb-dev`` (RGB), once
with ``--precision float32`` and once with no precision flag (``auto``: bfloat16 on CPUs with
AVX512_BF16/AMX, on TPUs and on GPUs of compute capability >= 8; float16 on older
tensor-core GPUs), same recipe, same seed, under the honest protocol (``_protocol.py``): the
checkpoint is chosen on a selection split carved from train (``--select-from-train``, seeded),
and ``train`` scores the given val list once, untouched, at the end, in the precision it
trained in (``metrics.json``). Prints, per precision: val (untouched) landslide F1
(threshold 0.5), mIoU, the CPU seconds of the training process (user + system, all threads)
and its wall seconds, and the F1 difference (the issue asks for |auto - float32| <= 0.02).
Writes one result record (``--results DIR``). Where the data is absent it prints a message
and exits 0 (no record).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# this checkout's landslide_tf before an installed one
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from _children import INTERRUPTED, run_child  # noqa: E402
from _protocol import honest_splits, protocol_name  # noqa: E402
from _record import Recorder, add_results_args, save, split_summary  # noqa: E402

from landslide_tf.cli.common import run_cli  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "l4s-rgb-dev"


def _train(args, split_dir: Path, run_dir: Path, precision: str | None) -> dict:
    cmd = [
        sys.executable, "-m", "landslide_tf.train", "--data", str(args.data),
        "--split-dir", str(split_dir), "--modalities", "rgb", "--run-dir", str(run_dir),
        "--model", args.model, "--base-filters", str(args.base_filters),
        "--batch-size", str(args.batch_size), "--epochs", str(args.epochs), "--lr", str(args.lr),
        "--image-size", str(args.image_size), "--seed", str(args.seed), "--verbose", "2",
        *(["--augment"] if args.augment else []), *(["--loss", args.loss] if args.loss else []),
    ]  # fmt: skip
    if precision:
        cmd += ["--precision", precision]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("LANDSLIDE_TF_PRECISION", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = run_child(cmd, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"train failed ({precision or 'auto'}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def _val_scores(run_dir: Path) -> dict:
    """The untouched val's scores ``train`` wrote (``metrics.json``) and the precision used."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    return {
        "f1": float(metrics["f1"]),
        "miou": float(metrics["miou"]),
        "n_tiles": metrics.get("n_tiles"),
        "precision_used": config.get("precision_used"),
        "precision_reason": config.get("precision_reason"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL)
    parser.add_argument("--model", default="unetpp")
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--loss", default=None, help="default: the family's paper loss")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="first N stems of each list (smoke)")
    parser.add_argument("--select-from-train", type=float, default=0.15, metavar="FRACTION")
    parser.add_argument("--select-seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    parser.add_argument("--json", type=Path, help="also write the results here")
    add_results_args(parser)
    args = parser.parse_args(argv)
    if not (args.data / "train.txt").is_file():
        print(f"skipped: {args.data} not found (the l4s-rgb-dev set with train.txt/val.txt)")
        return 0

    logging.disable(logging.WARNING)  # one "RGBA image" note per l4s tile otherwise
    load = lambda: " ".join(f"{v:.2f}" for v in os.getloadavg())  # noqa: E731
    print(f"{os.cpu_count()} CPUs, load average {load()}; data {args.data}")
    with tempfile.TemporaryDirectory() as tmp, Recorder() as recorder:
        base = args.keep or Path(tmp)
        fraction, seed = args.select_from_train, args.select_seed
        splits, lists = honest_splits(args.data, base, fraction, seed, args.limit or None)
        data = split_summary(args.data.name, lists)
        results = {}
        for key, precision in (("float32", "float32"), ("auto", None)):
            run_dir = base / f"run-{key}"
            timing = _train(args, splits, run_dir, precision)
            scores = _val_scores(run_dir)
            results[key] = {**timing, **scores}
            print(
                f"{key:8s} ({scores['precision_used']}): val landslide F1 {scores['f1']:.4f}, "
                f"mIoU {scores['miou']:.4f} on {scores['n_tiles']} tiles; "
                f"train cpu {timing['cpu_s']:.0f} s, wall {timing['wall_s']:.0f} s; "
                f"load {load()}",
                flush=True,
            )
    diff = results["auto"]["f1"] - results["float32"]["f1"]
    print(f"auto chose {results['auto']['precision_used']}: {results['auto']['precision_reason']}")
    print(f"F1 auto - float32: {diff:+.4f} ({'within' if abs(diff) <= 0.02 else 'OUTSIDE'} 0.02)")
    print(
        f"speed: wall {results['float32']['wall_s'] / results['auto']['wall_s']:.2f}x, "
        f"cpu {results['float32']['cpu_s'] / results['auto']['cpu_s']:.2f}x (float32 / auto)"
    )
    if args.json:
        from landslide_tf.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    figures = {
        "model": args.model,
        "base_filters": args.base_filters,
        "epochs": args.epochs,
        "limit": args.limit,
        "protocol": protocol_name(args.select_from_train, args.select_seed),
        "f1_auto_minus_float32": diff,
        "wall_ratio_float32_over_auto": results["float32"]["wall_s"] / results["auto"]["wall_s"],
        "cpu_ratio_float32_over_auto": results["float32"]["cpu_s"] / results["auto"]["cpu_s"],
        "runs": results,
    }
    save(args, "precision_quality.py", argv, figures, recorder=recorder, data=data)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, interrupted=INTERRUPTED))
