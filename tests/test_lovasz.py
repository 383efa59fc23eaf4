"""Tests for the Lovasz hinge loss (landslide_tf.losses.lovasz, registered as ``lovasz_hinge``)."""

import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.losses import LOSSES, get_loss
from landslide_tf.losses.lovasz import lovasz_grad, lovasz_hinge


def test_registered_and_round_trips_its_config():
    loss = get_loss("lovasz_hinge", bce_weight=0.5)
    assert "lovasz_hinge" in LOSSES and loss.name == "lovasz_hinge"
    again = type(loss).from_config(loss.get_config())
    assert again.bce_weight == 0.5


def test_grad_on_a_hand_table():
    # sorted labels [1, 0, 1]: P = 2; jaccard after k pixels = 1 - (P - tp) / (P + fp)
    # k=1: 1 - 1/2 = 0.5; k=2: 1 - 1/3 = 2/3; k=3: 1 - 0/3 = 1 -> diffs [0.5, 1/6, 1/3]
    grad = lovasz_grad(tf.constant([[1.0, 0.0, 1.0]])).numpy()
    np.testing.assert_allclose(grad, [[0.5, 1 / 6, 1 / 3]], rtol=1e-6)


def test_value_on_a_hand_table():
    # logits 2, -1 for labels 1, 0 -> errors 1 - 2 = -1 and 1 - 1 = 0 -> relu 0: no loss
    p = tf.sigmoid(tf.constant([[[2.0], [-1.0]]]))
    assert float(lovasz_hinge([[[1.0], [0.0]]], p)) == pytest.approx(0.0, abs=1e-6)
    # one wrong pixel: labels [1, 0], logits [0, 0] -> errors [1, 1]; grad [1, 0] or
    # [0.5, 0.5] depending on the tie order; both give 1.0
    half = tf.constant([[[0.5], [0.5]]])
    assert float(lovasz_hinge([[[1.0], [0.0]]], half)) == pytest.approx(1.0, abs=1e-5)


def test_per_image_mean_and_a_gradient():
    y = np.zeros((2, 8, 8, 1), "float32")
    y[0, 2:4, 2:5] = 1
    p = tf.Variable(np.full((2, 8, 8, 1), 0.5, "float32"))
    with tf.GradientTape() as tape:
        value = get_loss("lovasz_hinge")(y, p)
    single = [float(lovasz_hinge(y[i : i + 1], p[i : i + 1])) for i in range(2)]
    assert float(value) == pytest.approx(np.mean(single), rel=1e-6)
    grad = tape.gradient(value, p).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0
    # pushing the landslide pixels up lowers the loss
    assert grad[0, 2, 2, 0] < 0
