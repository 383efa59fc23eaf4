"""Evaluate a trained run on a whole split: mIoU, per-class IoU, AUC, precision, recall, F1.

Metrics are accumulated over every pixel of the split with
``landslide_tf.metrics.segmentation.SegmentationMetrics`` (not averaged per batch). mIoU is the mean of the
background IoU and the landslide IoU; precision, recall and F1 are for the landslide class.

Command line::

    python -m landslide_tf.evaluate runs/unetpp_spatial_ctx-dice-s42
    python -m landslide_tf.evaluate RUN_DIR --split val --threshold 0.4
    python -m landslide_tf.evaluate RUN_DIR --tune-threshold

Results go to ``RUN_DIR/metrics.json`` for the test split at the run's own threshold, and to
``RUN_DIR/metrics_<split>.json`` when another split is asked for or the threshold is
overridden (``--threshold`` or ``--tune-threshold``); a TTA, precision or ``--dem-nodata``
other than the run's adds ``_tta``/``_notta``, ``_<precision>`` or ``_nodata``, so the
training result is never overwritten silently.

A tile whose DEM has no valid cell (all NaN or the DEM nodata value) is left out of the
scores and counted in ``n_tiles_no_dem``: predict, scenes and the SavedModel give it NaN
(nodata) probabilities, so there is no prediction of it to score.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landslide_tf.errors import UserError, describe_os_error
from landslide_tf.files import atomic_write_json
from landslide_tf.inference.predictor import load_inference_model
from landslide_tf.inference.settings import INFERENCE_PRECISION
from landslide_tf.inference.tta import DEFAULT_TRANSFORMS, apply_model, check_transforms
from landslide_tf.metrics.segmentation import SCORE_KEYS
from landslide_tf.metrics.thresholds import (
    TUNE_METRIC,
    read_threshold_info,
    validate_threshold,
    write_threshold,
)
from landslide_tf.training.precision import model_precision
from landslide_tf.training.runs import (
    ALL,
    EVAL_SPLITS,
    dataset_options,
    read_run_config,
    run_threshold,
    scored_splits,
)

if TYPE_CHECKING:
    import keras

    from landslide_tf.training.config import TrainConfig

logger = logging.getLogger(__name__)

#: Keys of a metrics file, in print order.
METRIC_KEYS = (*SCORE_KEYS, "threshold", "n_tiles")


def accumulate(
    model: keras.Model,
    samples: list,
    batch_size: int = 8,
    tta: bool = False,
    transforms: str = DEFAULT_TRANSFORMS,
    **data_options: Any,
) -> tuple[Any, int]:
    """Run ``model`` over ``samples`` and accumulate whole-split pixel statistics.

    Args:
        model: maps ``(N, H, W, C)`` to ``(N, H, W, 1)`` probabilities.
        samples: ``landslide_tf.data.Sample`` list.
        batch_size: tiles per forward pass.
        tta: average over transformed copies of each tile (``landslide_tf.inference.tta``).
        transforms: which copies: ``"flips"`` (four) or ``"dihedral"`` (eight).
        **data_options: preprocessing options for ``make_dataset`` (see ``dataset_options``).

    Returns:
        ``(metrics, n_no_dem)``: a ``landslide_tf.metrics.segmentation.SegmentationMetrics``
        holding every pixel of ``samples`` except those of the tiles whose DEM has no valid
        cell, and the number of such tiles (``no_dem_tiles``: predict and the SavedModel give
        them NaN, nodata, so they are left out of the scores as they are out of the maps).

    Raises:
        UserError: an empty ``samples``, no tile with a valid DEM cell, or the model gives NaN
            or infinite probabilities.
    """
    from landslide_tf.data.pipeline import make_dataset
    from landslide_tf.data.readers import summarized_notes
    from landslide_tf.metrics.segmentation import SegmentationMetrics

    if not samples:
        raise UserError("the split is empty: nothing to evaluate")
    dataset = make_dataset(
        samples, batch_size=batch_size, shuffle=False, augment=False, cache=False, **data_options
    )
    no_dem = no_dem_tiles(samples, data_options["spec"], data_options.get("data_format"))
    if no_dem.all():
        nodata = data_options["spec"].nodata
        extra = f" or {nodata:g}" if nodata is not None else ""
        raise UserError(
            f"none of the {len(samples)} tiles has a valid DEM cell (every cell NaN{extra}): "
            "nothing to score; is --dem-nodata right?"
        )
    metrics = SegmentationMetrics()
    start = 0
    with summarized_notes():  # tiles are decoded while iterating: one line per kind of note
        for x, y in dataset:  # x (B, H, W, C), y (B, H, W, 1)
            # (B, H, W, 1); eager: no tracing for a few batches
            prob = apply_model(lambda t: model(t, training=False), x, tta, transforms)
            prob = np.asarray(prob, dtype=np.float32)
            bad = int((~np.isfinite(prob)).sum())
            if bad:
                raise UserError(
                    f"model output is not finite: {bad} of {prob.size} probabilities in a "
                    "batch are NaN or inf (diverged weights or non-finite inputs?)"
                )
            keep = ~no_dem[start : start + prob.shape[0]]  # (B,) in the order of samples
            start += prob.shape[0]
            metrics.update(np.asarray(y)[keep], prob[keep])
    return metrics, int(no_dem.sum())


def no_dem_tiles(samples: list, spec: Any, data_format: str | None = None) -> np.ndarray:
    """``(N,)`` bool: whether each tile's DEM has no valid cell (all NaN or ``spec.nodata``).

    The rule of ``landslide_tf.inference.predictor.no_dem_as_nodata`` (predict, scenes and
    the SavedModel give such a tile NaN probabilities), applied to the DEM that
    ``landslide_tf.data.formats.read_tile`` reads for the pipeline; all False when the input
    has no separate DEM.
    """
    from landslide_tf.data.formats import read_tile

    missing = np.zeros(len(samples), dtype=bool)
    if not spec.uses_dem:
        return missing
    for i, sample in enumerate(samples):
        _, dem, _, _ = read_tile(sample, spec, data_format)
        if dem is None:
            continue
        dem = np.asarray(dem, dtype=np.float32)
        valid = np.isfinite(dem)
        if spec.nodata is not None:
            valid &= dem != np.float32(spec.nodata)
        missing[i] = not valid.any()
    return missing


def metrics_filename(
    split: str,
    threshold_overridden: bool,
    tta: str | None = None,
    precision: str | None = None,
    nodata_changed: bool = False,
    dataset: str | None = None,
) -> str:
    """Where an evaluation's metrics go, named by the settings that differ from training's.

    ``metrics.json`` is the training result: the test split at the run's threshold, TTA
    setting and DEM nodata, in float32. Another split or threshold gives
    ``metrics_<split>.json``; a TTA, precision or DEM nodata other than the run's adds
    ``_tta``/``_notta``, ``_<precision>`` and ``_nodata``, so an evaluation with other
    settings never overwrites the training result. Another dataset (``dataset``: its name)
    adds ``_on-<name>``.
    """
    nodata = "nodata" if nodata_changed else None
    other = f"on-{re.sub(r'[^A-Za-z0-9._-]+', '_', dataset)}" if dataset else None
    suffix = "".join(f"_{part}" for part in (tta, precision, nodata, other) if part)
    if split == "test" and not threshold_overridden and not suffix:
        return "metrics.json"
    return f"metrics_{split}{suffix}.json"


def tta_suffix(tta: bool, transforms: str, config: TrainConfig) -> str | None:
    """The metrics-file part naming a TTA setting other than the run's (None: the run's)."""
    if tta == bool(config.tta) and (not tta or transforms == config.tta_transforms):
        return None
    if not tta:
        return "notta"
    return "tta" if transforms == DEFAULT_TRANSFORMS and not config.tta else transforms


def evaluate_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    split: str = "test",
    threshold: float | None = None,
    tune_threshold: bool = False,
    dem_nodata: float | None = None,
    tta: bool | None = None,
    precision: str | None = INFERENCE_PRECISION,
    tune_metric: str = TUNE_METRIC,
    tta_transforms: str | None = None,
    split_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``best.keras`` of a run on one split and write the metrics file.

    Args:
        run_dir: a directory written by ``landslide_tf.training.train``.
        data: dataset folder or zip, overriding the one in ``config.json``: the same data
            moved (the run's lists apply), or another dataset with ``split_dir`` or
            ``split="all"``.
        split: ``"test"``, ``"val"`` or ``"train"`` (from the run's split files, or from
            ``split_dir``), or ``"all"``: every tile of the dataset.
        threshold: probability threshold for the landslide class; default the run's: the
            tuned one in ``threshold.json`` if any, else ``config.threshold`` (0.5 unless
            trained with ``--threshold``).
        tune_threshold: choose the threshold on the validation split (the selection split
            of a ``--select-from-train`` run) over all its pixels: the one that maximizes
            ``tune_metric``, shrunk toward 0.5 when the split has few landslide pixels, with
            the F1 plateau (``landslide_tf.metrics.thresholds.tune_threshold``); store it in
            ``run_dir/threshold.json`` (the run's threshold from then on), then evaluate
            ``split`` with it.
        dem_nodata: DEM nodata value overriding the run's ``dem_nodata``.
        tta: flip averaging (``landslide_tf.inference.tta``); default the run's ``tta``.
        precision: compute in this precision: ``float32`` (default, as every inference path,
            so evaluate, predict and the SavedModel agree), ``auto``, ``bfloat16``,
            ``float16``; ``None`` = the precision the run trained in.
        tune_metric: what ``tune_threshold`` maximizes: ``f1`` (landslide F1, default) or
            ``miou`` (the choice of earlier releases).
        tta_transforms: what ``tta`` averages, ``"flips"`` or ``"dihedral"`` (default: the
            run's ``tta_transforms``); only with ``tta`` on.
        split_dir: the split lists of ``data`` (``train.txt`` + ``val.txt`` [+ ``test.txt``]),
            taken as they are: score a dataset the run never saw on its own lists. The
            metrics file then names the dataset (``metrics_<split>_on-<name>.json``).

    Returns:
        Metrics dict with the keys of ``METRIC_KEYS`` plus ``n_pixels``, ``split``,
        ``n_tiles_no_dem`` (tiles whose DEM has no valid cell, left out of the scores as
        predict leaves them out of its maps), ``dem_nodata`` and ``file`` (the name of the
        JSON file written inside ``run_dir``).
    """
    if split not in EVAL_SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(EVAL_SPLITS)}")
    if threshold is not None and tune_threshold:
        raise UserError("give either --threshold or --tune-threshold, not both")
    own_lists = split_dir is None and split != ALL  # the run's split (selection and all)
    if tune_threshold and not own_lists:
        raise UserError(
            "--tune-threshold stores the run's threshold, tuned on its own val split; with "
            "--split-dir or --split all give --threshold instead"
        )
    validate_threshold(threshold)
    if tta_transforms is not None:
        check_transforms(tta_transforms)
    run_dir = Path(run_dir)
    config, raw = read_run_config(run_dir)
    nodata_changed = dem_nodata is not None and dem_nodata != config.dem_nodata
    if dem_nodata is not None:
        if not math.isfinite(dem_nodata):
            raise UserError(f"--dem-nodata must be a finite number, got {dem_nodata}")
        config = dataclasses.replace(config, dem_nodata=float(dem_nodata))
    model = load_inference_model(run_dir, precision)
    used_precision = model_precision(model)
    splits = scored_splits(config, run_dir, data, split, split_dir)
    options = dataset_options(config, raw)
    batch = max(1, min(8, config.batch_size * 4))
    tta = bool(config.tta if tta is None else tta)
    if tta_transforms is not None and not tta:
        raise UserError("--tta-transforms needs flip averaging on: add --tta")
    transforms = tta_transforms or config.tta_transforms
    if tune_threshold:
        check_tuning_settings(config, tta, transforms, used_precision, nodata_changed)
    scoring = {"tta": tta, "transforms": transforms, **options}
    if not splits[split]:
        where = split_dir or config.split_dir or run_dir
        raise UserError(
            f"no {split} split (the split lists in {where} have none): evaluate --split val"
        )

    overridden = threshold is not None or tune_threshold
    from landslide_tf.metrics.thresholds import tune_threshold as robust_threshold
    from landslide_tf.training.selection import split_role

    tuning = None
    if tune_threshold:
        val, val_no_dem = accumulate(model, splits["val"], batch_size=batch, **scoring)
        try:
            tuning = robust_threshold(val, metric=tune_metric)
        except ValueError as exc:
            raise UserError(f"cannot tune the threshold: {exc}") from None
        tuning.update(split="val", split_role=split_role(config, "val"), tta=tta)
        if tta:
            tuning["tta_transforms"] = transforms
        threshold = tuning["threshold"]
        logger.info(
            "threshold tuned on %s (best %s at %.4f, %d landslide pixels, weight %.2f): %.4f; "
            "F1 plateau [%.3f, %.3f]",
            tuning["split_role"],
            tune_metric,
            tuning["best"],
            tuning["n_positive"],
            tuning["shrink_weight"],
            threshold,
            *tuning["plateau"],
        )
        write_threshold(run_dir, **tuning)
        tuned = (val, val_no_dem) if split == "val" else None
    else:
        tuned = None
        if threshold is None:
            tuning = read_threshold_info(run_dir)
    if threshold is None:
        threshold = run_threshold(run_dir, config)
    stats, n_no_dem = tuned or accumulate(model, splits[split], batch_size=batch, **scoring)
    if n_no_dem:
        logger.warning(
            "%d %s tiles have no valid DEM cell: left out of the scores (predict gives them "
            "nodata)",
            n_no_dem,
            split,
        )
    result = {k: _plain(v) for k, v in stats.result(threshold=threshold).items()}
    result["n_tiles_no_dem"] = n_no_dem
    result["split"] = split
    result["tta"] = tta
    if tta:
        result["tta_transforms"] = transforms
    result["inference_precision"] = used_precision  # "precision" is the metric
    result["dem_nodata"] = config.dem_nodata
    role = split_role(config, split) if own_lists else split
    if not own_lists:  # not the run's lists: name what was scored
        result["data"] = str(data if data is not None else config.data)
        if split_dir is not None:
            result["split_dir"] = str(split_dir)
    if role != split:
        result["split_role"] = role
        result["protocol"] = "select-from-train"
    if tune_threshold:
        result["threshold_tuned_on"] = "val"
    if tuning is not None and abs(float(tuning["threshold"]) - float(threshold)) < 1e-9:
        result["threshold_plateau"] = tuning.get("plateau")
        result["threshold_metric"] = tuning.get("metric")
    for key, value in list(result.items()):
        if isinstance(value, float) and not math.isfinite(value):
            result[key] = None  # JSON has no NaN: null, with the reason beside it
            result[f"{key}_note"] = (
                f"undefined: the {split} split has no landslide pixels or no background pixels"
                if key == "auc"
                else "undefined on this split"
            )
    name = metrics_filename(
        split,
        overridden,
        tta=tta_suffix(tta, transforms, config),
        precision=None if used_precision == INFERENCE_PRECISION else used_precision,
        nodata_changed=nodata_changed,
        dataset=None if own_lists else Path(result["data"]).name,
    )
    try:
        atomic_write_json(run_dir / name, result)
    except OSError as exc:  # a read-only run dir: the metrics are still returned
        logger.warning("could not save %s: %s", run_dir / name, exc)
        return {**result, "file": None, "write_error": describe_os_error(exc)}
    logger.info("wrote %s", run_dir / name)
    return {**result, "file": name}


