"""``python -m landslide_tf.export``: write a run's best model as a TensorFlow SavedModel.

Usage::

    python -m landslide_tf.export RUN_DIR [RUN_DIR ...] --out DIR [--dem-nodata V]
        [--threshold T] [--tta | --no-tta] [--tta-transforms dihedral] [--precision float32] [--overwrite]

Several run directories export ONE SavedModel (an ensemble) with the same signatures, whose
probability is the mean of the members' probabilities; the members must share the input.

The library side is ``landslide_tf.inference.export``.
"""

from __future__ import annotations

import argparse
import logging

from landslide_tf.cli.common import ArgumentParser, add_precision_arg, add_tta_arg, run_cli


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m landslide_tf.export`` argument parser."""
    parser = ArgumentParser(
        prog="python -m landslide_tf.export",
        description="Write a run's best model as a TensorFlow SavedModel with preprocessing.",
    )
    parser.add_argument(
        "run_dir",
        nargs="+",
        help="training run directory (config.json + best.keras); several: one ensemble "
        "SavedModel averaging their probabilities",
    )
    parser.add_argument("--out", required=True, help="SavedModel directory to write")
    parser.add_argument(
        "--dem-nodata", type=float, default=None, help="DEM nodata value (NaN always is)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="threshold of the 'mask' output (default: the run's, tuned if threshold.json)",
    )
    add_tta_arg(parser)
    add_precision_arg(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    def body() -> int:
        from landslide_tf.inference.export import describe, export_ensemble, export_run

        if len(args.run_dir) > 1:
            export, source = export_ensemble, args.run_dir
        else:
            export, source = export_run, args.run_dir[0]
        out = export(
            source,
            args.out,
            dem_nodata=args.dem_nodata,
            overwrite=args.overwrite,
            tta=args.tta,
            tta_transforms=args.tta_transforms,
            threshold=args.threshold,
            precision=args.precision,
        )
        print(f"wrote {out}")
        print(describe(out))
        return 0

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
