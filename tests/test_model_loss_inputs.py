"""Arguments of landslide_tf.models and landslide_tf.losses that must be refused or cast.

- WCE class weights: infinity turned the loss into NaN, a string was read character by
  character (``"13"`` -> (1, 3)).
- ``focal_crossentropy`` kept float16 inputs in float16, unlike every other pure loss
  function: NaN/inf at saturated predictions.
- ``build_model``: a non-integer depth crashed deep inside a builder with a ``TypeError``;
  a non-integer width or size was silently truncated.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.losses import focal_crossentropy, get_loss
from landslide_tf.models import build_model


@pytest.mark.parametrize(
    "weights, match",
    [
        ((1.0, math.inf), "class_weights must be finite"),
        ((math.inf, 1.0), "class_weights must be finite"),
        ("13", "class_weights must be two numbers"),
        ((True, 2.0), "class_weights must be two numbers"),
    ],
)
def test_wce_refuses_infinite_or_non_numeric_class_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        get_loss("wce", class_weights=weights)


def test_wce_finite_large_weights_still_give_a_finite_loss():
    y = np.zeros((1, 2, 2, 1), "float32")
    y[0, 0, 0, 0] = 1.0
    loss = get_loss("wce", class_weights=(1.0, 1e6))
    assert np.isfinite(float(loss(y, np.full_like(y, 0.3))))


@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_focal_crossentropy_computes_in_float32_like_the_other_functions(dtype):
    # (truth, prediction): a right and a wrong saturated pixel, and an ordinary one
    y = tf.constant([[1.0], [0.0], [1.0]], dtype)
    v = tf.constant([[1.0], [1.0], [0.5]], dtype)
    got = focal_crossentropy(y, v, gamma=0.5)
    values = np.asarray(got, "float32")
    assert np.all(np.isfinite(values)), values  # was [nan, inf, 0.49]
    assert got.dtype == tf.float32
    assert values[0] == pytest.approx(0.0, abs=1e-4)  # right: no loss
    assert values[1] > 10.0  # wrong: -log(eps) ~ 16
    assert values[2] == pytest.approx(0.5**0.5 * math.log(2.0), rel=1e-3)


def test_focal_loss_keeps_the_bce_of_the_sigmoid_logits():
    # the float32 cast must not drop the logits Keras keeps on a sigmoid output: with a
    # logit of 30, BCE from logits is 30 (not -log(eps) ~ 16.1)
    z = tf.constant([[[[30.0]]]])
    y = tf.constant([[[[0.0]]]])
    loss = get_loss("focal", alpha=None, gamma=0.0)
    assert float(loss(y, keras.activations.sigmoid(z))) == pytest.approx(30.0, rel=1e-4)
    direct = focal_crossentropy(y, keras.activations.sigmoid(z), gamma=0.0)
    assert float(direct[0, 0, 0]) == pytest.approx(30.0, rel=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": 1.5}, r"depth must be an integer, got 1\.5"),
        ({"depth": "2"}, r"depth must be an integer, got '2'"),
        ({"base_filters": 4.7}, r"base_filters must be an integer, got 4\.7"),
        ({"input_shape": (16.5, 16, 4)}, r"input height must be an integer, got 16\.5"),
        ({"input_shape": (16, 16, 4.2)}, r"input channels must be an integer, got 4\.2"),
    ],
)
def test_non_integer_sizes_raise_one_clear_value_error(kwargs, match):
    args = {"input_shape": (16, 16, 4), "base_filters": 4, "depth": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_model("unet", **args)


def test_numpy_integers_are_still_accepted():
    model = build_model(
        "unet",
        input_shape=(np.int64(16), np.int32(16), np.int64(4)),
        base_filters=np.int64(4),
        depth=np.int32(2),
    )
    assert model.output_shape == (None, 16, 16, 1)
