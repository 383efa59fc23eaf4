"""One training run end to end: fit (or resume), then score it and draw its pictures.

``train(config)`` is what ``python -m landslide_tf.train`` runs and what a study runs for each
of its cells: ``landslide_tf.training.train.fit_run`` fits the model (validating the config
and the run directory before anything is written), then the loss curve is drawn, the
threshold tuned on the selection split (``--tune-threshold``), the test split scored
(``metrics.json``) and a few test tiles drawn (``predictions.png``).

Example:
    >>> from landslide_tf.training.config import TrainConfig
    >>> train(TrainConfig(model="unet", epochs=2, image_size=64))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from landslide_tf.evaluation.evaluate import finish_run
from landslide_tf.evaluation.plots import plot_loss_curves, plot_run_predictions
from landslide_tf.files import missing_folders, remove_created
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.runstate import HISTORY_FILE, STATE_FILE, RunLock
from landslide_tf.training.train import fit_run, run_directory


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
    run_dir = run_directory(config)
    made = missing_folders(run_dir)  # the run folder and the parents (runs/) it creates
    try:
        with RunLock(run_dir, "training"):  # a second process on this run dir stops here
            return _train_locked(config, force, verbose)
    except BaseException:
        if made and not (run_dir / STATE_FILE).exists():
            # nothing was trained: leave no half-made run directory (nor an empty runs/)
            remove_created(made)
        raise


def _train_locked(config: TrainConfig, force: bool, verbose: int | str) -> dict[str, Any]:
    fitted = fit_run(config, force=force, verbose=verbose)
    about: dict[str, Any] = {
        "run_dir": str(fitted.run_dir),
        "epochs_trained": fitted.epochs_trained,
        "resumed_from": fitted.resumed_from,
    }
    if fitted.metrics is not None:  # already finished: nothing was fitted
        return {**fitted.metrics, **about}
    config, run_dir, splits = fitted.config, fitted.run_dir, fitted.splits
    plot_loss_curves(
        {config.model: run_dir / HISTORY_FILE},
        run_dir / "loss_curve.png",
        title=f"{config.model} ({config.loss})",
    )
    metrics = finish_run(config, run_dir, splits)
    shown = "test" if splits["test"] else "val"
    from landslide_tf.training.selection import split_role

    # under --select-from-train the test tiles are the given val: titled "val (untouched)"
    role = split_role(config, shown)
    plot_run_predictions(config, run_dir, splits[shown], fitted.options, split=role)
    return {**metrics, **about}
