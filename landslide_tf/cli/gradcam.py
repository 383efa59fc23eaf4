"""``python -m landslide_tf.gradcam``: class activation maps of a trained run (see
``landslide_tf.explain``)."""

from __future__ import annotations

import argparse
import logging

from landslide_tf.cli.common import ArgumentParser, run_cli
from landslide_tf.errors import UserError
from landslide_tf.explain.explain import explain_run
from landslide_tf.explain.targets import EPSILON, METHODS, TARGETS
from landslide_tf.training.runs import EVAL_SPLITS


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m landslide_tf.gradcam",
        description="Class activation maps of a trained run on its test tiles, with the share "
        "of CAM energy inside the true landslide region.",
    )
    parser.add_argument("run_dir", help="run directory (config.json, best.keras, test.txt)")
    parser.add_argument("--data", default=None, help="dataset folder or zip (default: the run's)")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/gradcam_M)")
    parser.add_argument("--layer", default=None, help="layer to explain (default: per model)")
    parser.add_argument("--method", default="gradcam", choices=METHODS)
    parser.add_argument("--target", default="predicted", choices=TARGETS)
    parser.add_argument("--n", type=int, default=8, help="number of tiles (default 8)")
    parser.add_argument(
        "--split",
        default="test",
        choices=EVAL_SPLITS,
        help="default: test; all = every tile of the dataset (a dataset the run never saw)",
    )
    parser.add_argument(
        "--split-dir",
        help="train.txt + val.txt [+ test.txt] of --data, taken as they are (default: the "
        "run's lists)",
    )
    parser.add_argument("--threshold", type=float, default=None, help="default: the run's")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per CAM batch")
    parser.add_argument(
        "--linear", action="store_true", help="explain the mean logit (ReplaceToLinear)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the ``landslide_tf.explain`` docstring."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run_cli(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise UserError("--n must be at least 1")
    if args.batch_size < 1:  # was taken as 1 without a word
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    summary = explain_run(
        args.run_dir,
        data=args.data,
        out=args.out,
        layer=args.layer,
        method=args.method,
        target=args.target,
        n=args.n,
        split=args.split,
        threshold=args.threshold,
        batch_size=args.batch_size,
        linear=args.linear,
        split_dir=args.split_dir,
    )
    energy, area = summary["mean_energy_inside"], summary["mean_area_share"]
    print(
        f"{summary['model']}: {summary['method']} @ {summary['layer']}, target "
        f"{summary['target']}, {summary['n_tiles']} tile(s)"
    )
    if energy is not None:
        print(
            f"CAM energy inside the true landslide: {energy:.3f} (mask area share {area:.3f}, "
            f"lift {energy / max(area, EPSILON):.2f}x) over {summary['n_tiles_scored']} tile(s)"
        )
    elif summary["n_tiles_with_landslide"] == 0:
        print("no tile with a landslide: no energy share")
    else:
        print("no energy share: every map of a landslide tile is zero")
    if summary["n_zero_maps"]:
        print(
            f"{summary['n_zero_maps']} all-zero map(s): no positive evidence at layer "
            f"{summary['layer']} (try another --layer or --method)"
        )
    print(f"wrote {summary['out']}/grid.png, energy.json, energy.csv and one PNG per tile")
    return 0
