"""The run's validation-tuned decision threshold: ``run_dir/threshold.json``, one reader, one writer.

``evaluate --tune-threshold`` writes it (:func:`write_threshold`); training, evaluation,
inference, export and the studies read it (:func:`read_threshold`). A pixel is landslide when
``probability >= threshold`` everywhere (``landslide_tf.metrics.segmentation`` and the Keras
training metrics of ``landslide_tf.metrics.keras_metrics``). No keras import here.

File: ``{"threshold": 0.42, "metric": "miou", "split": "val", "tta": false}``; only
``threshold`` is required.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from landslide_tf.errors import DataError
from landslide_tf.files import atomic_write_json

__all__ = ["THRESHOLD_FILE", "read_threshold", "threshold_path", "write_threshold"]

#: The file name, inside a run directory, of the validation-tuned threshold.
THRESHOLD_FILE = "threshold.json"


def threshold_path(run_dir: str | Path) -> Path:
    """``run_dir/threshold.json``."""
    return Path(run_dir) / THRESHOLD_FILE


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
        value = float(json.loads(path.read_text())["threshold"])
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
