"""Tests for landslide_tf.metrics.segmentation against scikit-learn on truth tables and random data."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as skm

from landslide_tf.errors import DataError
from landslide_tf.metrics.keras_metrics import (
    BinaryMeanIoU,
    BinaryPrecision,
    BinaryRecall,
    keras_metrics,
)
from landslide_tf.metrics.segmentation import SegmentationMetrics, format_metrics
from landslide_tf.metrics.thresholds import (
    THRESHOLD_FILE,
    read_threshold,
    write_threshold,
)

GT = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
# Hand truth tables: predicted probabilities for GT above, with the hand-counted
# TP, FP, FN, TN at threshold 0.5.
TABLES = [
    (np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.0], [0.1, 0.3, 0.2]]), (3, 0, 0, 6)),
    (np.array([[0.9, 0.4, 0.1], [0.2, 0.2, 0.0], [0.1, 0.3, 0.2]]), (1, 0, 2, 6)),
    (np.array([[0.9, 0.8, 0.6], [0.7, 0.5, 0.9], [0.1, 0.3, 0.2]]), (3, 3, 0, 3)),
    (np.array([[0.1, 0.2, 0.9], [0.0, 0.8, 0.6], [0.7, 0.5, 0.55]]), (0, 6, 3, 0)),
    (np.array([[0.6, 0.4, 0.45], [0.5, 0.49, 0.51], [0.0, 1.0, 0.2]]), (2, 2, 1, 4)),
]


def sklearn_metrics(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> dict:
    y = y_true.ravel().astype(int)
    p = y_prob.ravel()
    pred = (p >= threshold).astype(int)
    iou_l = skm.jaccard_score(y, pred, pos_label=1, zero_division=0)
    iou_b = skm.jaccard_score(y, pred, pos_label=0, zero_division=0)
    out = {
        "iou_landslide": iou_l,
        "iou_background": iou_b,
        "miou": (iou_l + iou_b) / 2,
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "accuracy": skm.accuracy_score(y, pred),
    }
    out["auc"] = skm.roc_auc_score(y, p) if 0 < y.sum() < y.size else math.nan
    return out


def assert_matches_sklearn(result: dict, expected: dict, auc_tol: float = 1e-3) -> None:
    for key, want in expected.items():
        if key == "auc":
            if math.isnan(want):
                assert math.isnan(result["auc"])
            else:
                assert result["auc"] == pytest.approx(want, abs=auc_tol)
        else:
            assert result[key] == pytest.approx(want, abs=1e-12), key


@pytest.mark.parametrize("prob, counts", TABLES)
def test_truth_tables_match_hand_counts_and_sklearn(prob, counts):
    m = SegmentationMetrics()
    m.update(GT, prob)
    assert tuple(m.confusion(0.5).values()) == counts
    tp, fp, fn, tn = counts
    r = m.result(0.5)
    assert r["iou_landslide"] == pytest.approx(tp / (tp + fp + fn) if tp + fp + fn else 0.0)
    assert r["iou_background"] == pytest.approx(tn / (tn + fp + fn) if tn + fp + fn else 0.0)
    assert r["accuracy"] == pytest.approx((tp + tn) / 9)
    assert_matches_sklearn(r, sklearn_metrics(GT, prob, 0.5))
    assert (r["n_tiles"], r["n_pixels"], r["threshold"]) == (1, 9, 0.5)


def test_hand_table_auc_is_exact_for_on_grid_probabilities():
    # probabilities that are multiples of 1/bins: the histogram AUC equals sklearn's exactly
    prob = TABLES[4][0]
    m = SegmentationMetrics(bins=100)
    m.update(GT, prob)
    assert m.auc() == pytest.approx(skm.roc_auc_score(GT.ravel(), prob.ravel()), abs=1e-12)


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.7, 0.9])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_data_matches_sklearn(threshold, seed):
    rng = np.random.default_rng(seed)
    y = rng.random((3, 32, 32, 1)) < 0.13  # (tiles, h, w, 1), ~13 % landslide
    # informative but noisy probabilities, float32 as a model would give
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1).astype("float32")
    m = SegmentationMetrics()
    m.update(y, p)
    assert_matches_sklearn(m.result(threshold), sklearn_metrics(y, p, threshold))


def test_auc_within_1e3_of_sklearn_with_coarse_bins():
    rng = np.random.default_rng(7)
    y = rng.random(20000) < 0.2
    p = rng.beta(2 + 3 * y, 3)  # continuous, float64
    m = SegmentationMetrics(bins=1000)
    m.update(y, p)
    assert m.auc() == pytest.approx(skm.roc_auc_score(y, p), abs=1e-3)


def test_accumulating_batches_equals_one_shot():
    rng = np.random.default_rng(3)
    y = rng.random((6, 16, 16, 1)) < 0.2
    p = rng.random((6, 16, 16, 1)).astype("float32")
    one = SegmentationMetrics()
    one.update(y, p)
    parts = SegmentationMetrics()
    for lo, hi in [(0, 1), (1, 4), (4, 6)]:
        parts.update(y[lo:hi], p[lo:hi])
    merged = SegmentationMetrics()
    for lo, hi in [(0, 3), (3, 6)]:
        other = SegmentationMetrics()
        other.update(y[lo:hi], p[lo:hi])
        merged.merge(other)
    for t in (0.25, 0.5):
        assert parts.result(t) == one.result(t)
        assert merged.result(t) == one.result(t)
    assert one.result()["n_tiles"] == 6
    assert one.result()["n_pixels"] == 6 * 16 * 16


def test_accumulation_is_not_a_mean_of_batch_metrics():
    m = SegmentationMetrics()
    m.update(np.array([[1, 1, 1, 1]]), np.array([[0.9, 0.9, 0.9, 0.9]]))  # IoU_l 1
    m.update(np.array([[1, 0, 0, 0]]), np.array([[0.1, 0.1, 0.1, 0.1]]))  # IoU_l 0
    assert m.result()["iou_landslide"] == pytest.approx(4 / 5)  # not (1 + 0) / 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miou_is_mean_of_the_two_ious(seed):
    rng = np.random.default_rng(seed)
    m = SegmentationMetrics()
    m.update(rng.random((2, 8, 8)) < 0.3, rng.random((2, 8, 8)))
    r = m.result(0.4)
    assert r["miou"] == pytest.approx((r["iou_background"] + r["iou_landslide"]) / 2)


def test_thresholds_on_the_grid_are_exact():
    m = SegmentationMetrics()  # bins=10000
    t = 0.3
    below, above = np.nextafter(t, 0.0), np.nextafter(t, 1.0)
    f32_below = np.nextafter(np.float32(t), np.float32(0.0))
    prob = np.array([below, t, above, float(f32_below), 1.0, 0.0, 0.29995, 0.30005])
    truth = np.ones_like(prob)
    m.update(truth, prob)
    r = m.result(threshold=t)
    # p >= 0.3 compared in float32, as the Keras metrics and the mask: below (float32 0.3),
    # t, above, 1.0, 0.30005 are positive; the float32 just below 0.3 is not
    assert m.confusion(t)["tp"] == 5 == int((prob.astype(np.float32) >= np.float32(t)).sum())
    assert r["recall"] == pytest.approx(5 / 8)
    assert r["threshold"] == t
    assert m.confusion(1.0)["tp"] == 1  # only p == 1.0
    assert m.confusion(0.0)["tp"] == 8


def test_off_grid_threshold_is_rounded_and_reported():
    m = SegmentationMetrics(bins=100)
    m.update(np.array([1, 0]), np.array([0.125, 0.115]))
    r = m.result(threshold=0.1234)
    assert r["threshold"] == 0.12
    assert m.confusion(0.1234)["tp"] == 1 and m.confusion(0.1234)["fp"] == 0


def test_no_landslide_pixels_is_defined():
    m = SegmentationMetrics()
    y = np.zeros((2, 4, 4, 1))
    p = np.full(y.shape, 0.2)
    p[0, 0, 0, 0] = 0.9  # one false positive
    m.update(y, p)
    r = m.result()
    assert math.isnan(r["auc"])
    assert (r["precision"], r["recall"], r["f1"], r["iou_landslide"]) == (0.0, 0.0, 0.0, 0.0)
    assert r["iou_background"] == pytest.approx(31 / 32)
    assert_matches_sklearn(r, sklearn_metrics(y, p, 0.5))


def test_no_predicted_landslide_gives_zero_precision():
    m = SegmentationMetrics()
    y = np.array([[1, 0], [0, 0]])
    p = np.array([[0.4, 0.1], [0.2, 0.3]])
    m.update(y, p)
    r = m.result()
    assert (r["precision"], r["recall"], r["f1"]) == (0.0, 0.0, 0.0)
    assert r["auc"] == pytest.approx(1.0)
    assert_matches_sklearn(r, sklearn_metrics(y, p, 0.5))


def test_empty_accumulator():
    m = SegmentationMetrics()
    r = m.result()
    assert math.isnan(r["miou"]) and math.isnan(r["auc"])
    assert (r["n_tiles"], r["n_pixels"]) == (0, 0)
    with pytest.raises(ValueError, match="no pixels"):
        m.best_threshold()


@pytest.mark.parametrize(
    "y_shape, p_shape, n_tiles",
    [
        ((4, 8, 8, 1), (4, 8, 8, 1), 4),
        ((4, 8, 8), (4, 8, 8, 1), 4),
        ((4, 8, 8), (4, 8, 8), 4),
        ((8, 8), (8, 8), 1),
        ((8, 8, 1), (8, 8, 1), 1),
    ],
)
def test_tile_counting(y_shape, p_shape, n_tiles):
    m = SegmentationMetrics()
    m.update(np.zeros(y_shape), np.zeros(p_shape))
    assert m.result()["n_tiles"] == n_tiles
    assert m.n_pixels == int(np.prod(y_shape))


def test_accepts_tensors_and_bools():
    rng = np.random.default_rng(5)
    y = rng.random((2, 8, 8, 1)) < 0.3
    p = rng.random((2, 8, 8, 1)).astype("float32")
    a, b = SegmentationMetrics(), SegmentationMetrics()
    a.update(y, p)
    b.update(tf.constant(y.astype("float32")), tf.constant(p))
    assert a.result() == b.result()


def test_memory_is_independent_of_pixel_count():
    m = SegmentationMetrics(bins=50)
    m.update(np.zeros((2, 64, 64)), np.zeros((2, 64, 64)))
    assert m.hist_background.shape == m.hist_landslide.shape == (51,)


@pytest.mark.parametrize(
    "y, p, match",
    [
        (np.array([0, 255]), np.array([0.1, 0.9]), "only 0 and 1"),
        (np.array([0, 1]), np.array([0.1, 1.5]), r"probabilities in \[0, 1\]"),
        (np.array([0, 1]), np.array([0.1, np.nan]), "1 NaN"),
        (np.array([0, 1, 1]), np.array([0.1, 0.9]), "different numbers of pixels"),
    ],
)
def test_bad_inputs_raise(y, p, match):
    with pytest.raises(ValueError, match=match):
        SegmentationMetrics().update(y, p)


def test_bad_bins_and_threshold_raise():
    with pytest.raises(ValueError, match="bins"):
        SegmentationMetrics(bins=0)
    with pytest.raises(ValueError, match="threshold"):
        SegmentationMetrics().result(threshold=1.5)


def test_best_threshold_finds_the_separating_grid_edge():
    m = SegmentationMetrics(bins=100)
    m.update(np.array([1, 1, 0, 0, 0]), np.array([0.35, 0.4, 0.2, 0.25, 0.1]))
    # any t in (0.25, 0.35] separates perfectly; ties go to the one closest to 0.5
    assert m.best_threshold("miou") == pytest.approx(0.35)
    assert m.result(m.best_threshold())["miou"] == 1.0
    assert m.best_threshold("f1", low=0.0, high=0.3) == pytest.approx(0.3)


@pytest.mark.parametrize("metric", ["miou", "f1", "iou_landslide", "accuracy"])
def test_best_threshold_beats_every_grid_threshold(metric):
    rng = np.random.default_rng(11)
    y = rng.random(2000) < 0.15
    p = np.clip(rng.normal(0.3 + 0.25 * y, 0.15), 0, 1)
    m = SegmentationMetrics(bins=200)
    m.update(y, p)
    best = m.best_threshold(metric)
    best_value = m.result(best)[metric]
    grid = [m.result(k / 200)[metric] for k in range(0, 201, 5)]
    assert best_value >= max(grid) - 1e-12
    assert best_value == pytest.approx(sklearn_metrics(y, p, best)[metric], abs=1e-12)


def test_best_threshold_rejects_unknown_metric():
    m = SegmentationMetrics()
    m.update(np.array([0, 1]), np.array([0.2, 0.7]))
    with pytest.raises(ValueError, match="valid: miou"):
        m.best_threshold("auc")


def test_keras_metrics_match_segmentation_metrics():
    rng = np.random.default_rng(9)
    y = (rng.random((2, 16, 16, 1)) < 0.2).astype("float32")
    p = rng.random((2, 16, 16, 1)).astype("float32")
    ours = SegmentationMetrics()
    ours.update(y, p)
    expected = ours.result(0.5)
    found = {}
    for metric in keras_metrics():
        metric.update_state(y[:1], p[:1])  # accumulated over batches, like an epoch
        metric.update_state(y[1:], p[1:])
        found[metric.name] = float(keras.ops.convert_to_numpy(metric.result()))
    assert list(found) == ["miou", "precision", "recall"]
    for name, got in found.items():
        assert got == pytest.approx(expected[name], abs=1e-5), name


def test_keras_metrics_are_logged_as_val_miou():
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=keras_metrics(), run_eagerly=True
    )
    x = np.random.default_rng(0).random((2, 4, 4, 1)).astype("float32")
    y = (x > 0.5).astype("float32")
    history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    assert "val_miou" in history.history
    assert 0.0 <= history.history["val_miou"][0] <= 1.0


def test_format_metrics_says_what_miou_is():
    m = SegmentationMetrics()
    m.update(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    text = format_metrics(m.result())
    assert "mIoU = mean of background and landslide IoU" in text
    assert "AUC        n/a" in text  # one class only
    assert "threshold 0.5, 1 tiles, 16 pixels" in text


def test_docstring_examples():
    import doctest

    from landslide_tf.metrics import keras_metrics as kmetrics
    from landslide_tf.metrics import segmentation as metrics
    from landslide_tf.metrics import thresholds

    results = [doctest.testmod(m) for m in (metrics, kmetrics, thresholds)]
    assert results[0].attempted >= 4 and results[1].attempted >= 4
    assert results[2].attempted >= 2 and sum(r.failed for r in results) == 0


# Truth table with probabilities exactly on the threshold 0.5: p >= t is landslide.
#   truth  1    1    0    0    1    0
#   prob   0.5  0.7  0.5  0.2  0.3  0.49
#   pred   1    1    1    0    0    0      -> TP 2, FP 1, FN 1, TN 2
ON_T_TRUTH = np.array([1, 1, 0, 0, 1, 0], dtype="float32").reshape(1, 2, 3, 1)
ON_T_PROB = np.array([0.5, 0.7, 0.5, 0.2, 0.3, 0.49], dtype="float32").reshape(1, 2, 3, 1)
ON_T_EXPECTED = {
    "miou": (2 / 4 + 2 / 4) / 2,  # landslide 2/(2+1+1), background 2/(2+1+1)
    "precision": 2 / 3,
    "recall": 2 / 3,
}


def test_keras_metrics_count_probability_on_threshold_as_landslide():
    found = {}
    for metric in keras_metrics(threshold=0.5):
        metric.update_state(ON_T_TRUTH, ON_T_PROB)
        found[metric.name] = float(keras.ops.convert_to_numpy(metric.result()))
    assert found == pytest.approx(ON_T_EXPECTED, abs=1e-6)
    ours = SegmentationMetrics(bins=100)
    ours.update(ON_T_TRUTH, ON_T_PROB)
    result = ours.result(0.5)
    assert {k: result[k] for k in ON_T_EXPECTED} == pytest.approx(found, abs=1e-6)
    # Keras' own Precision counts p > t: it would see TP 1, FP 0 here.
    keras_own = keras.metrics.Precision(thresholds=0.5)
    keras_own.update_state(ON_T_TRUTH, ON_T_PROB)
    assert float(keras_own.result()) == pytest.approx(1.0)


@pytest.mark.parametrize("cls", [BinaryMeanIoU, BinaryPrecision, BinaryRecall])
def test_keras_metric_config_round_trip_and_reset(cls):
    metric = cls(threshold=0.3)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(again) is cls and again.threshold == 0.3 and again.name == metric.name
    again.update_state(ON_T_TRUTH, ON_T_PROB)
    again.reset_state()
    assert float(keras.ops.convert_to_numpy(again.result())) == 0.0
    with pytest.raises(ValueError, match="threshold must be in"):
        cls(threshold=1.5)


def test_keras_metrics_zero_division_is_zero():
    empty = np.zeros((1, 2, 2, 1), dtype="float32")
    precision, recall = BinaryPrecision(), BinaryRecall()
    for metric in (precision, recall):
        metric.update_state(empty, empty)
        assert float(keras.ops.convert_to_numpy(metric.result())) == 0.0


def test_threshold_file_round_trip(tmp_path):
    assert read_threshold(tmp_path) is None
    write_threshold(tmp_path, 0.37, metric="miou", split="val", tta=False)
    assert read_threshold(tmp_path) == pytest.approx(0.37)
    with pytest.raises(ValueError, match="threshold must be in"):
        write_threshold(tmp_path, 2.0)


@pytest.mark.parametrize(
    "text", ["{not json", '{"metric": "miou"}', '{"threshold": "x"}', '{"threshold": 1.5}', "[]"]
)
def test_damaged_threshold_file_is_one_line_data_error(tmp_path, text):
    (tmp_path / THRESHOLD_FILE).write_text(text)
    with pytest.raises(DataError) as info:
        read_threshold(tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / THRESHOLD_FILE) in message


# ------------------------------------------- issue 21: thresholds that travel
def _overlapping(n_pos: int, n_neg: int) -> SegmentationMetrics:
    """Positives spread over [0.7, 1], negatives over [0, 0.75]: F1 peaks at about 0.7."""
    m = SegmentationMetrics()
    prob = np.concatenate([np.linspace(0.7, 1.0, n_pos), np.linspace(0.0, 0.75, n_neg)])
    truth = np.concatenate([np.ones(n_pos, bool), np.zeros(n_neg, bool)])
    m.update(truth, prob)
    return m


def test_robust_threshold_with_many_positives_stays_at_the_f1_optimum():
    from landslide_tf.metrics.thresholds import SHRINK_PIXELS, tune_threshold

    m = _overlapping(1_000_000, 1_000_000)
    info = tune_threshold(m)
    assert info["metric"] == "f1" and info["best"] == m.best_threshold("f1")
    assert 0.69 <= info["best"] <= 0.75  # a clear optimum away from 0.5
    assert info["n_positive"] == 1_000_000
    assert info["shrink_weight"] == pytest.approx(1_000_000 / (1_000_000 + SHRINK_PIXELS))
    assert info["threshold"] == pytest.approx(info["best"], abs=0.01)


def test_robust_threshold_with_few_positives_moves_toward_one_half():
    from landslide_tf.metrics.thresholds import SHRINK_PIXELS, tune_threshold

    m = _overlapping(200, 200)  # the same shape, a hundredth of a tile of evidence
    info = tune_threshold(m)
    assert 0.69 <= info["best"] <= 0.75
    weight = 200 / (200 + SHRINK_PIXELS)
    assert info["shrink_weight"] == pytest.approx(weight)
    assert info["threshold"] == pytest.approx(0.5 + weight * (info["best"] - 0.5), abs=1e-4)
    assert abs(info["threshold"] - 0.5) < 0.01
    # no shrinkage: the raw optimum
    assert tune_threshold(m, shrink_pixels=0)["threshold"] == info["best"]
    # shrinkage is monotone in the evidence
    more = tune_threshold(_overlapping(20_000, 20_000))
    assert info["threshold"] < more["threshold"] < info["best"]


def test_f1_plateau_bounds():
    from landslide_tf.metrics.thresholds import tune_threshold

    m = SegmentationMetrics(bins=100)
    # 10 scars at 0.8, 9 background pixels at 0.3 and one look-alike at 0.6
    m.update(np.array([1] * 10 + [0] * 10), np.array([0.8] * 10 + [0.3] * 9 + [0.6]))
    # F1 = 1 for thresholds in (0.6, 0.8]; 20/21 = 0.952 in (0.3, 0.6]: outside 0.01
    info = tune_threshold(m, shrink_pixels=0)
    assert info["plateau"] == [pytest.approx(0.61), pytest.approx(0.8)]
    assert info["plateau_tolerance"] == 0.01
    assert m.plateau(0.7, tolerance=0.05) == (pytest.approx(0.31), pytest.approx(0.8))
    assert m.plateau(0.2) == (pytest.approx(0.2), pytest.approx(0.2))  # not on the plateau
    # the plateau is of F1 even when the threshold maximises mIoU
    assert tune_threshold(m, metric="miou", shrink_pixels=0)["plateau"] == info["plateau"]


def test_tuned_threshold_info_round_trips_through_the_one_file(tmp_path):
    from landslide_tf.metrics.thresholds import read_threshold_info, tune_threshold

    m = _overlapping(500, 500)
    info = tune_threshold(m)
    write_threshold(tmp_path, **info, split="val", tta=False)
    assert read_threshold(tmp_path) == info["threshold"]
    stored = read_threshold_info(tmp_path)
    assert stored["plateau"] == info["plateau"] and stored["metric"] == "f1"


def test_probability_exactly_on_the_threshold_counts_as_keras_and_numpy():
    """A float32 probability equal to float32(t) is landslide, as in BinaryRecall and p >= t."""
    p, y = np.array([0.7], np.float32), np.array([1])
    m = SegmentationMetrics()
    m.update(y, p)
    assert m.confusion(0.7) == {"tp": 1, "fp": 0, "fn": 0, "tn": 0}
    assert m.result(0.7)["recall"] == 1.0 and m.result(0.7)["threshold"] == 0.7
    keras_recall = BinaryRecall(threshold=0.7)
    keras_recall.update_state(y.astype("float32"), p)
    assert float(keras_recall.result()) == 1.0


@pytest.mark.parametrize("bins", [100, 10000])
def test_counts_agree_with_float32_comparison_at_every_threshold(bins):
    rng = np.random.default_rng(5)
    # half continuous, half exactly on (float32) grid values, where float64 edges differ
    on_grid = (rng.integers(0, bins + 1, 5000) / bins).astype(np.float32)
    p = np.concatenate([rng.random(5000, dtype=np.float32), on_grid])
    y = rng.random(p.size) < 0.3
    m = SegmentationMetrics(bins=bins)
    m.update(y, p)
    for t in (0.0, 0.07, 0.3, 0.5, 0.53, 0.7, 0.9, 1.0):
        pred = p >= np.float32(t)
        want = {
            "tp": int((pred & y).sum()),
            "fp": int((pred & ~y).sum()),
            "fn": int((~pred & y).sum()),
            "tn": int((~pred & ~y).sum()),
        }
        assert m.confusion(t) == want, t


def test_best_threshold_tie_goes_to_the_lower_of_two_equally_close_thresholds():
    m = SegmentationMetrics()
    m.update(np.array([0, 1, 0, 1]), np.array([0.2, 0.3, 0.6999, 0.7]))
    scores = m.scores_by_threshold("miou")
    assert scores[3000] == pytest.approx(scores[7000]) and scores.max() == scores[3000]
    assert m.best_threshold("miou") == 0.3  # |0.3 - 0.5| == |0.7 - 0.5|: the lower one


def test_keras_metrics_divide_fractional_weighted_counts_exactly():
    """Review finding: the ratio was floored at a denominator of 1, so weighted counts below
    one pixel gave 0.5 for one correctly called pixel of weight 0.5."""
    expected = {"precision": 1.0, "recall": 1.0, "miou": 1.0}
    for metric in keras_metrics(threshold=0.5):
        metric.update_state([1.0, 0.0], [0.9, 0.1], sample_weight=[0.5, 0.25])
        value = float(keras.ops.convert_to_numpy(metric.result()))
        assert value == pytest.approx(expected[metric.name], abs=1e-6), metric.name
    empty = BinaryPrecision()
    empty.update_state([1.0], [0.1], sample_weight=[0.5])  # no predicted landslide: 0, not nan
    assert float(keras.ops.convert_to_numpy(empty.result())) == 0.0
