"""Segmentation metrics, all with one threshold rule: a pixel is landslide iff ``p >= t``.

- :mod:`~landslide_tf.metrics.segmentation`: ``SegmentationMetrics``, split-level metrics
  from probability histograms (numpy, no keras import), ``format_metrics``;
- :mod:`~landslide_tf.metrics.keras_metrics`: the Keras metrics compiled into training
  (``keras_metrics(threshold)``: mIoU, precision, recall in ``keras.ops``);
- :mod:`~landslide_tf.metrics.thresholds`: ``THRESHOLD_FILE`` and the one reader/writer of a
  run's tuned ``threshold.json``.

Import from those modules; this package imports nothing so that the numpy-only ones stay
free of keras.
"""
