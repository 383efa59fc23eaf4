"""Tests for landslide_tf.models.layers: maths against NumPy, serialization, dtype policies."""

import json

import keras
import numpy as np
import pytest

from landslide_tf.models.layers import ContextualAttention, SpatialAttention

LAYERS = [
    (SpatialAttention, {"kernel_size": 3}),
    (ContextualAttention, {"reduction": 2, "kernel_size": 5}),
]


RNG = np.random.default_rng(0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Plain NumPy 'same' 2-D convolution (cross-correlation), (b, h, w, ci) -> (b, h, w, co)."""
    k = kernel.shape[0]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    b, h, w, _ = x.shape
    out = np.zeros((b, h, w, kernel.shape[-1]), dtype=np.float64)
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("bhwc,co->bhwo", xp[:, dy : dy + h, dx : dx + w, :], kernel[dy, dx])
    return out + bias


def _spatial_reference(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    pooled = np.concatenate([x.mean(-1, keepdims=True), x.max(-1, keepdims=True)], axis=-1)
    return x * _sigmoid(_conv_same(pooled, kernel, bias))


def test_spatial_attention_matches_numpy():
    x = RNG.standard_normal((2, 8, 10, 6)).astype("float32")
    layer = SpatialAttention(kernel_size=3)
    out = keras.ops.convert_to_numpy(layer(x))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.conv.weights)
    assert kernel.shape == (3, 3, 2, 1)
    np.testing.assert_allclose(out, _spatial_reference(x, kernel, bias), rtol=1e-5, atol=1e-5)
    a = keras.ops.convert_to_numpy(layer.attention_map(x))
    assert a.shape == (2, 8, 10, 1) and np.all((a > 0) & (a < 1))


def test_contextual_attention_matches_numpy():
    x = RNG.standard_normal((2, 6, 6, 16)).astype("float32")
    layer = ContextualAttention(reduction=4, kernel_size=3)
    out = keras.ops.convert_to_numpy(layer(x))
    w1, b1 = (keras.ops.convert_to_numpy(w) for w in layer.mlp_hidden.weights)
    w2, b2 = (keras.ops.convert_to_numpy(w) for w in layer.mlp_out.weights)
    assert w1.shape == (16, 4)

    def mlp(v: np.ndarray) -> np.ndarray:
        return np.maximum(v @ w1 + b1, 0.0) @ w2 + b2

    channel = _sigmoid(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))[:, None, None, :]
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.spatial.conv.weights)
    expected = _spatial_reference(x * channel, kernel, bias)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("channels", "hidden"), [(2, 2), (4, 4), (16, 4), (64, 8), (256, 32)])
def test_contextual_hidden_width(channels, hidden):
    layer = ContextualAttention(reduction=8)
    layer.build((None, 4, 4, channels))
    assert layer.mlp_hidden.units == hidden


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS)
def test_shape_preserved_with_odd_sizes(cls, kwargs):
    layer = cls(**kwargs)
    x = RNG.random((3, 5, 7, 8)).astype("float32")
    y = layer(x)
    assert tuple(y.shape) == (3, 5, 7, 8)
    assert tuple(layer.compute_output_shape([None, 5, 7, 8])) == (None, 5, 7, 8)


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS)
def test_config_and_json_round_trip(cls, kwargs):
    layer = cls(name="att", **kwargs)
    x = RNG.random((2, 8, 8, 8)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    config = layer.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    assert clone.get_config() == config
    payload = json.dumps(keras.saving.serialize_keras_object(layer))
    revived = keras.saving.deserialize_keras_object(json.loads(payload))
    assert type(revived) is cls and revived.get_config() == config
    assert revived.built  # the serialized build config rebuilds it
    revived.set_weights(layer.get_weights())
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(revived(x)), y)


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS)
def test_keras_file_round_trip_in_a_model(cls, kwargs, tmp_path):
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, cls(**kwargs)(keras.layers.Conv2D(8, 3, padding="same")(inputs)))
    x = RNG.random((2, 8, 8, 4)).astype("float32")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS)
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_computes_in_compute_dtype(cls, kwargs, policy):
    layer = cls(dtype=policy, **kwargs)
    y = layer(RNG.random((2, 8, 8, 8)).astype("float32"))
    expected = "float16" if policy == "mixed_float16" else "bfloat16"
    assert keras.backend.standardize_dtype(y.dtype) == expected
    assert all(w.dtype == "float32" for w in layer.weights)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(SpatialAttention, {"kernel_size": 0}), (ContextualAttention, {"reduction": 0})],
)
def test_bad_arguments_raise(cls, kwargs):
    with pytest.raises(ValueError, match=">= 1"):
        cls(**kwargs)


def test_gradients_reach_every_weight():
    import tensorflow as tf

    layer = ContextualAttention(reduction=2, kernel_size=3)
    x = tf.constant(RNG.standard_normal((2, 6, 6, 8)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(grads) == 6
    for w, g in zip(layer.trainable_weights, grads, strict=True):
        assert g is not None and np.any(g.numpy() != 0), w.path
