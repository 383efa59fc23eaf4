"""Datasets of every format (bijie, l4s, folder): find, split, check, and the input spec.

See ``docs/ARCHITECTURE.md`` for the contract and ``docs/readme_data.md`` for the layouts.
Nothing imported here loads TensorFlow, so ``python -m landslide_tf.data check`` starts
fast: the tf.data pipeline (``make_dataset``, ``load_tile``, ``load_tiles``,
``landslide_fraction``) lives in ``landslide_tf.data.pipeline``.
"""

from __future__ import annotations

from landslide_tf.data.archive import expected_layout, open_dataset, safe_extract
from landslide_tf.data.bijie import find_samples
from landslide_tf.data.check import CheckReport, check_dataset
from landslide_tf.data.formats import (
    FORMATS,
    default_spec,
    detect_format,
    find_format_samples,
    plan_splits,
    read_tile,
)
from landslide_tf.data.readers import read_dem, read_mask, read_rgb
from landslide_tf.data.sample import Sample
from landslide_tf.data.spec import Band, InputSpec, bijie_spec, multiband_spec
from landslide_tf.data.split import make_split, read_split, write_split
from landslide_tf.data.stats import dem_statistics, training_statistics
from landslide_tf.data.synthetic import default_data_dir, ensure_default_dataset, synthesize

__all__ = [
    "FORMATS",
    "Band",
    "CheckReport",
    "InputSpec",
    "Sample",
    "bijie_spec",
    "check_dataset",
    "default_data_dir",
    "default_spec",
    "dem_statistics",
    "detect_format",
    "ensure_default_dataset",
    "expected_layout",
    "find_format_samples",
    "find_samples",
    "make_split",
    "multiband_spec",
    "open_dataset",
    "plan_splits",
    "read_dem",
    "read_mask",
    "read_rgb",
    "read_split",
    "read_tile",
    "safe_extract",
    "synthesize",
    "training_statistics",
    "write_split",
]
