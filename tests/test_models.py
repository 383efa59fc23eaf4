"""Tests for landslide_tf.models: one shared tester run over every registered network."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.models import (
    MODELS,
    PAPER_MODELS,
    build_model,
    default_gradcam_layer,
    spatial_layers,
)

# Tiny but real: the "must show" input (64, 64, 4) with 4 base filters and 2 poolings.
SHAPE = (64, 64, 4)
TINY = {"input_shape": SHAPE, "base_filters": 4, "depth": 2}
ALL = list(MODELS)
# Cheap checks run on all names. The .keras round trip, the training step and the float16
# build run by default on the paper's six plus resunet_spatial_ctx (the only path with
# attention inside residual blocks); the other variants reuse the same blocks and are marked
# slow. export() + SavedModel reload traces the model twice (20-45 s on the loaded 2-core
# box): by default only unetpp_spatial_ctx, which holds both custom layers.
HEAVY_FAST = (*PAPER_MODELS, "resunet_spatial_ctx")
EXPORT_FAST = ("unetpp_spatial_ctx",)


def _marked(fast: tuple[str, ...]) -> list:
    return [n if n in fast else pytest.param(n, marks=pytest.mark.slow) for n in ALL]


HEAVY_PARAMS = _marked(HEAVY_FAST)
EXPORT_PARAMS = _marked(EXPORT_FAST)

_CACHE: dict[str, keras.Model] = {}


def tiny_model(name: str) -> keras.Model:
    """One tiny model per name for the whole module (building dominates test time)."""
    if name not in _CACHE:
        keras.utils.set_random_seed(0)
        _CACHE[name] = build_model(name, **TINY)
    return _CACHE[name]


def batch(n: int = 2, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    return np.random.default_rng(1).random((n, *shape), dtype=np.float32)


def infer(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Eager inference: no tf.function tracing per model, which dominates tiny-model tests."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def layer_names(model: keras.Model) -> set[str]:
    return {layer.name for layer in model.layers}


@pytest.mark.parametrize("name", ALL)
class TestEveryModel:
    """The contract of docs/ARCHITECTURE.md, checked on every registered name."""

    def test_forward_shape_and_range(self, name):
        model = tiny_model(name)
        y = infer(model, batch(3))
        assert y.shape == (3, *SHAPE[:2], 1)
        assert y.dtype == np.float32
        assert np.all((y >= 0) & (y <= 1)) and np.all(np.isfinite(y))
        assert model.name == name
        assert model.input_shape == (None, *SHAPE)
        assert model.output_shape == (None, *SHAPE[:2], 1)

    def test_layer_name_contract(self, name):
        model = tiny_model(name)
        names = layer_names(model)
        assert model.layers[0].name == "image"
        assert model.layers[-1].name == "probability"
        assert model.get_layer("probability").dtype_policy.compute_dtype == "float32"
        assert isinstance(model.get_layer("logits"), keras.layers.Conv2D)
        for i in range(3):  # levels 0..depth
            assert {f"enc{i}_conv1", f"enc{i}_bn1", f"enc{i}_conv2", f"enc{i}_bn2"} <= names
        assert {"bottleneck", "head_features"} <= names
        assert isinstance(model.get_layer("bottleneck"), keras.layers.Dropout)
        assert model.get_layer("bottleneck").rate == 0.5
        assert model.get_layer("head_features").output.shape[1:3] == SHAPE[:2]
        assert default_gradcam_layer(model) == "head_features"
        if name.startswith("unetpp"):
            assert {f"x_{i}_{j}" for i in range(3) for j in range(3 - i)} <= names
        # attention: one per conv of each encoder block, none elsewhere
        for kind in ("spatial", "ctx"):
            att = sorted(n for n in names if n.endswith((f"_{kind}1", f"_{kind}2")))
            expected = [f"enc{i}_{kind}{j}" for i in range(3) for j in (1, 2)]
            assert att == (expected if kind in name.split("_") else [])

    def test_size_not_divisible_raises(self, name):
        with pytest.raises(ValueError, match=r"input height 30 is not divisible by 4 \(depth 2\)"):
            build_model(name, input_shape=(30, 32, 4), base_filters=4, depth=2)
        with pytest.raises(ValueError, match=r"input width 100 is not divisible by 16 \(depth 4\)"):
            build_model(name, input_shape=(128, 100, 4), base_filters=4)


@pytest.mark.parametrize("name", HEAVY_PARAMS)
class TestEveryModelTraining:
    """Round trip, gradient and dtype-policy checks (the costly ones)."""

    def test_keras_round_trip_is_exact(self, name, tmp_path):
        model = tiny_model(name)
        x = batch()
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)  # no custom_objects
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
        np.testing.assert_array_equal(infer(loaded, x), infer(model, x))

    def test_one_training_step_changes_every_weight(self, name):
        model = tiny_model(name)
        x = batch()
        y = (np.random.default_rng(2).random((2, *SHAPE[:2], 1)) > 0.7).astype("float32")
        before = [w.numpy().copy() for w in model.trainable_weights]
        optimizer = keras.optimizers.Adam(1e-3)
        with tf.GradientTape() as tape:
            loss = keras.losses.binary_crossentropy(y, model(x, training=True))
            loss = tf.reduce_mean(loss)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        unchanged = [
            w.path
            for w, old in zip(model.trainable_weights, before, strict=True)
            if np.array_equal(w.numpy(), old)
        ]
        assert np.isfinite(float(loss))
        assert unchanged == []

    def test_mixed_float16_builds_with_float32_output(self, name):
        previous = keras.config.dtype_policy()
        try:
            keras.config.set_dtype_policy("mixed_float16")
            model = build_model(name, input_shape=(16, 16, 4), base_filters=4, depth=2)
            assert model.get_layer("enc0_conv1").compute_dtype == "float16"
            y = model(batch(shape=(16, 16, 4)), training=False)
            assert keras.backend.standardize_dtype(y.dtype) == "float32"
            assert np.all((y.numpy() >= 0) & (y.numpy() <= 1))
        finally:
            keras.config.set_dtype_policy(previous)
        assert keras.config.dtype_policy().name == previous.name


@pytest.mark.parametrize("name", EXPORT_PARAMS)
def test_export_saved_model_gives_identical_outputs(name, tmp_path):
    model = tiny_model(name)
    x = batch()
    model.export(str(tmp_path / "sm"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    got = reloaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(got, infer(model, x), rtol=0, atol=1e-6)


def test_registry_names():
    assert set(PAPER_MODELS) <= set(MODELS)
    bases = ("unet", "resunet", "unetpp")
    suffixes = ("", "_spatial", "_ctx", "_spatial_ctx")
    assert set(MODELS) == {b + s for b in bases for s in suffixes}


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'segformer'") as info:
        build_model("segformer")
    for name in PAPER_MODELS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (32, 32, 0)}, "input channels must be >= 1, got 0"),
        ({"input_shape": (32, 32)}, r"must be \(height, width, channels\)"),
        ({"depth": 0}, "depth must be >= 1, got 0"),
        ({"base_filters": 0}, "base_filters must be >= 1, got 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"attention_size": 3}, "unknown model option"),
    ],
)
def test_bad_arguments_raise_with_numbers(kwargs, message):
    args = {"input_shape": (32, 32, 4), "base_filters": 4, "depth": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_model("unetpp_ctx", **args)


@pytest.mark.parametrize("channels", [1, 7])
def test_any_channel_count(channels):
    model = build_model("unet_ctx", input_shape=(16, 16, channels), base_filters=4, depth=2)
    y = infer(model, batch(shape=(16, 16, channels)))
    assert y.shape == (2, 16, 16, 1)


def test_free_spatial_size_accepts_any_multiple():
    model = build_model("resunet_ctx", input_shape=(None, None, 3), base_filters=4, depth=2)
    for side in (16, 40):
        y = infer(model, batch(1, (side, side, 3)))
        assert y.shape == (1, side, side, 1)


def test_deep_supervision_keeps_one_output(tmp_path):
    model = build_model("unetpp_spatial", deep_supervision=True, **TINY)
    names = layer_names(model)
    assert {"logits_1", "logits_2", "head_features"} <= names
    assert isinstance(model.get_layer("logits"), keras.layers.Average)
    assert len(model.outputs) == 1 and model.output_shape == (None, *SHAPE[:2], 1)
    x = batch()
    # probability = sigmoid(mean of the per-column logits)
    heads = keras.Model(
        model.input, [model.get_layer("logits_1").output, model.get_layer("logits_2").output]
    )
    l1, l2 = (keras.ops.convert_to_numpy(t) for t in heads(x, training=False))
    expected = 1.0 / (1.0 + np.exp(-(l1 + l2) / 2.0))
    np.testing.assert_allclose(infer(model, x), expected, rtol=1e-5, atol=1e-6)
    path = tmp_path / "ds.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(infer(loaded, x), infer(model, x))


def test_deep_supervision_needs_unetpp():
    with pytest.raises(ValueError, match="deep_supervision needs a U-Net\\+\\+ model"):
        build_model("resunet", deep_supervision=True, **TINY)


def test_mixed_bfloat16_output_float32():
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = build_model("unetpp_spatial_ctx", input_shape=(16, 16, 4), base_filters=4, depth=2)
        assert model.get_layer("enc0_ctx1").compute_dtype == "bfloat16"
        y = model(batch(shape=(16, 16, 4)))
        assert keras.backend.standardize_dtype(y.dtype) == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


def test_default_gradcam_layer_falls_back_to_last_feature_map():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="features")(inputs)
    x = keras.layers.Conv2D(1, 1, name="logits")(x)
    model = keras.Model(inputs, keras.layers.Activation("sigmoid", name="probability")(x))
    assert default_gradcam_layer(model) == "features"


def test_default_gradcam_layer_of_a_foreign_model_is_not_its_output():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="feat")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid", name="seg")(x))
    assert spatial_layers(model) == ["feat"]
    assert default_gradcam_layer(model) == "feat"


# Default-width parameter counts, as in docs/readme_models.md (from benchmarks/models.py).
DEFAULT_PARAMS = {
    "unet": 7_769_217,
    "resunet": 8_123_393,
    "unetpp": 9_053_409,
    "unetpp_spatial": 9_054_399,
    "unetpp_ctx": 9_231_223,
    "unetpp_spatial_ctx": 9_232_213,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_MODELS)
def test_default_width_parameter_counts_match_readme(name):
    assert build_model(name).count_params() == DEFAULT_PARAMS[name]
