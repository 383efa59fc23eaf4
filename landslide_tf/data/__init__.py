"""Bijie-layout data: reader, split, tf.data pipeline, synthetic default dataset, checks.

See ``docs/ARCHITECTURE.md`` for the contract and ``docs/readme_data.md`` for the layout.
"""

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
from landslide_tf.data.pipeline import dem_statistics, landslide_fraction, make_dataset
from landslide_tf.data.split import make_split
from landslide_tf.data.synthetic import default_data_dir, ensure_default_dataset, synthesize

__all__ = [
    "Sample",
    "default_data_dir",
    "dem_statistics",
    "ensure_default_dataset",
    "expected_layout",
    "find_samples",
    "landslide_fraction",
    "load_sample",
    "make_dataset",
    "make_split",
    "open_dataset",
    "read_dem",
    "read_mask",
    "read_rgb",
    "safe_extract",
    "synthesize",
]
