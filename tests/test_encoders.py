"""Tests for landslide_tf.models.encoders: pretrained keras-hub encoders under the decoders.

All offline: tiny randomly initialised backbones saved as a keras-hub preset folder or a
``.weights.h5`` file in a temp folder are loaded through the same code path as ImageNet.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from landslide_tf.errors import UserError  # noqa: E402
from landslide_tf.models import ENCODERS, build_model  # noqa: E402
from landslide_tf.models.encoder_weights import adapt_stem_kernel  # noqa: E402
from landslide_tf.models.encoders import IMAGENET_MEAN, IMAGENET_STD, EncoderSpec  # noqa: E402
from landslide_tf.models.layers import LeadingChannelStandardization  # noqa: E402

#: The smallest ResNet keras-hub builds: 64 filters up to stage 0, then 8, one block per stage, 3x3 stem.
TINY_RESNET = {
    "input_conv_filters": [64],
    "input_conv_kernel_sizes": [3],
    "stackwise_num_filters": [64, 8, 8, 8],  # keras-hub requires 64 first
    "stackwise_num_blocks": [1, 1, 1, 1],
    "stackwise_num_strides": [1, 2, 2, 2],
    "block_type": "basic_block",
    "use_pre_activation": False,
}
SIZE = 32


def tiny_backbone() -> keras.Model:
    return keras_hub.models.ResNetBackbone(**TINY_RESNET, image_shape=(None, None, 3))


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A keras-hub preset folder of a random tiny ResNet and its stem kernel; the encoder
    ``tiny_resnet`` is registered meanwhile (a preset must match the encoder it is given as)."""
    backbone = tiny_backbone()
    folder = tmp_path_factory.mktemp("preset") / "tiny_resnet"
    backbone.save_to_preset(str(folder))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
        yield folder, backbone.get_layer("conv1_conv").kernel.numpy()


@pytest.fixture
def tiny_encoder(monkeypatch, tmp_path) -> tuple[str, Path, np.ndarray]:
    """A registered tiny encoder ``tiny_resnet`` and a ``.weights.h5`` file of it."""
    monkeypatch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
    backbone = tiny_backbone()
    path = tmp_path / "tiny.weights.h5"
    backbone.save_weights(str(path))
    return "tiny_resnet", path, backbone.get_layer("conv1_conv").kernel.numpy()


def stem(model: keras.Model) -> np.ndarray:
    return model.get_layer("encoder").get_layer("conv1_conv").kernel.numpy()


def expected_stem(kernel: np.ndarray, channels: int) -> np.ndarray:
    """smp's rule written out: channel i = kernel[..., i % 3, :] * 3 / C (sum for C = 1)."""
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    return np.stack([kernel[:, :, i % 3, :] * 3 / channels for i in range(channels)], axis=2)


@pytest.mark.parametrize("channels", [1, 2, 3, 4, 6])
def test_adapt_stem_kernel_follows_smp(channels):
    kernel = np.random.default_rng(0).normal(size=(3, 3, 3, 5)).astype("float32")
    out = adapt_stem_kernel(kernel, channels)
    assert out.shape == (3, 3, channels, 5)
    np.testing.assert_allclose(out, expected_stem(kernel, channels), rtol=1e-6)
    if channels == 3:
        np.testing.assert_array_equal(out, kernel)  # RGB kept exactly


@pytest.mark.parametrize("channels", [3, 4, 6])
def test_preset_folder_builds_and_stem_follows_rule(tiny_preset, channels):
    folder, kernel = tiny_preset
    model = build_model(
        "unet", (SIZE, SIZE, channels), base_filters=4, depth=5,
        encoder="tiny_resnet", encoder_weights=str(folder),
    )  # fmt: skip
    got = stem(model)
    assert got.shape == (*kernel.shape[:2], channels, kernel.shape[-1])
    np.testing.assert_allclose(got, expected_stem(kernel, channels), rtol=1e-6)
    np.testing.assert_allclose(got[:, :, :3] * channels / 3, kernel, rtol=1e-6)  # RGB slice
    assert model.output_shape == (None, SIZE, SIZE, 1)
    assert model.name == "unet_tiny_resnet"


@pytest.mark.parametrize("channels", [3, 4, 6])
def test_weights_file_builds_and_stem_follows_rule(tiny_encoder, channels):
    name, path, kernel = tiny_encoder
    model = build_model(
        "unetpp_spatial_ctx", (SIZE, SIZE, channels), base_filters=4, depth=5,
        encoder=name, encoder_weights=str(path),
    )  # fmt: skip
    np.testing.assert_allclose(stem(model), expected_stem(kernel, channels), rtol=1e-6)
    names = {layer.name for layer in model.layers}
    assert {"x_1_0", "x_5_0", "enc1_spatial", "enc5_ctx", "bottleneck", "head_features"} <= names


