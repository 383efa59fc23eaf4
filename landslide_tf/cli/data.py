"""Command line for datasets.

``python -m landslide_tf.data synth --out DIR --n N --seed S`` writes the synthetic
Bijie-like dataset; ``python -m landslide_tf.data check DIR [--modalities rgb]`` validates a
dataset folder (any format: bijie, l4s, folder) or a Bijie .zip and lists every problem (exit 0 when
usable, 1 otherwise, 2 on usage errors); ``python -m landslide_tf.data chip ...`` cuts a
labelled scene into a ``folder``-format training set (see ``landslide_tf.data.chip``).
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from landslide_tf.cli.common import ArgumentParser, run_cli, seed_type
from landslide_tf.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m landslide_tf.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="write the synthetic Bijie-like dataset")
    synth.add_argument("--out", required=True, help="destination folder")
    synth.add_argument("--n", type=int, default=120, help="landslide tiles (default 120)")
    synth.add_argument("--seed", type=seed_type, default=0, help="random seed (default 0)")
    synth.add_argument(
        "--negatives", type=int, default=None, help="non-landslide tiles (default n // 4)"
    )
    synth.add_argument("--min-size", type=int, default=80, help="smallest tile side (px)")
    synth.add_argument("--max-size", type=int, default=300, help="largest tile side (px)")
    check = sub.add_parser("check", help="validate a dataset folder or .zip")
    check.add_argument(
        "root", help="dataset folder (bijie, l4s or folder format) or a Bijie dataset's .zip"
    )
    check.add_argument(
        "--modalities",
        default="rgb+dem",
        choices=("rgb+dem", "rgb", "dem"),
        help="which files are required (default rgb+dem)",
    )
    check.add_argument(
        "--data-format",
        choices=("bijie", "l4s", "folder"),
        help="dataset format (default: detected from the layout)",
    )
    check.add_argument(
        "--seed",
        type=seed_type,
        default=42,  # TrainConfig.seed: the split train makes by default
        help="split seed, as train --seed (default 42): the split train would use is shown",
    )
    check.add_argument(
        "--split-dir", help="split files train would reuse (train --split-dir); never written"
    )
    check.add_argument(
        "--negatives",
        default="off",
        type=_negatives,
        help="bijie: non-landslide tiles in the split, as train --negatives: off (default), "
        "on, or negatives per landslide tile",
    )
    _add_chip_parser(sub)  # issue 13
    return parser


def _add_chip_parser(sub: Any) -> None:
    """The ``chip`` subcommand of ``python -m landslide_tf.data``."""
    p = sub.add_parser("chip", help="cut a labelled scene into a folder-format training set")
    p.add_argument("--image", required=True, help="scene GeoTIFF (any band count)")
    p.add_argument("--mask", help="label raster (> 0 = landslide)")
    p.add_argument("--labels", help="label polygons (GeoJSON; shapefile with fiona)")
    p.add_argument("--dem", help="elevation GeoTIFF, warped onto every chip")
    p.add_argument("--out", required=True, help="new folder (images/, masks/, dem/)")
    p.add_argument("--size", type=int, default=256, help="chip side in px (default 256)")
    p.add_argument("--stride", type=int, default=128, help="step between chips (default 128)")
    p.add_argument("--min-landslide", type=float, default=0.0, help="least landslide share")
    p.add_argument("--negatives", type=float, default=0.2, help="negatives per landslide chip")
    p.add_argument("--max-nodata", type=float, default=0.5, help="most nodata share (0.5)")
    p.add_argument("--seed", type=seed_type, default=0, help="seed for the negatives (default 0)")
    p.add_argument(
        "--skip-empty",
        action="store_true",
        help="leave out chips that are 0 in every band (a zero border without a nodata tag)",
    )
    p.add_argument(
        "--mask-classes",
        type=_classes,
        help="mask values that are landslide, e.g. 1,2 (needed when the mask has several)",
    )


def _negatives(text: str) -> str:
    """``check --negatives`` checked as ``train --negatives`` is (a usage error, exit 2)."""
    from landslide_tf.data.bijie import parse_negatives

    try:
        parse_negatives(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _classes(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected integer mask values such as 1,2"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one mask value, e.g. 1,2")
    return values


def _run_chip(args: argparse.Namespace) -> int:
    """Run ``chip`` from parsed arguments; print the summary."""
    from landslide_tf.data.chip import chip_scene

    result = chip_scene(
        args.image,
        args.out,
        mask=args.mask,
        labels=args.labels,
        dem=args.dem,
        size=args.size,
        stride=args.stride,
        min_landslide=args.min_landslide,
        negatives=args.negatives,
        max_nodata=args.max_nodata,
        seed=args.seed,
        skip_empty=args.skip_empty,
        mask_classes=args.mask_classes,
    )
    print(result.format())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``synth`` or ``check`` command; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    return run_cli(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.command == "chip":
        return _run_chip(args)
    if args.command == "synth":
        from landslide_tf.data.synthetic import synthesize

        if args.n < 1 or (args.negatives is not None and args.negatives < 0):
            raise UserError(
                f"--n {args.n} --negatives {args.negatives}; expected n >= 1, negatives >= 0"
            )
        if not 16 <= args.min_size <= args.max_size:
            raise UserError(
                f"--min-size {args.min_size} --max-size {args.max_size}; expected 16 <= min <= max"
            )
        start = time.monotonic()
        out = synthesize(args.out, args.n, args.seed, args.negatives, args.min_size, args.max_size)
        negatives = args.n // 4 if args.negatives is None else args.negatives
        print(
            f"wrote {args.n} landslide and {negatives} non-landslide tiles to {out} "
            f"in {time.monotonic() - start:.1f} s"
        )
        return 0
    from landslide_tf.data.check import check_dataset

    report = check_dataset(
        args.root,
        args.modalities,
        data_format=args.data_format,
        seed=args.seed,
        split_dir=args.split_dir,
        negatives=args.negatives,
    )
    print(report.format())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
