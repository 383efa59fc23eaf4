"""The Keras metrics compiled into training, with the package's threshold rule ``p >= t``.

Keras' own ``Precision`` and ``Recall`` count ``p > t`` as positive; ``SegmentationMetrics``
(evaluation), the predictor and the exported ``mask`` use ``p >= t``. These metrics count
the pixel confusion matrix with ``p >= t`` in ``keras.ops`` (any backend), accumulated over
an epoch, so ``val_miou`` in training and ``miou`` in evaluation agree at every threshold,
including a probability exactly on it.

- :class:`BinaryMeanIoU` ``miou`` = ``(TN / (TN + FN + FP) + TP / (TP + FP + FN)) / 2``;
- :class:`BinaryPrecision` ``precision`` = ``TP / (TP + FP)``;
- :class:`BinaryRecall` ``recall`` = ``TP / (TP + FN)``;

with 0 for a zero denominator (scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = [
    "BinaryMeanIoU",
    "BinaryPrecision",
    "BinaryRecall",
    "ThresholdConfusion",
    "keras_metrics",
]


def _ratio(num: Any, den: Any) -> Any:
    """``num / den``, 0 where ``den == 0`` (weighted counts may be fractions: no floor at 1)."""
    positive = den > 0
    return ops.where(
        positive, num / ops.where(positive, den, ops.ones_like(den)), ops.zeros_like(num)
    )


@keras.saving.register_keras_serializable(package="landslide_tf")
class ThresholdConfusion(keras.metrics.Metric):
    """Pixel TP, FP, FN, TN at ``p >= threshold``, summed over batches; ``result`` = TP.

    Subclasses turn the four counts into a score.

    Args:
        threshold: Decision threshold on the probability, in ``[0, 1]``.
        name: Metric name.
        dtype: Dtype of the counts, default float32.

    Example:
        >>> m = ThresholdConfusion(threshold=0.5)
        >>> m.update_state([1.0, 0.0, 1.0], [0.5, 0.5, 0.2])
        >>> [float(v) for v in m.counts()]
        [1.0, 1.0, 1.0, 0.0]
    """

    def __init__(
        self, threshold: float = 0.5, name: str = "confusion", dtype: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(name=name, dtype=dtype or "float32", **kwargs)
        value = float(threshold)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"metric {name!r}: threshold must be in [0, 1], got {threshold}")
        self.threshold = value
        self.tp = self.add_variable((), initializer="zeros", dtype=self.dtype, name="tp")
        self.fp = self.add_variable((), initializer="zeros", dtype=self.dtype, name="fp")
        self.fn = self.add_variable((), initializer="zeros", dtype=self.dtype, name="fn")
        self.tn = self.add_variable((), initializer="zeros", dtype=self.dtype, name="tn")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add a batch: ``y_true`` in {0, 1}, ``y_pred`` probabilities, same pixel count."""
        truth = ops.reshape(ops.cast(ops.convert_to_tensor(y_true), self.dtype) > 0.5, (-1,))
        prob = ops.reshape(ops.cast(ops.convert_to_tensor(y_pred), "float32"), (-1,))
        pred = prob >= self.threshold  # the package's rule: p == t is landslide
        weight = ops.ones_like(prob, dtype=self.dtype)
        if sample_weight is not None:
            sw = ops.cast(ops.convert_to_tensor(sample_weight), self.dtype)
            shape = ops.shape(ops.convert_to_tensor(y_pred))
            weight = ops.reshape(ops.broadcast_to(sw, shape), (-1,))  # numpy broadcasting
        truth_f = ops.cast(truth, self.dtype) * weight
        not_truth_f = ops.cast(ops.logical_not(truth), self.dtype) * weight
        pred_f = ops.cast(pred, self.dtype)
        self.tp.assign_add(ops.sum(truth_f * pred_f))
        self.fp.assign_add(ops.sum(not_truth_f * pred_f))
        self.fn.assign_add(ops.sum(truth_f * (1.0 - pred_f)))
        self.tn.assign_add(ops.sum(not_truth_f * (1.0 - pred_f)))

    def counts(self) -> tuple[Any, Any, Any, Any]:
        """``(tp, fp, fn, tn)`` accumulated so far."""
        return (
            ops.convert_to_tensor(self.tp),
            ops.convert_to_tensor(self.fp),
            ops.convert_to_tensor(self.fn),
            ops.convert_to_tensor(self.tn),
        )

    def result(self) -> Any:
        return self.counts()[0]

    def reset_state(self) -> None:
        for variable in (self.tp, self.fp, self.fn, self.tn):
            variable.assign(ops.zeros((), dtype=self.dtype))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"threshold": self.threshold})
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class BinaryMeanIoU(ThresholdConfusion):
    """Mean of background and landslide IoU at ``p >= threshold``.

    Example:
        >>> m = BinaryMeanIoU(threshold=0.5)
        >>> m.update_state([[1, 0], [0, 0]], [[0.9, 0.6], [0.2, 0.1]])
        >>> round(float(m.result()), 6)  # (2/3 + 1/2) / 2
        0.583333
    """

    def __init__(self, threshold: float = 0.5, name: str = "miou", **kwargs: Any) -> None:
        super().__init__(threshold=threshold, name=name, **kwargs)

    def result(self) -> Any:
        tp, fp, fn, tn = self.counts()
        return (_ratio(tn, tn + fn + fp) + _ratio(tp, tp + fp + fn)) / 2.0


@keras.saving.register_keras_serializable(package="landslide_tf")
class BinaryPrecision(ThresholdConfusion):
    """Landslide precision ``TP / (TP + FP)`` at ``p >= threshold``.

    Example:
        >>> m = BinaryPrecision(threshold=0.5)
        >>> m.update_state([1, 0, 1], [0.5, 0.5, 0.2])
        >>> float(m.result())
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str = "precision", **kwargs: Any) -> None:
        super().__init__(threshold=threshold, name=name, **kwargs)

    def result(self) -> Any:
        tp, fp, _, _ = self.counts()
        return _ratio(tp, tp + fp)


@keras.saving.register_keras_serializable(package="landslide_tf")
class BinaryRecall(ThresholdConfusion):
    """Landslide recall ``TP / (TP + FN)`` at ``p >= threshold``.

    Example:
        >>> m = BinaryRecall(threshold=0.5)
        >>> m.update_state([1, 0, 1], [0.5, 0.5, 0.2])
        >>> float(m.result())
        0.5
    """

    def __init__(self, threshold: float = 0.5, name: str = "recall", **kwargs: Any) -> None:
        super().__init__(threshold=threshold, name=name, **kwargs)

    def result(self) -> Any:
        tp, _, fn, _ = self.counts()
        return _ratio(tp, tp + fn)


def keras_metrics(threshold: float = 0.5) -> list[keras.metrics.Metric]:
    """The metrics compiled into training: ``[miou, precision, recall]`` at ``p >= threshold``.

    ``miou`` is logged as ``val_miou`` for checkpointing; all three are accumulated over
    each epoch, not averaged per batch. Fresh objects on every call.

    Args:
        threshold: Decision threshold on the sigmoid probability.

    Returns:
        ``[BinaryMeanIoU, BinaryPrecision, BinaryRecall]``.
    """
    return [
        BinaryMeanIoU(threshold=threshold),
        BinaryPrecision(threshold=threshold),
        BinaryRecall(threshold=threshold),
    ]
