"""Bijie-layout data: reader, split, tf.data pipeline, synthetic default dataset, checks.

See ``docs/ARCHITECTURE.md`` for the contract and ``docs/readme_data.md`` for the layout.
The TensorFlow-based names (``make_dataset``, ``dem_statistics``, ``landslide_fraction``)
are imported lazily, so ``python -m landslide_tf.data check`` starts without TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from landslide_tf.data.bijie import (
    Sample,
    expected_layout,
    find_samples,
    load_sample,
    open_dataset,
    read_dem,
    read_mask,
    read_rgb,
    safe_extract,
)
from landslide_tf.data.check import CheckReport, check_dataset
from landslide_tf.data.split import make_split, read_split, write_split
from landslide_tf.data.synthetic import default_data_dir, ensure_default_dataset, synthesize

if TYPE_CHECKING:
    from landslide_tf.data.pipeline import dem_statistics, landslide_fraction, make_dataset

_LAZY = {
    "make_dataset": "landslide_tf.data.bandpipe",  # dispatches Bijie vs multi-band samples
    "dem_statistics": "landslide_tf.data.pipeline",
    "landslide_fraction": "landslide_tf.data.pipeline",
    "load_arrays": "landslide_tf.data.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckReport",
    "Sample",
    "check_dataset",
    "default_data_dir",
    "dem_statistics",
    "ensure_default_dataset",
    "expected_layout",
    "find_samples",
    "landslide_fraction",
    "load_arrays",
    "load_sample",
    "make_dataset",
    "make_split",
    "open_dataset",
    "read_dem",
    "read_mask",
    "read_rgb",
    "read_split",
    "safe_extract",
    "synthesize",
    "write_split",
]
