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

from landslide_tf.data.preprocess import resize

EPSILON = 1e-6


def normalize_bands(x: tf.Tensor, norm: dict[str, Any]) -> tf.Tensor:
    """Normalise ``(..., H, W, C)`` user-unit bands with ``norm`` (see ``data.bands``)."""
    x = tf.cast(tf.convert_to_tensor(x), tf.float32)
    params = [[float(a), float(b)] for a, b in norm["params"]]
    a = tf.constant([p[0] for p in params], tf.float32)
    b = tf.constant([p[1] for p in params], tf.float32)
    if norm["method"] == "standard":
        y = (x - a) / tf.maximum(b, EPSILON)
    elif norm["method"] == "percentile":
        y = tf.clip_by_value((x - a) / tf.maximum(b - a, EPSILON), 0.0, 1.0)
    else:
        raise ValueError(f"unknown band normalisation {norm['method']!r}")
    return tf.where(tf.math.is_finite(y), y, tf.zeros_like(y))


def preprocess_bands(
    x: tf.Tensor, norm: dict[str, Any], size: int | Sequence[int] = 128
) -> tf.Tensor:
    """User-unit bands ``(..., H, W, C)`` -> network input ``(..., size, size, C)`` float32."""
    return resize(normalize_bands(x, norm), size)
