"""Per-band normalisation and resizing of multi-band inputs, in TensorFlow ops.

The multi-band twin of ``landslide_tf.data.preprocess``: the ``l4s``/``folder`` data pipeline
runs ``preprocess_bands`` eagerly on every tile and ``landslide_tf.inference.band_inference`` traces
the very same function into the exported SavedModel, so training, evaluation, prediction and
the export see identical inputs.

Order: normalise each band with the training statistics (``standard``:
``(x - a) / b``; ``percentile``: ``clip((x - a) / (b - a), 0, 1)``), set missing values
(NaN, a raster's nodata) to 0, then bilinear resize (antialiased when shrinking) to the
training size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from landslide_tf.data.preprocess import preprocess
from landslide_tf.data.spec import multiband_spec

EPSILON = 1e-6


def preprocess_bands(
    x: tf.Tensor, norm: dict[str, Any], size: int | Sequence[int] = 128
) -> tf.Tensor:
    """User-unit bands ``(..., H, W, C)`` -> network input ``(..., size, size, C)`` float32."""
    names = [str(i + 1) for i in range(len(norm["params"]))]
    return preprocess(x, None, multiband_spec(names, norm["method"], norm["params"], size=size))
