"""``python -m landslide_tf.evaluate``: score a trained run on a whole split (see
``landslide_tf.evaluation.evaluate``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from landslide_tf.cli.common import ArgumentParser, add_precision_arg, add_tta_arg, run_cli
from landslide_tf.errors import UserError
from landslide_tf.evaluation.evaluate import METRIC_KEYS, evaluate_run
from landslide_tf.metrics.segmentation import format_metrics
from landslide_tf.training.runs import EVAL_SPLITS


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m landslide_tf.evaluate`` argument parser."""
    parser = ArgumentParser(
        prog="python -m landslide_tf.evaluate",
        description="Evaluate best.keras of a training run on a whole split.",
    )
    parser.add_argument("run_dir", help="run directory written by python -m landslide_tf.train")
    parser.add_argument(
        "--data",
        help="dataset folder or zip (default: the run's config.json); another dataset is "
        "scored on its own lists (--split-dir) or whole (--split all)",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=EVAL_SPLITS,
        help="default: test; all = every tile of the dataset",
    )
    parser.add_argument(
        "--split-dir",
        help="train.txt + val.txt [+ test.txt] of --data, taken as they are (default: the "
        "run's lists); the metrics file then names the dataset",
    )
    parser.add_argument("--threshold", type=float, help="landslide probability threshold")
    parser.add_argument(
        "--tune-threshold",
        action="store_true",
        help="pick the threshold on val (max landslide F1 over all its pixels, shrunk toward "
        "0.5 when it has few landslide pixels; F1 plateau reported), store it in the run, "
        "then evaluate",
    )
    parser.add_argument(
        "--tune-metric",
        choices=("f1", "miou"),
        default="f1",
        help="what --tune-threshold maximizes (default f1; miou as in earlier releases)",
    )
    parser.add_argument(
        "--dem-nodata",
        type=float,
        help="DEM nodata value (default: the run's config.json; NaN always is)",
    )
    add_tta_arg(parser)
    add_precision_arg(parser)  # float32 unless asked: the same answer as predict and export
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the metrics and where they were written."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    return run_cli(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    result = evaluate_run(
        args.run_dir,
        data=args.data,
        split=args.split,
        threshold=args.threshold,
        tune_threshold=args.tune_threshold,
        dem_nodata=args.dem_nodata,
        tta=args.tta,
        tta_transforms=args.tta_transforms,
        precision=args.precision,
        tune_metric=args.tune_metric,
        split_dir=args.split_dir,
    )
    shown = {k: result[k] for k in METRIC_KEYS if k in result}
    print(json.dumps(shown, indent=2))
    print(format_metrics(result))
    if "split" in result:
        role = result.get("split_role", result["split"])
        print(f"split      {role} ({result['n_tiles']} tiles, threshold {result['threshold']:.3f})")
    if result.get("n_tiles_no_dem"):
        print(
            f"left out   {result['n_tiles_no_dem']} tiles whose DEM has no valid cell "
            "(predict gives them nodata)"
        )
    if result.get("threshold_plateau"):
        lo, hi = result["threshold_plateau"]
        print(f"F1 plateau thresholds {lo:g}..{hi:g} (F1 within 0.01 of the best on val)")
    if result["file"] is None:
        raise UserError(f"the metrics above could not be saved: {result['write_error']}")
    path = Path(args.run_dir) / result["file"]
    note = (
        ""
        if result["file"] == "metrics.json"
        else " (not metrics.json: other data, split or threshold)"
    )
    print(f"wrote {path}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
