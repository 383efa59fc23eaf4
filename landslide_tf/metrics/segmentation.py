"""Pixel metrics over a whole split, accumulated in fixed-bin probability histograms.

``SegmentationMetrics`` keeps, for each class of the ground truth, a histogram of the
predicted landslide probabilities over ``bins + 1`` slots. Its memory is ``2 (bins + 1)``
integers whatever the number of pixels, and every threshold-based metric (confusion matrix,
IoU, precision, recall, F1, accuracy) is exact for any threshold on the grid
``k / bins``; the pixel ROC AUC is the trapezoid area under the ROC curve through all grid
thresholds (pixels within one bin count as ties).

Definitions (landslide = positive class, ``p >= threshold`` predicted landslide, the one
rule of the package; the training metrics of :mod:`landslide_tf.metrics.keras_metrics`
count the same way):

- ``iou_landslide = TP / (TP + FP + FN)``, ``iou_background = TN / (TN + FN + FP)``;
- ``miou`` = the mean of background IoU and landslide IoU (two classes, whole split);
- ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
  ``f1 = 2 P R / (P + R)``, ``accuracy = (TP + TN) / n_pixels``;
- ``auc``: pixel ROC AUC.

Degenerate cases follow scikit-learn's ``zero_division=0``: a ratio whose denominator is 0
(no predicted landslide pixel for precision, no true landslide pixel for recall, an empty
union for an IoU, ``P + R = 0`` for F1) is 0. The AUC is ``nan`` when the split holds only
one class (scikit-learn raises there). An empty accumulator gives ``nan`` everywhere.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Metrics ``best_threshold`` can maximize.
TUNABLE_METRICS = ("miou", "iou_landslide", "iou_background", "f1", "accuracy")

#: The scores of ``SegmentationMetrics.result``, in the order they are reported.
SCORE_KEYS = (
    "miou",
    "iou_background",
    "iou_landslide",
    "auc",
    "precision",
    "recall",
    "f1",
    "accuracy",
)


def _to_numpy(x: Any) -> np.ndarray:
    """numpy view of an array, list or backend tensor (tf, jax, torch)."""
    if isinstance(x, np.ndarray | list | tuple | int | float | np.generic):
        return np.asarray(x)
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def _safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (scikit-learn's ``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


class SegmentationMetrics:
    """Accumulates binary segmentation metrics over many batches of tiles.

    Probabilities are binned on the edges ``e_k = k / bins`` (``k = 0 .. bins``): a
    probability ``p`` falls into slot ``k`` when ``e_k <= p < e_{k+1}``, and ``p = 1`` into
    slot ``bins``. The comparison is in float32, ``float32(p) >= float32(e_k)``, as the Keras
    metrics, ``threshold_mask`` and the exported ``mask`` compare a float32 probability with
    a threshold, so a probability exactly on a threshold counts the same everywhere. A pixel
    is predicted landslide iff ``p >= threshold``; for a threshold on the grid this is exact
    (no binning error), and other thresholds are rounded to the nearest grid edge
    (``result()["threshold"]`` reports the one used, as a float64 ``k / bins``).

    Args:
        bins: number of bins over [0, 1]; 10000 keeps the AUC within ~1e-4 of the exact
            value for continuous probabilities.

    Example:
        >>> m = SegmentationMetrics(bins=100)
        >>> m.update([[1, 0], [0, 0]], [[0.9, 0.6], [0.2, 0.1]])
        >>> r = m.result(threshold=0.5)
        >>> r["iou_landslide"], r["iou_background"], r["miou"], r["precision"], r["recall"]
        (0.5, 0.6666666666666666, 0.5833333333333333, 0.5, 1.0)
    """

    def __init__(self, bins: int = 10000) -> None:
        if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.bins = int(bins)
        # Grid edges e_k = k / bins; np.arange(...) / bins is correctly rounded, so
        # e_k == float(k / bins) == the decimal literal when that is exact (0.5, 0.3, ...).
        self.edges = np.arange(self.bins + 1, dtype=np.float64) / self.bins
        self._edges32 = self.edges.astype(np.float32)  # what probabilities are compared with
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.hist_background = np.zeros(self.bins + 1, dtype=np.int64)
        self.hist_landslide = np.zeros(self.bins + 1, dtype=np.int64)
        self.n_tiles = 0

    @property
    def n_pixels(self) -> int:
        """Pixels accumulated so far."""
        return int(self.hist_background.sum() + self.hist_landslide.sum())

    def _bin_index(self, prob: np.ndarray) -> np.ndarray:
        """Slot of each probability: the number of edges ``<= p`` minus one, in [0, bins].

        Both sides in float32, so slots ``k..bins`` hold exactly the ``p >= float32(e_k)``.
        """
        return np.searchsorted(self._edges32, np.asarray(prob, np.float32), side="right") - 1

    def update(self, y_true: Any, y_prob: Any, n_tiles: int | None = None) -> None:
        """Add a batch of tiles.

        Args:
            y_true: ground truth in {0, 1} (bool, int or float), ``(N, H, W, 1)``,
                ``(N, H, W)`` or ``(H, W)``; numpy or a tensor.
            y_prob: predicted landslide probabilities in [0, 1], same number of pixels
                (a trailing channel of 1 may differ).
            n_tiles: tiles in this batch; by default the leading dim of a 4-D array or of a
                3-D ``(N, H, W)`` array, 1 for a 2-D ``(H, W)`` or a 3-D ``(H, W, 1)`` array.

        Raises:
            ValueError: mismatched sizes, labels outside {0, 1}, probabilities outside
                [0, 1] or NaN.
        """
        y_true = _to_numpy(y_true)
        y_prob = _to_numpy(y_prob)
        if y_true.size != y_prob.size:
            raise ValueError(
                f"y_true {tuple(y_true.shape)} and y_prob {tuple(y_prob.shape)} hold "
                f"different numbers of pixels ({y_true.size} vs {y_prob.size})"
            )
        if n_tiles is None:
            shape = y_prob.shape if y_prob.ndim >= y_true.ndim else y_true.shape
            if len(shape) == 4 or (len(shape) == 3 and shape[-1] != 1):
                n_tiles = int(shape[0])
            else:
                n_tiles = 1 if y_prob.size else 0
        truth = y_true.reshape(-1)
        if truth.dtype != np.bool_:
            bad = (truth != 0) & (truth != 1)
            if bad.any():
                values = np.unique(truth[bad])[:5]
                raise ValueError(f"y_true must hold only 0 and 1, found {values.tolist()}")
            truth = truth.astype(np.bool_)
        prob = y_prob.reshape(-1).astype(np.float32)
        if prob.size and not (prob.min() >= 0.0 and prob.max() <= 1.0):
            raise ValueError(
                f"y_prob must be probabilities in [0, 1], found min {np.nanmin(prob)}, "
                f"max {np.nanmax(prob)}, {int(np.isnan(prob).sum())} NaN"
            )
        idx = self._bin_index(prob)
        self.hist_landslide += np.bincount(idx[truth], minlength=self.bins + 1)
        self.hist_background += np.bincount(idx[~truth], minlength=self.bins + 1)
        self.n_tiles += int(n_tiles)

    def merge(self, other: SegmentationMetrics) -> None:
        """Add another accumulator with the same ``bins`` (e.g. from another worker)."""
        if other.bins != self.bins:
            raise ValueError(f"cannot merge bins={other.bins} into bins={self.bins}")
        self.hist_background += other.hist_background
        self.hist_landslide += other.hist_landslide
        self.n_tiles += other.n_tiles

    # ----------------------------------------------------------------------- results
    def _grid_index(self, threshold: float) -> int:
        t = float(threshold)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        k = int(round(t * self.bins))
        if self.edges[k] != t:
            logger.debug("threshold %s rounded to the grid: %s", t, self.edges[k])
        return k

    def _confusion_all(self) -> dict[str, np.ndarray]:
        """TP, FP, FN, TN for every grid threshold k = 0..bins (arrays of bins + 1)."""
        # Predicted positive at threshold e_k: slots k..bins, i.e. reverse cumulative sums.
        tp = np.cumsum(self.hist_landslide[::-1])[::-1]
        fp = np.cumsum(self.hist_background[::-1])[::-1]
        n_pos = int(self.hist_landslide.sum())
        n_neg = int(self.hist_background.sum())
        return {"tp": tp, "fp": fp, "fn": n_pos - tp, "tn": n_neg - fp}

    @staticmethod
    def _scores(tp: Any, fp: Any, fn: Any, tn: Any) -> dict[str, np.ndarray]:
        tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
        iou_landslide = _safe_div(tp, tp + fp + fn)
        iou_background = _safe_div(tn, tn + fn + fp)
        precision = _safe_div(tp, tp + fp)
        recall = _safe_div(tp, tp + fn)
        return {
            "miou": (iou_background + iou_landslide) / 2.0,
            "iou_background": iou_background,
            "iou_landslide": iou_landslide,
            "precision": precision,
            "recall": recall,
            "f1": _safe_div(2.0 * precision * recall, precision + recall),
            "accuracy": _safe_div(tp + tn, tp + fp + fn + tn),
        }

    def confusion(self, threshold: float = 0.5) -> dict[str, int]:
        """Pixel confusion matrix ``{"tp", "fp", "fn", "tn"}`` at a threshold."""
        k = self._grid_index(threshold)
        tp = int(self.hist_landslide[k:].sum())
        fp = int(self.hist_background[k:].sum())
        return {
            "tp": tp,
            "fp": fp,
            "fn": int(self.hist_landslide.sum()) - tp,
            "tn": int(self.hist_background.sum()) - fp,
        }

    def auc(self) -> float:
        """Pixel ROC AUC: trapezoid area through the ROC points of all grid thresholds.

        Equals scikit-learn's ``roc_auc_score`` on probabilities quantized to the bins
        (ties count one half); ``nan`` when only one class is present.
        """
        n_pos = int(self.hist_landslide.sum())
        n_neg = int(self.hist_background.sum())
        if n_pos == 0 or n_neg == 0:
            return math.nan
        # ROC points from threshold 1 + (nothing positive) down to threshold 0 (all positive).
        tpr = np.concatenate([[0.0], np.cumsum(self.hist_landslide[::-1]) / n_pos])
        fpr = np.concatenate([[0.0], np.cumsum(self.hist_background[::-1]) / n_neg])
        return float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))

    def result(self, threshold: float = 0.5) -> dict[str, float]:
        """All metrics at a threshold (predicted landslide iff ``p >= threshold``).

        Args:
            threshold: in [0, 1]; rounded to the nearest multiple of ``1 / bins``.

        Returns:
            ``miou`` (mean of background and landslide IoU), ``iou_background``,
            ``iou_landslide``, ``auc``, ``precision``, ``recall``, ``f1`` (landslide class),
            ``accuracy``, ``threshold`` (the grid value used), ``n_tiles``, ``n_pixels``.
        """
        k = self._grid_index(threshold)
        out: dict[str, float] = {}
        if self.n_pixels == 0:
            names = ("miou", "iou_background", "iou_landslide", "auc", "precision", "recall")
            out = {name: math.nan for name in (*names, "f1", "accuracy")}
        else:
            c = self.confusion(float(self.edges[k]))
            out = {name: float(v) for name, v in self._scores(**c).items()}
            out["auc"] = self.auc()
        ordered = {name: out[name] for name in SCORE_KEYS}
        ordered.update(
            {"threshold": float(self.edges[k]), "n_tiles": self.n_tiles, "n_pixels": self.n_pixels}
        )
        return ordered

    def best_threshold(self, metric: str = "miou", low: float = 0.0, high: float = 1.0) -> float:
        """The grid threshold in ``[low, high]`` that maximizes ``metric``.

        Ties go to the threshold closest to 0.5 (then the lower one).

        Args:
            metric: one of ``TUNABLE_METRICS`` (miou, iou_landslide, iou_background, f1,
                accuracy).
            low: smallest threshold considered.
            high: largest threshold considered.

        Returns:
            The threshold, a multiple of ``1 / bins``.

        Raises:
            ValueError: unknown metric, empty range, or nothing accumulated.
        """
        if metric not in TUNABLE_METRICS:
            raise ValueError(f"cannot tune for {metric!r}; valid: {', '.join(TUNABLE_METRICS)}")
        if self.n_pixels == 0:
            raise ValueError("no pixels accumulated: call update() before best_threshold()")
        k_lo = int(math.ceil(float(low) * self.bins - 1e-9))
        k_hi = int(math.floor(float(high) * self.bins + 1e-9))
        k_lo, k_hi = max(k_lo, 0), min(k_hi, self.bins)
        if k_lo > k_hi:
            raise ValueError(f"empty threshold range [{low}, {high}] for bins={self.bins}")
        scores = self.scores_by_threshold(metric)[k_lo : k_hi + 1]
        candidates = np.flatnonzero(scores >= scores.max() - 1e-12) + k_lo
        # distance to 0.5 in half-bins, in integers: |k / bins - 0.5| * 2 bins (exact ties)
        best = candidates[np.argmin(np.abs(2 * candidates - self.bins))]
        return float(self.edges[best])

    def scores_by_threshold(self, metric: str) -> np.ndarray:
        """``metric`` (one of ``TUNABLE_METRICS``) at every grid threshold ``k / bins``."""
        if metric not in TUNABLE_METRICS:
            raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(TUNABLE_METRICS)}")
        return self._scores(**self._confusion_all())[metric]

    def plateau(
        self, at: float, metric: str = "f1", tolerance: float = 0.01
    ) -> tuple[float, float]:
        """The contiguous range of grid thresholds around ``at`` whose ``metric`` is within
        ``tolerance`` of the best ``metric`` over all thresholds.

        A wide plateau says the choice of threshold barely matters there; a narrow one that
        the tuned value is fragile. ``at`` should be the best threshold (``best_threshold``);
        when ``at`` itself is not within the tolerance, the range is ``(at, at)``.

        Returns:
            ``(lo, hi)``, grid thresholds with ``lo <= at <= hi``.
        """
        if self.n_pixels == 0:
            raise ValueError("no pixels accumulated: call update() before plateau()")
        scores = self.scores_by_threshold(metric)
        good = scores >= scores.max() - float(tolerance) - 1e-12
        k = self._grid_index(at)
        if not good[k]:
            return float(self.edges[k]), float(self.edges[k])
        lo = k
        while lo > 0 and good[lo - 1]:
            lo -= 1
        hi = k
        while hi < self.bins and good[hi + 1]:
            hi += 1
        return float(self.edges[lo]), float(self.edges[hi])

    @property
    def n_positive(self) -> int:
        """Landslide pixels accumulated so far."""
        return int(self.hist_landslide.sum())


def format_metrics(d: dict[str, Any]) -> str:
    """Human-readable block of a ``SegmentationMetrics.result()`` dict.

    Example:
        >>> print(format_metrics({"miou": 0.75, "iou_background": 0.9, "iou_landslide": 0.6}))
        mIoU       0.7500   (mIoU = mean of background and landslide IoU)
        IoU        background 0.9000, landslide 0.6000
    """

    def fmt(value: Any) -> str:
        if value is None:
            return "n/a"
        value = float(value)
        return "n/a" if math.isnan(value) else f"{value:.4f}"

    lines = []
    if "miou" in d:
        lines.append(f"mIoU       {fmt(d['miou'])}   (mIoU = mean of background and landslide IoU)")
    if "iou_background" in d or "iou_landslide" in d:
        lines.append(
            f"IoU        background {fmt(d.get('iou_background'))}, "
            f"landslide {fmt(d.get('iou_landslide'))}"
        )
    labels = {
        "auc": "AUC        {}   (pixel ROC AUC)",
        "precision": "precision  {}   (landslide)",
        "recall": "recall     {}   (landslide)",
        "f1": "F1         {}   (landslide)",
        "accuracy": "accuracy   {}   (pixel)",
    }
    for key, template in labels.items():
        if key in d:
            lines.append(template.format(fmt(d[key])))
    tail = []
    if "threshold" in d:
        tail.append(f"threshold {float(d['threshold']):g}")
    if "n_tiles" in d:
        tail.append(f"{int(d['n_tiles'])} tiles")
    if "n_pixels" in d:
        tail.append(f"{int(d['n_pixels'])} pixels")
    if tail:
        lines.append(", ".join(tail))
    return "\n".join(lines)
