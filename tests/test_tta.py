"""Tests for landslide_tf.inference.tta: flip averaging in evaluate and in the raw-input graph."""

import numpy as np
import tensorflow as tf

from landslide_tf.data.spec import bijie_spec
from landslide_tf.inference.predictor import raw_probability
from landslide_tf.inference.settings import InferenceSettings
from landslide_tf.inference.tta import FLIP_AXES, apply_model, flip_average


def _corner_model(x):
    """A deliberately non-equivariant model: the top-left pixel's red value, everywhere."""
    return tf.ones_like(x[..., :1]) * x[:, :1, :1, :1]


def test_flip_average_is_the_mean_of_four_flipped_passes():
    x = tf.constant(np.random.default_rng(0).uniform(size=(2, 6, 6, 3)), tf.float32)
    got = flip_average(_corner_model, x).numpy()
    corners = [x[:, 0, 0, 0], x[:, 0, -1, 0], x[:, -1, 0, 0], x[:, -1, -1, 0]]
    expected = np.mean([c.numpy() for c in corners], axis=0)
    np.testing.assert_allclose(got[:, 2, 3, 0], expected, rtol=1e-6)
    assert len(FLIP_AXES) == 4


def test_flip_average_maps_each_prediction_back():
    x = tf.constant(np.random.default_rng(1).uniform(size=(1, 5, 7, 3)), tf.float32)
    identity = flip_average(lambda t: t[..., :1], x)  # an equivariant model is unchanged
    np.testing.assert_allclose(identity.numpy(), x.numpy()[..., :1], rtol=1e-6)
    np.testing.assert_allclose(
        apply_model(_corner_model, x, tta=False).numpy(), _corner_model(x).numpy()
    )


def test_raw_probability_applies_tta_when_the_settings_say_so():
    image = tf.constant(np.random.default_rng(2).integers(0, 255, (1, 8, 8, 3)), tf.uint8)
    plain = InferenceSettings(bijie_spec(8, "rgb"))
    tta = InferenceSettings(bijie_spec(8, "rgb"), tta=True)
    a = raw_probability(_corner_model, image, None, plain).numpy()
    b = raw_probability(_corner_model, image, None, tta).numpy()
    assert not np.allclose(a, b)
    x = image.numpy()[0].astype(np.float32) / 255.0
    mean_corner = np.mean([x[0, 0, 0], x[0, -1, 0], x[-1, 0, 0], x[-1, -1, 0]])
    np.testing.assert_allclose(b[0, 4, 4], mean_corner, rtol=1e-5)
    assert InferenceSettings.from_dict({"tta": True}).tta is True
    assert InferenceSettings.from_dict({}).tta is False
