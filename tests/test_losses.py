"""Tests for landslide_tf.losses: truth tables, identities, gradients, errors, serialization."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from landslide_tf import losses as L
from landslide_tf.losses import LOSSES, get_loss, wce_weights

# Small truth tables (qubvel/segmentation_models style): GT and prediction 3x3 with the
# hand-counted Dice coefficient 2|A n B| / (|A| + |B|).
GT = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], "float32")
TABLES = [
    # (prediction, dice coefficient)
    (np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]], "float32"), 1.0),  # perfect
    (np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], "float32"), 2 * 1 / (3 + 1)),
    (np.array([[1, 1, 1], [1, 1, 1], [0, 0, 0]], "float32"), 2 * 3 / (3 + 6)),
    (np.array([[0, 0, 1], [0, 1, 1], [1, 1, 1]], "float32"), 0.0),  # all wrong
    (np.array([[0.5, 0.5, 0], [0.5, 0, 0], [0, 0, 0]], "float32"), 2 * 1.5 / (3 + 1.5)),
]


def as4d(a: np.ndarray) -> np.ndarray:
    """(H, W) -> (1, H, W, 1)."""
    return a[None, ..., None]


def value(loss, y_true, y_pred) -> float:
    return float(keras.ops.convert_to_numpy(loss(y_true, y_pred)))


def test_registry_names():
    assert list(LOSSES) == [
        "bce", "focal", "dice", "wce", "bce_dice", "tversky", "focal_tversky", "lovasz_hinge",
    ]  # fmt: skip
    for name in LOSSES:
        loss = get_loss(name)
        assert isinstance(loss, keras.losses.Loss)
        assert loss.name == name


@pytest.mark.parametrize("pred, dice", TABLES)
def test_dice_loss_is_one_minus_dice_on_truth_table(pred, dice):
    got = value(get_loss("dice", smooth=0.0), as4d(GT), as4d(pred))
    assert got == pytest.approx(1.0 - dice, abs=1e-6)
    # keras.losses.Dice (epsilon in the denominator only) agrees when there are positives.
    assert got == pytest.approx(value(keras.losses.Dice(), as4d(GT), as4d(pred)), abs=1e-5)


@pytest.mark.parametrize("pred, dice", TABLES)
def test_tversky_half_half_is_dice(pred, dice):
    got = value(get_loss("tversky", alpha=0.5, beta=0.5, smooth=0.0), as4d(GT), as4d(pred))
    assert got == pytest.approx(1.0 - dice, abs=1e-6)


def test_dice_is_over_the_whole_batch_not_per_tile():
    y = np.stack([GT, np.zeros_like(GT)])[..., None]  # (2, 3, 3, 1)
    v = np.stack([TABLES[1][0], np.zeros_like(GT)])[..., None]
    # one coefficient from all pixels: 2*1 / (3 + 1); a per-tile mean would be different
    assert value(get_loss("dice", smooth=0.0), y, v) == pytest.approx(0.5, abs=1e-6)


def test_dice_smoothing_on_a_batch_without_landslide():
    y = np.zeros((2, 4, 4, 1), "float32")
    dice = get_loss("dice")
    assert value(dice, y, y) == pytest.approx(0.0, abs=1e-6)  # keras' Dice would give 1
    assert value(keras.losses.Dice(), y, y) == pytest.approx(1.0)
    v = y.copy()
    v[0, 0, 0, 0] = 1.0
    assert value(dice, y, v) == pytest.approx(1.0 - 1.0 / 2.0, abs=1e-6)  # 1 - s/(1 + s)


@pytest.mark.parametrize("name", list(LOSSES))
def test_perfect_prediction_scores_about_zero(name):
    loss = get_loss(name)
    assert value(loss, as4d(GT), as4d(GT)) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("better, worse", [(0, 1), (0, 2), (1, 3), (2, 3), (4, 3), (0, 4)])
def test_worse_prediction_scores_higher(name, better, worse):
    # every pixel of `worse` is at least as wrong as in `better`, some strictly more
    loss = get_loss(name)
    y = as4d(GT)
    good = np.clip(as4d(TABLES[better][0]), 0.05, 0.95)
    bad = np.clip(as4d(TABLES[worse][0]), 0.05, 0.95)
    assert value(loss, y, bad) > value(loss, y, good)


def test_bce_matches_formula_and_keras():
    y = as4d(GT)
    v = np.full_like(y, 0.3)
    v[0, 0, 0, 0] = 0.9
    expected = -np.mean(y * np.log(v) + (1 - y) * np.log(1 - v))
    assert value(get_loss("bce"), y, v) == pytest.approx(expected, rel=1e-5)
    assert float(np.mean(L.binary_crossentropy(y, v))) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("alpha, scale", [(None, 1.0), (0.5, 0.5)])
def test_focal_with_gamma_zero_is_scaled_bce(alpha, scale):
    y = as4d(GT)
    v = np.clip(as4d(TABLES[4][0]), 0.1, 0.9)
    bce = value(get_loss("bce"), y, v)
    assert value(get_loss("focal", alpha=alpha, gamma=0.0), y, v) == pytest.approx(
        scale * bce, rel=1e-5
    )


def test_focal_matches_lin_et_al_formula():
    rng = np.random.default_rng(1)
    y = (rng.random((2, 5, 5, 1)) < 0.3).astype("float32")
    v = rng.uniform(0.02, 0.98, y.shape).astype("float32")
    alpha, gamma = 0.25, 2.0
    v_t = y * v + (1 - y) * (1 - v)
    a_t = y * alpha + (1 - y) * (1 - alpha)
    expected = np.mean(-a_t * (1 - v_t) ** gamma * np.log(v_t))
    got = value(get_loss("focal"), y, v)  # defaults alpha=0.25, gamma=2
    assert got == pytest.approx(expected, rel=1e-4)


def test_focal_downweights_easy_pixels():
    y = np.ones((1, 1, 2, 1), "float32")
    easy, hard = np.full_like(y, 0.9), np.full_like(y, 0.4)
    focal, bce = get_loss("focal", alpha=None), get_loss("bce")
    ratio_easy = value(focal, y, easy) / value(bce, y, easy)
    ratio_hard = value(focal, y, hard) / value(bce, y, hard)
    assert ratio_easy == pytest.approx(0.1**2, rel=1e-4)
    assert ratio_hard == pytest.approx(0.6**2, rel=1e-4)


def test_wce_with_unit_weights_is_bce_and_two_class_ce():
    rng = np.random.default_rng(2)
    y = (rng.random((2, 6, 6, 1)) < 0.2).astype("float32")
    v = rng.uniform(0.01, 0.99, y.shape).astype("float32")
    wce = value(get_loss("wce", class_weights=(1.0, 1.0)), y, v)
    bce = value(get_loss("bce"), y, v)
    two_class = value(
        keras.losses.CategoricalCrossentropy(),
        np.concatenate([1 - y, y], axis=-1),  # (N, H, W, 2) one-hot {background, landslide}
        np.concatenate([1 - v, v], axis=-1),
    )
    assert wce == pytest.approx(bce, rel=1e-5)
    assert wce == pytest.approx(two_class, rel=1e-5)


def test_wce_matches_weighted_formula():
    rng = np.random.default_rng(3)
    y = (rng.random((2, 6, 6, 1)) < 0.2).astype("float32")
    v = rng.uniform(0.01, 0.99, y.shape).astype("float32")
    w0, w1 = 0.6, 3.5
    expected = -np.mean(w1 * y * np.log(v) + w0 * (1 - y) * np.log(1 - v))
    got = value(get_loss("wce", class_weights=(w0, w1)), y, v)
    assert got == pytest.approx(expected, rel=1e-5)


def test_wce_default_weights_come_from_default_fraction():
    loss = get_loss("wce")
    assert loss.class_weights == pytest.approx(wce_weights(L.DEFAULT_LANDSLIDE_FRACTION))


@pytest.mark.parametrize("fraction", [0.05, 0.13, 0.5, 0.9])
def test_wce_weights_are_balanced(fraction):
    w0, w1 = wce_weights(fraction)
    assert w0 * (1 - fraction) == pytest.approx(w1 * fraction)  # equal total weight per class
    assert (1 - fraction) * w0 + fraction * w1 == pytest.approx(1.0)  # pixel mean weight 1
    assert (w1 > w0) == (fraction < 0.5)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_wce_weights_reject_degenerate_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        wce_weights(fraction)


def test_focal_tversky_gamma_one_is_tversky():
    y, v = as4d(GT), as4d(TABLES[2][0]) * 0.8
    assert value(get_loss("focal_tversky", gamma=1.0), y, v) == pytest.approx(
        value(get_loss("tversky"), y, v), rel=1e-6
    )
    # (1 - TI)^0.75 > 1 - TI for 0 < 1 - TI < 1
    assert value(get_loss("focal_tversky"), y, v) > value(get_loss("tversky"), y, v)


def test_tversky_weights_false_negatives_by_beta():
    y = as4d(GT)
    miss = np.zeros_like(y)
    miss[0, 0, 0, 0] = 1.0  # TP 1, FN 2, FP 0
    alarm = y.copy()
    alarm[0, 2, 2, 0] = alarm[0, 2, 1, 0] = 1.0  # TP 3, FN 0, FP 2
    t = get_loss("tversky", alpha=0.3, beta=0.7, smooth=0.0)
    assert value(t, y, miss) == pytest.approx(1 - 1 / (1 + 0.7 * 2), abs=1e-6)
    assert value(t, y, alarm) == pytest.approx(1 - 3 / (3 + 0.3 * 2), abs=1e-6)


def test_bce_dice_is_the_sum():
    y, v = as4d(GT), np.clip(as4d(TABLES[2][0]), 0.1, 0.9)
    total = value(get_loss("bce_dice", bce_weight=0.5, dice_weight=2.0), y, v)
    expected = 0.5 * value(get_loss("bce"), y, v) + 2.0 * value(get_loss("dice"), y, v)
    assert total == pytest.approx(expected, rel=1e-5)


# Focal with gamma < 1: Keras' focal factor (1 - v_t)^gamma had an infinite slope (NaN
# gradients) at predictions of exactly 0 or 1, which a float32 sigmoid reaches.
GRADIENT_CASES = [(name, {}) for name in LOSSES] + [
    ("focal", {"gamma": 0.0}),
    ("focal", {"gamma": 0.5}),
    ("focal", {"gamma": 0.5, "alpha": None}),
]


@pytest.mark.parametrize(
    "name, kwargs",
    GRADIENT_CASES,
    ids=[n + "".join(f"-{k}={v}" for k, v in kw.items()) for n, kw in GRADIENT_CASES],
)
def test_gradient_is_finite_and_nonzero(name, kwargs):
    loss = get_loss(name, **kwargs)
    y = tf.constant(as4d(GT))
    for start in (np.clip(as4d(TABLES[2][0]), 0.2, 0.8), as4d(GT)):  # imperfect, perfect
        v = tf.Variable(start)
        with tf.GradientTape() as tape:
            out = loss(y, v)
        grad = tape.gradient(out, v).numpy()
        assert np.all(np.isfinite(grad)), name
    v = tf.Variable(np.clip(as4d(TABLES[2][0]), 0.2, 0.8))
    with tf.GradientTape() as tape:
        out = loss(y, v)
    assert np.abs(tape.gradient(out, v).numpy()).sum() > 0


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_gradient_is_finite_through_a_saturated_sigmoid(gamma):
    # Logits far past float32 saturation: sigmoid gives exactly 1.0 and 0.0, right and wrong.
    z = tf.Variable([[[[30.0], [-120.0]], [[30.0], [-120.0]]]])  # (1, 2, 2, 1)
    y = tf.constant([[[[1.0], [0.0]], [[0.0], [1.0]]]])
    loss = get_loss("focal", gamma=gamma)
    with tf.GradientTape() as tape:
        out = loss(y, keras.activations.sigmoid(z))
    grad = tape.gradient(out, z).numpy()
    assert np.isfinite(float(out)) and np.all(np.isfinite(grad))
    assert grad[0, 1, 0, 0] > 0 and grad[0, 1, 1, 0] < 0  # the wrong pixels are pushed back


def test_focal_keeps_the_keras_config_and_old_runs_still_load(tmp_path):
    # get_loss("focal") used to build Keras' own class; it is now a registered subclass with
    # the same config keys and values, and a model saved with the old loss still loads.
    old = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=True, alpha=0.25, gamma=2.0, from_logits=False, name="focal"
    )
    new = get_loss("focal")
    assert isinstance(new, keras.losses.BinaryFocalCrossentropy)
    assert new.get_config() == old.get_config()
    assert type(new).from_config(old.get_config()).get_config() == old.get_config()
    model = _tiny_model()
    model.compile(optimizer="sgd", loss=old)
    model.save(tmp_path / "old.keras")
    restored = keras.saving.load_model(tmp_path / "old.keras")
    assert isinstance(restored.loss, keras.losses.BinaryFocalCrossentropy)
    assert restored.loss.name == "focal" and restored.loss.get_config() == old.get_config()
    y, v = as4d(GT), np.clip(as4d(TABLES[4][0]), 0.1, 0.9)
    assert value(restored.loss, y, v) == pytest.approx(value(new, y, v), rel=1e-6)


@pytest.mark.parametrize("name", list(LOSSES))
def test_float16_inputs_give_float32_loss(name):
    y, v = as4d(GT), np.clip(as4d(TABLES[4][0]), 0.1, 0.9)
    loss = get_loss(name)
    got = loss(tf.constant(y, tf.float16), tf.constant(v, tf.float16))
    assert got.dtype == tf.float32
    assert float(got) == pytest.approx(value(loss, y, v), rel=1e-3)


def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="unknown loss 'iou'.*bce, focal, dice, wce"):
        get_loss("iou")


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("dice", {"alpha": 0.3}, "unexpected argument.*alpha.*valid: smooth"),
        ("bce", {"gamma": 2.0}, "unexpected argument.*gamma"),
        ("focal", {"alpha": 1.5}, "alpha must be in"),
        ("focal", {"gamma": -1}, "gamma must be >= 0"),
        ("focal", {"gamma": "two"}, "gamma must be a number"),
        ("wce", {"class_weights": (1.0,)}, "class_weights must be two numbers"),
        ("wce", {"class_weights": (-1.0, 2.0)}, "class_weights must be >= 0"),
        ("tversky", {"beta": 2.0}, "beta must be in"),
        ("dice", {"smooth": -1.0}, "smooth must be >= 0"),
        # NaN and infinity would make the loss NaN
        ("focal", {"gamma": float("nan")}, "gamma must be finite, got nan"),
        ("focal_tversky", {"gamma": float("inf")}, "gamma must be finite, got inf"),
        ("dice", {"smooth": float("inf")}, "smooth must be finite, got inf"),
        ("bce_dice", {"dice_weight": float("nan")}, "dice_weight must be finite"),
    ],
)
def test_bad_arguments_raise_clear_value_error(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_loss(name, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("bce", {}),
        ("focal", {"alpha": 0.4, "gamma": 1.5}),
        ("focal", {"alpha": None}),
        ("focal", {"gamma": 0.5}),
        ("dice", {"smooth": 0.5}),
        ("wce", {"class_weights": (0.6, 3.2)}),
        ("bce_dice", {"dice_weight": 2.0}),
        ("tversky", {"alpha": 0.2, "beta": 0.8}),
        ("focal_tversky", {"gamma": 1.5}),
        ("lovasz_hinge", {"bce_weight": 0.5}),
    ],
)
def test_config_json_round_trip(name, kwargs):
    loss = get_loss(name, **kwargs)
    blob = json.dumps(keras.saving.serialize_keras_object(loss))
    restored = keras.saving.deserialize_keras_object(json.loads(blob))
    assert type(restored) is type(loss)
    assert restored.name == name
    y, v = as4d(GT), np.clip(as4d(TABLES[2][0]), 0.1, 0.9)
    assert value(restored, y, v) == pytest.approx(value(loss, y, v), rel=1e-6)


def _tiny_model() -> keras.Model:
    inputs = keras.Input((8, 8, 2), name="image")
    x = keras.layers.Conv2D(1, 1, name="logits")(inputs)
    outputs = keras.layers.Activation("sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(inputs, outputs)


def test_compiled_model_survives_keras_save_load(tmp_path):
    # One tiny model with one sigmoid head per loss: a single fit/save/load covers them all.
    inputs = keras.Input((8, 8, 2), name="image")
    heads = {
        name: keras.layers.Activation("sigmoid", dtype="float32", name=name)(
            keras.layers.Conv2D(1, 1, name=f"{name}_logits")(inputs)
        )
        for name in LOSSES
    }
    model = keras.Model(inputs, heads)
    losses = {
        n: get_loss(n, **({"class_weights": (0.7, 2.5)} if n == "wce" else {})) for n in LOSSES
    }
    model.compile(optimizer="adam", loss=losses, run_eagerly=True)  # no tracing: fast on CPU
    rng = np.random.default_rng(4)
    x = rng.random((2, 8, 8, 2)).astype("float32")
    y = (rng.random((2, 8, 8, 1)) < 0.3).astype("float32")
    targets = {name: y for name in LOSSES}
    model.fit(x, targets, epochs=1, batch_size=2, verbose=0)  # one fit step
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    restored_losses = {loss.name: loss for loss in keras.tree.flatten(restored.loss)}
    assert sorted(restored_losses) == sorted(LOSSES)
    assert tuple(restored_losses["wce"].class_weights) == (0.7, 2.5)
    pred, pred_restored = model(x), restored(x)
    for name in LOSSES:
        before = value(losses[name], y, pred[name])
        after = value(restored_losses[name], y, pred_restored[name])
        assert np.isfinite(after)
        assert after == pytest.approx(before, rel=1e-5), name


def test_fit_step_under_mixed_precision():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _tiny_model()
        model.compile(optimizer="adam", loss=get_loss("dice"), run_eagerly=True)
        rng = np.random.default_rng(5)
        x = rng.random((2, 8, 8, 2)).astype("float32")
        y = (rng.random((2, 8, 8, 1)) < 0.3).astype("float32")
        history = model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    finally:
        keras.config.set_dtype_policy(policy)
    assert np.isfinite(history.history["loss"][0])
    assert model.get_layer("logits").compute_dtype == "float16"


def test_docstring_examples():
    import doctest

    from landslide_tf.losses import classes, functions, registry

    results = [
        doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        for module in (functions, classes, registry)
    ]
    assert sum(r.attempted for r in results) > 5 and sum(r.failed for r in results) == 0
