"""Command line: ``python -m landslide_tf.experiments STUDY --out OUT [--data DIR] [...]``.

Without ``--data`` the study runs on the synthetic default dataset (as ``train`` does).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

from landslide_tf.cli.common import ArgumentParser, add_precision_args, precision_from_args, run_cli
from landslide_tf.errors import UserError
from landslide_tf.experiments.study import SELECT_SPLITS, available_studies, load_study
from landslide_tf.training.config import STRATEGIES


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (flags override the study's settings)."""
    p = ArgumentParser(
        prog="python -m landslide_tf.experiments",
        description="Run a study (the paper's protocol) and write tables, figures and a "
        "README side by side with the paper's numbers.",
    )
    p.add_argument("study", nargs="?", help=f"study name ({', '.join(available_studies())}, "
                   "bands) or path to a study .json")  # fmt: skip
    p.add_argument(
        "--data", help="dataset folder or .zip (Bijie layout; default: the synthetic dataset)"
    )
    p.add_argument("--out", help="output folder (rerun with the same folder to resume)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--base-filters", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="tf.distribute strategy for every run (default: default)")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other training setting, e.g. --set depth=3 (JSON values)")  # fmt: skip
    p.add_argument("--seeds", type=int, help="repeat every run with N seeds (mean ± std)")
    p.add_argument("--select-on", choices=SELECT_SPLITS,
                   help="split of the stage-2 loss selection (the paper: test)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at once, each in its own process (one GPU each where several)")  # fmt: skip
    add_precision_args(p)  # issue 14: --precision (default auto) and --mixed-precision
    p.add_argument("--figure-tiles", type=int, default=4, help="test tiles in figures 5 and 6")
    p.add_argument("--list", action="store_true", help="list the known studies and exit")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and one line per epoch"
    )
    from landslide_tf.data.formats import add_data_format_args

    add_data_format_args(p)  # issue 13: --data-format, --bands, --band-norm
    return p


def _parse_sets(items: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            values[key.strip().replace("-", "_")] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip().replace("-", "_")] = raw
    return values


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 when every run finished, 1 when some failed, 2 on user error."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    if not args.verbose:  # tf.function retracing warnings: one per model, expected here
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return run_cli(
        lambda: _run(args, argv), interrupted="interrupted: rerun the same command to resume"
    )


def _run(args: argparse.Namespace, argv: list[str] | None) -> int:
    if args.list:
        for name in available_studies():
            print(name)
        print(
            "bands  (what each band set adds: RGB, + DEM, + slope, ...; see docs/readme_experiments.md)"
        )
        return 0
    if not args.study or not args.out:
        raise UserError("usage: python -m landslide_tf.experiments STUDY --out OUT [--data DIR]")
    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    if args.figure_tiles < 1:  # checked now, not after the study when the figures are drawn
        raise UserError(f"--figure-tiles must be at least 1, got {args.figure_tiles}")
    overrides = _parse_sets(args.set)
    flags = dict(epochs=args.epochs, base_filters=args.base_filters,
                 batch_size=args.batch_size, image_size=args.image_size, lr=args.lr,
                 strategy=args.strategy, precision=precision_from_args(args))  # fmt: skip
    overrides.update({k: v for k, v in flags.items() if v is not None})  # unset: --set stands
    from landslide_tf.experiments.bands import bands_main, format_overrides

    overrides.update(format_overrides(args))
    if args.study == "bands":  # issue 13: the band-set ablation
        shown = "python -m landslide_tf.experiments " + " ".join(
            sys.argv[1:] if argv is None else argv
        )
        return bands_main(args, overrides, lambda line: print(line, flush=True), command=shown)
    study = load_study(args.study).with_overrides(
        train=overrides, seeds=args.seeds, select_on=args.select_on
    )
    from landslide_tf.experiments.core import run_study

    raw = sys.argv[1:] if argv is None else argv
    command = "python -m landslide_tf.experiments " + " ".join(shlex.quote(a) for a in raw)
    outcome = run_study(study, args.data, args.out, jobs=args.jobs,
                        progress=lambda line: print(line, flush=True),
                        command=command, figures_n=args.figure_tiles, verbose=2 if args.verbose else 0)  # fmt: skip
    for name in ("table1.md", "table3.md"):
        print(f"\n{(outcome.out / name).read_text()}")
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) failed: "
              + ", ".join(r.name for r in outcome.failed), file=sys.stderr)  # fmt: skip
        return 1
    return 0