def test_other_backbone_weights_are_copied(tiny_encoder):
    name, path, _ = tiny_encoder
    source = tiny_backbone()
    source.load_weights(str(path))
    model = build_model(
        "unet", (SIZE, SIZE, 4), base_filters=4, depth=5, encoder=name, encoder_weights=str(path)
    )
    layer = "stack3_block0_2_conv"
    np.testing.assert_array_equal(
        model.get_layer("encoder").get_layer(layer).kernel.numpy(),
        source.get_layer(layer).kernel.numpy(),
    )


def test_skip_strides_2_to_32_feed_the_decoder(tiny_encoder):
    name, _, _ = tiny_encoder
    model = build_model(
        "unetpp", (64, 64, 4), base_filters=4, depth=5, encoder=name, encoder_weights="none"
    )
    sides = [model.get_layer(f"x_{i}_0").output.shape[1] for i in range(6)]
    assert sides == [64, 32, 16, 8, 4, 2]


def test_encoder_scaling_only_touches_rgb(tiny_encoder):
    name, _, _ = tiny_encoder
    model = build_model(
        "unet", (SIZE, SIZE, 5), base_filters=4, depth=5, encoder=name, encoder_weights="none"
    )
    x = np.random.default_rng(1).random((1, 4, 4, 5)).astype("float32")
    y = keras.ops.convert_to_numpy(model.get_layer("encoder_scaling")(x))
    np.testing.assert_allclose(y[..., :3], (x[..., :3] - IMAGENET_MEAN) / IMAGENET_STD, rtol=1e-5)
    np.testing.assert_array_equal(y[..., 3:], x[..., 3:])
    dem_only = build_model(
        "unet", (SIZE, SIZE, 1), base_filters=4, depth=5, encoder=name, encoder_weights="none"
    )
    assert dem_only.get_layer("encoder_scaling").get_config()["mean"] == []


def test_models_without_encoder_are_unchanged():
    model = build_model("unet", (SIZE, SIZE, 4), base_filters=4, depth=2)
    assert model.name == "unet" and "encoder" not in {layer.name for layer in model.layers}


def test_bad_encoder_arguments():
    with pytest.raises(ValueError, match="unknown encoder 'vgg'; valid names: resnet18"):
        build_model("unet", (SIZE, SIZE, 3), encoder="vgg")
    with pytest.raises(ValueError, match="U-Net or U-Net\\+\\+"):
        build_model("resunet", (SIZE, SIZE, 3), encoder="resnet18", encoder_weights="none")
    with pytest.raises(ValueError, match="depth must be in 1..5"):
        build_model("unet", (128, 128, 3), depth=6, encoder="resnet18", encoder_weights="none")


def test_bad_weights_path_is_one_line(tiny_encoder, tmp_path):
    name, _, _ = tiny_encoder
    bad = tmp_path / "w.npz"
    bad.write_bytes(b"x")
    for weights, message in ((str(bad), "expected a .weights.h5"), (str(tmp_path), "config.json")):
        with pytest.raises(UserError, match=message) as info:
            build_model("unet", (SIZE, SIZE, 3), depth=5, encoder=name, encoder_weights=weights)
        assert "\n" not in str(info.value)


def test_offline_imagenet_is_a_one_line_error(monkeypatch, tmp_path):
    import kagglehub

    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'www.kaggle.com'\nmore lines")

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(kagglehub, "model_download", offline)
    with pytest.raises(UserError) as info:
        build_model("unet", (SIZE, SIZE, 4), depth=5, encoder="resnet18")
    message = str(info.value)
    assert "\n" not in message
    assert "resnet_18_imagenet" in message and "empty-cache" in message
    assert "--fetch resnet18 DIR" in message and "--encoder-weights DIR" in message


def test_keras_round_trip_in_safe_mode(tiny_preset, tmp_path, monkeypatch):
    import sys

    from landslide_tf.training.runs import load_model_file

    folder, _ = tiny_preset
    model = build_model(
        "unetpp_ctx", (SIZE, SIZE, 4), base_filters=4, depth=5,
        encoder="tiny_resnet", encoder_weights=str(folder),
    )  # fmt: skip
    x = np.random.default_rng(2).random((2, SIZE, SIZE, 4)).astype("float32")
    model.save(tmp_path / "m.keras")
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # loading needs no keras-hub
    again = load_model_file(tmp_path / "m.keras")
    np.testing.assert_allclose(again(x), model(x), atol=1e-5)
    assert isinstance(again.get_layer("encoder_scaling"), LeadingChannelStandardization)
    assert again.count_params() == model.count_params()