def check_tuning_settings(
    config: TrainConfig, tta: bool, transforms: str, precision: str, nodata_changed: bool
) -> None:
    """Refuse ``--tune-threshold`` under inference settings other than the run's own.

    The tuned threshold is stored in the run and used by predict, export and every later
    evaluate with the run's averaging, in float32 and with the run's DEM nodata; tuned on
    other probabilities, it would threshold the exported mask at a value chosen for another
    model output.

    Raises:
        UserError: naming what differs.
    """
    differs = []
    if tta != bool(config.tta):
        differs.append("--tta" if tta else "--no-tta")
    elif tta and transforms != config.tta_transforms:
        differs.append(f"--tta-transforms {transforms}")
    if precision != INFERENCE_PRECISION:
        differs.append(f"--precision ({precision})")
    if nodata_changed:
        differs.append("--dem-nodata")
    if differs:
        raise UserError(
            f"--tune-threshold stores the run's threshold, which predict and export apply "
            f"with the run's own settings; {', '.join(differs)} would tune it on other "
            "probabilities: tune without them (score other settings with --threshold)"
        )


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value)
    return value


def finish_run(config: TrainConfig, run_dir: Path, splits: dict[str, list]) -> dict[str, Any]:
    """After fitting: tune the threshold on val if asked, then score ``config.test_split``.

    Returns:
        The metrics of the scored split (``split`` key says which), or, when nothing is
        scored, the tuned validation metrics (if any) plus ``note``.
    """
    tuned: dict[str, Any] = {}
    if config.tune_threshold:
        tuned = evaluate_run(run_dir, split="val", tune_threshold=True)
        tuned.pop("file", None)
    target = config.test_split
    note = None
    if target == "test" and not splits["test"]:
        note = (
            f"no test split ({config.split_dir} has no test.txt): test metrics skipped; "
            "--test-split val scores val"
        )
    elif target == "none":
        note = "--test-split none: no split scored"
    if note is not None:  # the CLI prints it
        return {**tuned, "note": note}
    stored = read_threshold_info(run_dir) if target == "val" else None
    if stored and stored.get("split") == "val" and stored.get("split_role", "val") == "val":
        logger.warning(
            "%s: val is scored at the threshold tuned on val itself (threshold.json): an "
            "optimistic score; --select-from-train tunes on a selection carved from train",
            run_dir,
        )
    metrics = evaluate_run(run_dir, split=target)
    metrics.pop("file", None)
    return metrics
