"""``python -m landslide_tf.train``: train one model, then print its test metrics.

Examples::

    python -m landslide_tf.train --model unetpp_spatial_ctx            # paper settings
    python -m landslide_tf.train --model unet --preset quick           # a few CPU minutes
    python -m landslide_tf.train --model resunet --loss focal --loss-kwargs alpha=0.25 gamma=2

Defaults (``--preset paper``) are the paper's (``landslide_tf.training.config.TrainConfig``);
``landslide_tf.training.recipe.PRESETS`` holds the others; explicit flags override a preset.
Rerunning the same command resumes after the last completed epoch; a finished run is not
retrained (``--force`` starts over).
"""

from __future__ import annotations

import argparse
import logging

from landslide_tf.cli.common import run_cli
from landslide_tf.cli.train_args import build_parser, config_from_args
from landslide_tf.experiments.run import train
from landslide_tf.metrics.segmentation import format_metrics


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: train, then print the test metrics."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_cli(
        lambda: _run(args),
        interrupted="interrupted: rerun the same command to resume after the last completed epoch",
    )


def _run(args: argparse.Namespace) -> int:
    if args.verbose == 2:
        logging.getLogger("landslide_tf").setLevel(logging.DEBUG)
    config = config_from_args(args)
    result = train(
        config, force=args.force, verbose="auto" if args.verbose is None else args.verbose
    )
    run_dir = result["run_dir"]
    if result["epochs_trained"] == 0:
        print(
            f"{run_dir} was already trained ({result['resumed_from']} epochs); "
            "reporting its metrics (--force retrains)"
        )
    if "note" in result:
        print(result["note"])
    if "split" in result:
        name = "metrics.json" if result["split"] == "test" else f"metrics_{result['split']}.json"
        role = result.get("split_role", result["split"])
        print(f"{role} metrics of {run_dir}/best.keras ({name}):")
        print(format_metrics(result))
        if result.get("threshold_plateau"):
            lo, hi = result["threshold_plateau"]
            print(f"F1 plateau (within 0.01 of the best F1 on val): thresholds {lo:g}..{hi:g}")
    return 0