def test_layer_config_round_trip():
    layer = LeadingChannelStandardization(mean=(0.5, 0.25), std=(2.0, 4.0), name="s")
    clone = LeadingChannelStandardization.from_config(json.loads(json.dumps(layer.get_config())))
    x = np.ones((1, 2, 2, 3), "float32")
    np.testing.assert_allclose(clone(x), layer(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x))[0, 0, 0], [0.25, 0.1875, 1])


@pytest.mark.slow
def test_efficientnet_b0_builds_at_four_channels():
    model = build_model(
        "unet", (SIZE, SIZE, 4), base_filters=4, depth=5,
        encoder="efficientnet_b0", encoder_weights="none",
    )  # fmt: skip
    assert model.get_layer("encoder").get_layer("stem_conv").kernel.shape[2] == 4
    assert model.output_shape == (None, SIZE, SIZE, 1)


def test_missing_keras_hub_is_a_one_line_install_hint(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import keras_hub -> ImportError
    with pytest.raises(UserError, match=r"^encoder models need keras-hub: pip install "
                       r"landslide_tf\[encoders\]$"):  # fmt: skip
        build_model("unet", (SIZE, SIZE, 3), depth=5, encoder="resnet18", encoder_weights="none")


@pytest.mark.slow
@pytest.mark.parametrize(
    "modalities, derived", [("rgb", []), ("rgb+dem", []), ("rgb+dem", ["slope", "hillshade"])]
)
def test_saved_model_export_round_trip(tiny_preset, tmp_path, modalities, derived):
    from test_predict import make_run, raw_inputs

    from landslide_tf.inference.export import export_run
    from landslide_tf.inference.predictor import Predictor

    folder, kernel = tiny_preset
    run = make_run(tmp_path / "run", modalities=modalities)
    raw = json.loads((run / "config.json").read_text())
    raw.update(derived=derived, encoder="tiny_resnet", encoder_weights=str(folder), depth=5)
    (run / "config.json").write_text(json.dumps(raw))
    channels = {"rgb": 3, "rgb+dem": 4}[modalities] + len(derived)  # 3, 4, 6
    model = build_model(
        "unet", (None, None, channels), base_filters=4, depth=5,
        encoder="tiny_resnet", encoder_weights=str(folder),
    )  # fmt: skip
    np.testing.assert_allclose(stem(model), expected_stem(kernel, channels), rtol=1e-6)
    model.save(run / "best.keras")
    image, dem = raw_inputs(64, 64, seed=5)
    dem = None if modalities == "rgb" else dem
    from_run = Predictor.load(run).predict(image, dem)
    saved = export_run(run, tmp_path / "saved")
    np.testing.assert_allclose(Predictor.load(saved).predict(image, dem), from_run, atol=1e-4)


def test_fetch_cli_lists_and_fails_offline_in_one_line(monkeypatch, tmp_path, capsys):
    import kagglehub

    from landslide_tf.cli.encoder_weights import main

    assert main([]) == 0
    assert (
        "resnet18: keras-hub resnet, ImageNet preset resnet_18_imagenet" in capsys.readouterr().out
    )

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(kagglehub, "model_download", offline)
    assert main(["--fetch", "resnet50", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resnet_50_imagenet" in err
    assert main(["--fetch", "vgg", str(tmp_path / "out")]) == 2
    assert "unknown encoder 'vgg'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_damaged_cached_preset_says_to_delete_the_cached_copy(monkeypatch, tmp_path):
    """Review finding: with a cached copy that fails to load (a truncated download), the
    message sent the user to --fetch, which reads the same cached copy and fails alike."""
    import kagglehub

    cache = tmp_path / "cache"
    cached = cache / "models" / "keras" / "resnet_v1" / "keras" / "resnet_18_imagenet"
    (cached / "3").mkdir(parents=True)

    def damaged(*args, **kwargs):
        raise OSError("Unable to synchronously open file (truncated file: eof = 5000)")

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    monkeypatch.setattr(kagglehub, "model_download", damaged)
    with pytest.raises(UserError) as info:
        build_model("unet", (SIZE, SIZE, 4), depth=5, encoder="resnet18")
    message = str(info.value)
    assert "\n" not in message and str(cached) in message and "delete that folder" in message
    assert "--fetch" not in message
