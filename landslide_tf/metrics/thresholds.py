"""The run's validation-tuned decision threshold: ``run_dir/threshold.json``, one reader, one writer.

``evaluate --tune-threshold`` writes it (:func:`write_threshold`); training, evaluation,
inference, export and the studies read it (:func:`read_threshold`). A pixel is landslide when
``probability >= threshold`` everywhere (``landslide_tf.metrics.segmentation`` and the Keras
training metrics of ``landslide_tf.metrics.keras_metrics``). No keras import here.

File: ``{"threshold": 0.42, "metric": "f1", "split": "val", "tta": false, ...}``; only
``threshold`` is required (files of earlier releases hold the first four keys).

How the threshold is chosen (:func:`tune_threshold`, issue 21 "thresholds that travel"):

1. over every pixel of the selection split (the run's val), the grid threshold that
   maximises ``metric`` (landslide F1 by default; ``miou`` stays available);
2. shrunk toward 0.5 when the evidence is thin:
   ``threshold = 0.5 + w * (best - 0.5)`` with ``w = n_pos / (n_pos + SHRINK_PIXELS)``,
   ``n_pos`` the landslide pixels of the split. With ``SHRINK_PIXELS`` = 20000 a split
   with 2,000 landslide pixels (a few tiles) keeps 9 % of the move away from 0.5, one with
   200,000 (a real val of hundreds of tiles) 91 %;
3. the F1 plateau is reported: ``[lo, hi]``, the contiguous range of thresholds around the
   F1-best one whose F1 is within ``PLATEAU_TOLERANCE`` (0.01) of the best F1. A narrow
   plateau far from 0.5 is a threshold that will not travel to another area.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from landslide_tf.errors import DataError, UserError
from landslide_tf.files import atomic_write_json

__all__ = [
    "PLATEAU_TOLERANCE",
    "SHRINK_PIXELS",
    "THRESHOLD_FILE",
    "read_threshold",
    "read_threshold_info",
    "threshold_path",
    "tune_threshold",
    "write_threshold",
]

#: The file name, inside a run directory, of the validation-tuned threshold.
THRESHOLD_FILE = "threshold.json"

#: Landslide pixels of evidence at which the tuned threshold keeps half its distance from
#: 0.5 (the prior): ``w = n_pos / (n_pos + SHRINK_PIXELS)``. 20000 pixels is about
#: twenty 128 px tiles with 6 % landslide cover, i.e. a handful of scars: a judgement
#: call (not fitted), small enough that a real val of hundreds of tiles keeps its optimum.
SHRINK_PIXELS = 20000

#: F1 within this much of the best counts as the plateau.
PLATEAU_TOLERANCE = 0.01

#: The default metric the threshold maximises.
TUNE_METRIC = "f1"


def validate_threshold(threshold: float | None, name: str = "threshold") -> None:
    """``UserError`` (one line, naming ``name``: a flag such as ``--threshold``) unless
    ``threshold`` is None or in ``[0, 1]`` (NaN is not)."""
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise UserError(f"{name} must be in [0, 1], got {threshold}")


def tune_threshold(
    stats: Any,
    metric: str = TUNE_METRIC,
    shrink_pixels: float = SHRINK_PIXELS,
    tolerance: float = PLATEAU_TOLERANCE,
) -> dict[str, Any]:
    """The robust threshold of a split and how it was chosen (the ``threshold.json`` fields).

    Args:
        stats: a ``landslide_tf.metrics.segmentation.SegmentationMetrics`` holding every
            pixel of the selection split.
        metric: what the raw optimum maximises (``f1`` or another ``TUNABLE_METRICS``).
        shrink_pixels: ``K`` of the shrinkage weight ``n_pos / (n_pos + K)``; 0 = no
            shrinkage.
        tolerance: F1 tolerance of the plateau.

    Returns:
        ``threshold`` (shrunk, on the grid), ``metric``, ``best`` (the raw optimum),
        ``shrink_weight``, ``shrink_pixels``, ``n_positive``, ``n_pixels``, ``plateau``
        (``[lo, hi]`` of F1) and ``plateau_tolerance``.

    Example:
        >>> import numpy as np
        >>> from landslide_tf.metrics.segmentation import SegmentationMetrics
        >>> m = SegmentationMetrics(bins=100)
        >>> m.update(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.3, 0.1]))
        >>> info = tune_threshold(m, shrink_pixels=0)
        >>> info["best"] == info["threshold"], info["plateau"]
        (True, [0.31, 0.8])
    """
    if shrink_pixels < 0:
        raise ValueError(f"shrink_pixels must be >= 0, got {shrink_pixels}")
    best = float(stats.best_threshold(metric=metric))
    n_pos = int(stats.n_positive)
    weight = 1.0 if shrink_pixels == 0 else n_pos / (n_pos + float(shrink_pixels))
    shrunk = 0.5 + weight * (best - 0.5)
    shrunk = round(shrunk * stats.bins) / stats.bins  # on the grid, exact in the metrics
    f1_best = best if metric == "f1" else float(stats.best_threshold(metric="f1"))
    lo, hi = stats.plateau(f1_best, metric="f1", tolerance=tolerance)
    return {
        "threshold": float(shrunk),
        "metric": metric,
        "best": best,
        "shrink_weight": float(weight),
        "shrink_pixels": float(shrink_pixels),
        "n_positive": n_pos,
        "n_pixels": int(stats.n_pixels),
        "plateau": [lo, hi],
        "plateau_tolerance": float(tolerance),
    }


def threshold_path(run_dir: str | Path) -> Path:
    """``run_dir/threshold.json``."""
    return Path(run_dir) / THRESHOLD_FILE


def read_threshold_info(run_dir: str | Path) -> dict[str, Any] | None:
    """The whole ``threshold.json`` of a run (checked as :func:`read_threshold` does), or
    ``None`` when there is none.

    Raises:
        DataError: as :func:`read_threshold`, or a ``plateau`` that is not two numbers
            ``lo <= hi`` in ``[0, 1]`` (the commands print it as a range).
    """
    value = read_threshold(run_dir)
    if value is None:
        return None
    path = threshold_path(run_dir)
    info = json.loads(path.read_text())
    plateau = info.get("plateau")
    if plateau is not None and not _is_range(plateau):
        raise DataError(
            f"{path}: plateau {plateau!r} is not [lo, hi] in [0, 1]; "
            "run evaluate --tune-threshold again or delete it"
        )
    return {**info, "threshold": value}


def _is_range(value: Any) -> bool:
    """Whether ``value`` is ``[lo, hi]``: two numbers (not bools), ``0 <= lo <= hi <= 1``."""
    if not isinstance(value, list) or len(value) != 2:
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return False
    return 0.0 <= value[0] <= value[1] <= 1.0


def read_threshold(run_dir: str | Path) -> float | None:
    """The tuned threshold of a run, or ``None`` when the run has no ``threshold.json``.

    Example:
        >>> import tempfile
        >>> run = tempfile.mkdtemp()
        >>> read_threshold(run) is None
        True
        >>> write_threshold(run, 0.42, metric="miou")
        >>> read_threshold(run)
        0.42

    Args:
        run_dir: A run directory.

    Returns:
        The threshold in ``[0, 1]``, or ``None`` when the file does not exist.

    Raises:
        DataError: The file is damaged (not JSON, no ``threshold`` number, not in [0, 1]);
            one line naming the file and what to do.
    """
    path = threshold_path(run_dir)
    if not path.is_file():
        return None
    try:
        value = float(json.loads(path.read_text())["threshold"])  # not a dict: TypeError
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise DataError(
            f"{path} is damaged: run evaluate --tune-threshold again or delete it"
        ) from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise DataError(f"{path}: threshold {value} is not in [0, 1]; delete it or tune again")
    return value


def write_threshold(run_dir: str | Path, threshold: float, **info: Any) -> None:
    """Write ``run_dir/threshold.json`` atomically (a reader never sees half a file).

    Args:
        run_dir: An existing run directory.
        threshold: The tuned threshold, in ``[0, 1]``.
        **info: Extra JSON fields recorded beside it (``metric``, ``split``, ``tta``).

    Raises:
        ValueError: A threshold outside ``[0, 1]``.
    """
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    atomic_write_json(threshold_path(run_dir), {"threshold": value, **info})
