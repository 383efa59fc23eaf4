"""Train one model with the paper's defaults; resumable, seeded, with a test evaluation at the end.

Command line::

    python -m landslide_tf.train --model unetpp_spatial_ctx            # paper settings
    python -m landslide_tf.train --model unet --preset quick           # a few CPU minutes
    python -m landslide_tf.train --model resunet --loss focal --loss-kwargs alpha=0.25 gamma=2

Defaults (``--preset paper``) are ``TrainConfig``'s, i.e. the paper's: Adam with learning rate
1e-5, batch size 2, 50 epochs, 128x128 inputs, dropout 0.5, RGB + DEM, and the loss each
family did best with (U-Net: BCE, ResUNet: WCE, U-Net++ variants: Dice). ``--preset quick``
(64x64, 8 base filters, depth 3, batch 8, lr 1e-3, 8 epochs) runs in a couple of CPU minutes;
explicit flags override the preset.

The run directory (default ``runs/<model>-<loss>-s<seed>``) receives ``config.json``, the
split files, ``best.keras`` (highest validation mIoU), ``last.keras`` + ``state.json``
(resume), ``history.csv``, TensorBoard ``logs/``, ``loss_curve.png``, ``predictions.png`` and
``metrics.json`` (test split, ``best.keras``). Rerunning the same command resumes after the
last completed epoch; a finished run is not retrained (``--force`` starts over).

This module holds the CLI and the ``train`` orchestration; checking the config and the run
directory is ``landslide_tf.training.rundir``'s, fitting the model ``landslide_tf.training.fit``'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from landslide_tf.cli.common import run_cli

# Re-exported: the command line lived here before it moved to train_args.
from landslide_tf.cli.train_args import (  # noqa: F401
    PRESETS,
    _add_faults_args,
    _parse_loss_kwargs,
    build_parser,
    config_from_args,
)
from landslide_tf.data.formats import resolve_data_config
from landslide_tf.errors import UserError
from landslide_tf.files import atomic_write_json
from landslide_tf.training import runstate as cb
from landslide_tf.training.acceleration import run_steps_per_execution
from landslide_tf.training.config import TrainConfig

# Re-exported: these names were defined here before the split and are imported from here.
from landslide_tf.training.fit import (  # noqa: F401
    TrainingDiverged,
    _derived_entries,
    _fit,
    _plot_test_predictions,
    _prepare_splits,
)
from landslide_tf.training.precision import (
    apply_precision,
    run_precision,
)
from landslide_tf.training.recipe import (
    finish_run,
    record_split_lists,
    validate_recipe,
)
from landslide_tf.training.rundir import (  # noqa: F401
    RESUME_FREE_FIELDS,
    RUN_ARTIFACTS,
    _check_same_config,
    _clear_run,
    _comparable,
    _resolve_data,
    check_loss,
    default_run_dir,
    validate_config,
)
from landslide_tf.training.runs import (  # noqa: F401  (load_run re-exported: the documented name)
    CONFIG_FILE,
    SPLITS,
    dataset_options,
    load_run,
    read_run_config,
)

logger = logging.getLogger(__name__)


def train(config: TrainConfig, *, force: bool = False, verbose: int | str = "auto") -> dict:
    """Train (or resume, or just report) one run and evaluate it on the test split.

    Args:
        config: the run configuration; ``loss=None`` is the paper's best loss for the family,
            ``data=None`` the synthetic dataset (generated on first use), ``run_dir=None``
            ``runs/<model>-<loss>-s<seed>``.
        force: delete an existing run in ``run_dir`` and train from scratch.
        verbose: Keras ``fit`` verbosity (1 = a progress bar per epoch, 2 = a line per epoch,
            ``"auto"`` = 1 when stdout is a terminal, else 2).

    Returns:
        Test metrics of ``best.keras`` (also in ``run_dir/metrics.json``): ``miou`` (mean of
        background and landslide IoU), ``iou_background``, ``iou_landslide``, ``auc``,
        ``precision``, ``recall``, ``f1``, ``accuracy``, ``threshold``, ``n_tiles``, plus
        ``run_dir``, ``epochs_trained`` (this call) and ``resumed_from`` (epochs done before).

    Raises:
        UserError: bad options, missing data, a different run in ``run_dir``.
        TrainingDiverged: the loss became NaN or infinite.
    """
    config = config.resolved()
    validate_config(config)
    validate_recipe(config)
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    run_dir = run_dir.expanduser().resolve()
    data_root = _resolve_data(config.data)
    config = dataclasses.replace(config, data=str(data_root), run_dir=str(run_dir))
    config = resolve_data_config(config, data_root)  # issue 13: format + bands

    if force and run_dir.exists():
        logger.info("--force: clearing %s", run_dir)
        _clear_run(run_dir, config.split_dir)
    stored = None
    if (run_dir / CONFIG_FILE).is_file():
        stored = _check_same_config(run_dir, config.to_dict())
    state = cb.read_state(run_dir) if stored is not None else None
    if state is not None:
        cb.roll_forward(run_dir, state)  # finish a save interrupted after its commit
    done = int(state["epochs_done"]) if state else 0
    if done > config.epochs:
        raise UserError(
            f"{run_dir} already has {done} epochs, more than --epochs {config.epochs}; "
            "use --force to retrain"
        )
    if done == config.epochs and (run_dir / "metrics.json").is_file():
        logger.info("%s is already trained (%d epochs): reporting its metrics", run_dir, done)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return {**metrics, "run_dir": str(run_dir), "epochs_trained": 0, "resumed_from": done}

    import keras

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:  # everything checked before config.json is written
        splits, strategy, global_batch = _prepare_splits(config, data_root, run_dir)
        raw, loss_kwargs = _run_entries(config, stored, splits["train"])
    except UserError:
        if created:  # do not leave a half-made run directory behind a bad argument
            shutil.rmtree(run_dir, ignore_errors=True)
        raise

    raw.update({**config.to_dict(), "loss_kwargs": loss_kwargs})
    raw.update(record_split_lists(config, run_dir))
    raw.update(run_precision(config, stored))  # issue 14: precision_used + precision_reason
    raw.update(run_steps_per_execution(config, global_batch, len(splits["train"])))
    config = dataclasses.replace(config, steps_per_execution=raw["steps_per_execution_used"])
    atomic_write_json(run_dir / CONFIG_FILE, raw)
    options = dataset_options(config, raw)

    apply_precision(raw["precision_used"])
    try:
        epochs_trained = _fit(
            config, run_dir, splits, options, loss_kwargs, strategy, global_batch, state, verbose
        )
    finally:
        apply_precision("float32")

    from landslide_tf.evaluation.plots import plot_loss_curves

    plot_loss_curves(
        {config.model: run_dir / cb.HISTORY_FILE},
        run_dir / "loss_curve.png",
        title=f"{config.model} ({config.loss})",
    )
    metrics = finish_run(config, run_dir, splits)
    _plot_test_predictions(config, run_dir, splits["test"] or splits["val"], options)
    return {
        **metrics,
        "run_dir": str(run_dir),
        "epochs_trained": epochs_trained,
        "resumed_from": done,
    }


def _run_entries(
    config: TrainConfig, stored: dict[str, Any] | None, train_samples: list
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The derived ``config.json`` entries and the loss arguments, checked."""
    if stored is not None:
        return stored, dict(stored.get("loss_kwargs") or {})
    raw = _derived_entries(config, train_samples)
    loss_kwargs = dict(config.loss_kwargs)
    if config.loss == "wce" and "class_weights" not in loss_kwargs:
        from landslide_tf.losses import wce_weights

        fraction = raw["landslide_fraction"]
        try:
            loss_kwargs["class_weights"] = [float(w) for w in wce_weights(fraction)]
        except ValueError:
            raise UserError(
                f"--loss wce: the training split has {100 * fraction:g} % landslide pixels, "
                "so class weights cannot be derived; give --loss-kwargs "
                "class_weights=[W0,W1] or use another --loss"
            ) from None
        raw["auto_loss_kwargs"] = ["class_weights"]
    check_loss(config.loss, loss_kwargs)
    return raw, loss_kwargs


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
    from landslide_tf.metrics.segmentation import format_metrics

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
        print(f"{result['split']} metrics of {run_dir}/best.keras ({name}):")
        print(format_metrics(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
