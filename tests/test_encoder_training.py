"""Tests for landslide_tf.training.encoder_phases: --encoder flags, frozen phase, resume, downstream use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from test_encoders import TINY_RESNET, tiny_backbone  # noqa: E402
from test_predict import raw_inputs  # noqa: E402

from landslide_tf.cli.train import main  # noqa: E402
from landslide_tf.cli.train_args import build_parser, config_from_args  # noqa: E402
from landslide_tf.data.bands import L4S_BANDS  # noqa: E402
from landslide_tf.models import ENCODERS  # noqa: E402
from landslide_tf.models.encoders import EncoderSpec  # noqa: E402
from landslide_tf.training.config import TrainConfig  # noqa: E402
from landslide_tf.training.encoder_phases import build_kwargs, phases  # noqa: E402
from landslide_tf.training.rundir import default_run_dir  # noqa: E402


def parse(*argv: str) -> TrainConfig:
    return config_from_args(build_parser().parse_args(list(argv)))


def test_phases_split_frozen_and_unfrozen_epochs():
    config = TrainConfig(encoder="resnet18", freeze_encoder_epochs=2, epochs=5)
    assert phases(config, 0) == [(0, 2, True), (2, 5, False)]
    assert phases(config, 1) == [(1, 2, True), (2, 5, False)]
    assert phases(config, 2) == [(2, 5, False)]
    assert phases(TrainConfig(encoder="resnet18", freeze_encoder_epochs=9, epochs=3), 0) == [
        (0, 3, True)
    ]
    assert phases(TrainConfig(epochs=3), 1) == [(1, 3, False)]


@pytest.mark.parametrize(
    "data, expected",
    [
        ({}, 3),  # Bijie rgb+dem: red, green, blue / 255
        ({"modalities": "rgb"}, 3),
        ({"modalities": "dem", "derived": ["slope"]}, 0),
        ({"data_format": "l4s", "bands": list(L4S_BANDS)}, 0),  # B1, B2, B3 standardised
        ({"data_format": "l4s", "bands": ["B4", "B3", "B2", "dem"]}, 0),  # standardised RGB
        ({"data_format": "l4s", "bands": ["B4", "B3", "B2", "dem"], "band_norm": "percentile"}, 3),
        ({"data_format": "l4s", "bands": ["B2", "B3", "B4"], "band_norm": "percentile"}, 0),
        (
            {"data_format": "folder", "bands": ["Red", "Green", "Blue"], "band_norm": "percentile"},
            3,
        ),
        ({"data_format": "folder", "bands": ["1", "2", "3"], "band_norm": "percentile"}, 0),
    ],
)
def test_imagenet_scaling_only_on_rgb_in_unit_range(data, expected):
    config = TrainConfig(encoder="resnet18", **data)
    assert build_kwargs(config, resuming=False)["rgb_channels"] == expected
    assert build_kwargs(config, resuming=True)["rgb_channels"] == expected


def test_l4s_encoder_model_leaves_its_bands_unscaled(monkeypatch):
    """The built model of an ``l4s`` run has no ImageNet scaling; a Bijie one keeps it."""
    from landslide_tf.models import build_model

    monkeypatch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
    scaled = {}
    for data, channels in (({"data_format": "l4s", "bands": list(L4S_BANDS)}, 14), ({}, 4)):
        config = TrainConfig(encoder="tiny_resnet", encoder_weights="none", **data)
        model = build_model(
            "unet", (32, 32, channels), base_filters=4, depth=2,
            **build_kwargs(config, resuming=False),
        )  # fmt: skip
        scaled[channels] = len(model.get_layer("encoder_scaling").get_config()["mean"])
    assert scaled == {14: 0, 4: 3}


def test_flags_are_recorded_with_encoder_defaults(tmp_path):
    config = parse("--model", "unetpp", "--encoder", "resnet18")
    assert (config.encoder, config.encoder_weights, config.depth) == ("resnet18", "imagenet", 5)
    assert config.freeze_encoder_epochs == 0
    assert parse("--encoder", "resnet50", "--depth", "4").depth == 4
    weights = tmp_path / "w.weights.h5"
    config = parse("--encoder", "resnet18", "--encoder-weights", str(weights))
    assert config.encoder_weights == str(weights.resolve())
    assert parse("--model", "unet").encoder is None and parse().depth == 4
    named = TrainConfig(model="unet", encoder="resnet18", seed=1)
    assert default_run_dir(named) == Path("runs") / "unet_resnet18-bce-s1"
    old = TrainConfig.from_dict({"model": "unet"})  # a config.json from before issue 12
    assert old.encoder is None and old.freeze_encoder_epochs == 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--freeze-encoder-epochs", "2"], "--freeze-encoder-epochs needs --encoder"),
        (["--encoder", "vgg"], "unknown encoder 'vgg'"),
        (["--model", "resunet", "--encoder", "resnet18"], "unet* or unetpp*"),
        (["--encoder", "resnet18", "--encoder-weights", "/no/such/w.h5"], "does not exist"),
    ],
)
def test_bad_encoder_flags_exit_2_with_one_line(flags, message, synth_dir, tmp_path, capsys):
    code = main(["--data", str(synth_dir), "--run-dir", str(tmp_path / "r"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_offline_imagenet_cli_is_one_line(synth_dir, tmp_path, monkeypatch, capsys):
    import kagglehub

    def offline(*args, **kwargs):
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kagglehub, "model_download", offline)
    code = main(["--data", str(synth_dir), "--run-dir", str(tmp_path / "r"),
                 "--image-size", "32", "--base-filters", "4", "--batch-size", "4", "--epochs", "1",
                 "--model", "unet", "--encoder", "resnet18", "--encoder-weights", "imagenet",
                 "--verbose", "0"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "resnet_18_imagenet" in err and "Network is unreachable" in err


def stem_of(path: Path) -> np.ndarray:
    from landslide_tf.training.runs import load_model_file

    model = load_model_file(path)
    return model.get_layer("encoder").get_layer("conv1_conv").kernel.numpy()


@pytest.mark.slow
def test_freeze_then_unfreeze_resumes_and_serves(synth_dir, tmp_path, monkeypatch):
    from landslide_tf.explain.explain import explain_run
    from landslide_tf.inference.export import export_run
    from landslide_tf.inference.predictor import Predictor

    monkeypatch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
    backbone = tiny_backbone()
    weights = tmp_path / "tiny.weights.h5"
    backbone.save_weights(str(weights))
    kernel = backbone.get_layer("conv1_conv").kernel.numpy()
    run_dir = tmp_path / "run"
    # float32: the run's predictions are compared with the (float32) SavedModel's below.
    argv = ["--data", str(synth_dir), "--run-dir", str(run_dir), "--image-size", "32",
            "--base-filters", "4", "--batch-size", "4", "--lr", "1e-2", "--model", "unet",
            "--encoder", "tiny_resnet", "--encoder-weights", str(weights),
            "--freeze-encoder-epochs", "1", "--verbose", "0",
            "--precision", "float32"]  # fmt: skip

    assert main([*argv, "--epochs", "1"]) == 0  # the frozen phase only
    expected = kernel[:, :, [0, 1, 2, 0], :] * 3 / 4  # rgb+dem: 4 channels
    np.testing.assert_allclose(stem_of(run_dir / "last.keras"), expected, rtol=1e-6)
    raw = json.loads((run_dir / "config.json").read_text())
    assert raw["encoder"] == "tiny_resnet" and raw["freeze_encoder_epochs"] == 1
    assert raw["encoder_weights"] == str(weights.resolve()) and raw["depth"] == 5

    assert main([*argv, "--epochs", "2"]) == 0  # resumes at the phase boundary, unfrozen
    assert json.loads((run_dir / "state.json").read_text())["epochs_done"] == 2
    assert not np.allclose(stem_of(run_dir / "last.keras"), expected)

    image, dem = raw_inputs(32, 32)
    from_run = Predictor.load(run_dir).predict(image, dem)
    saved = export_run(run_dir, tmp_path / "saved")
    np.testing.assert_allclose(Predictor.load(saved).predict(image, dem), from_run, atol=1e-4)
    result = explain_run(run_dir, out=tmp_path / "cam", n=2)
    assert result  # GradCAM runs on the head_features of the encoder model


def test_unfreezing_keeps_the_schedule_and_a_resume_after_it_keeps_the_optimizer(
    synth_dir, tmp_path, monkeypatch
):
    """The fresh optimizer after the frozen phase goes on with the schedule's step count; a
    run resumed after the frozen phase keeps its restored optimizer (Adam moments included)."""
    import keras

    from landslide_tf.training.optim import learning_rate

    monkeypatch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
    run_dir = tmp_path / "run"
    argv = ["--data", str(synth_dir), "--run-dir", str(run_dir), "--image-size", "32",
            "--base-filters", "4", "--batch-size", "4", "--model", "unet",
            "--encoder", "tiny_resnet", "--encoder-weights", "none", "--optimizer", "adamw",
            "--lr-schedule", "cosine", "--warmup-epochs", "1",
            "--freeze-encoder-epochs", "1", "--verbose", "0"]  # fmt: skip
    compiles: list[int] = []  # the optimizer object of each compile
    moments: list[float] = []  # at each fit's start: the sum of |Adam's first moments|
    original_compile, original_fit = keras.Model.compile, keras.Model.fit

    def compile(model, *args, **kwargs):  # noqa: A001
        compiles.append(id(kwargs["optimizer"]))
        return original_compile(model, *args, **kwargs)

    class CtrlCAfterEpoch2(keras.callbacks.Callback):
        """Ctrl-C once epoch 2 is committed (the run's own callbacks come first)."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    interrupt = [True]

    def fit(model, *args, **kwargs):
        built = [v for v in model.optimizer.variables if "momentum" in v.path]
        moments.append(sum(float(np.abs(v.numpy()).sum()) for v in built))
        if interrupt[0]:
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), CtrlCAfterEpoch2()]
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", compile)
    monkeypatch.setattr(keras.Model, "fit", fit)
    # a 3-epoch run stopped after epoch 2 (a cosine run cannot be extended with --epochs)
    assert main([*argv, "--epochs", "3"]) == 130
    assert json.loads((run_dir / "state.json").read_text())["epochs_done"] == 2
    assert len(set(compiles)) == 2  # frozen, then unfrozen with a fresh optimizer
    compiles.clear()
    moments.clear()
    interrupt[0] = False
    assert main([*argv, "--epochs", "3"]) == 0  # resumes after epoch 2: encoder unfrozen
    assert len(compiles) == 1  # built, compiled and restored once: no fresh optimizer
    assert len(moments) == 1 and moments[0] > 0  # the restored moments went on training
    monkeypatch.setattr(keras.Model, "compile", original_compile)
    monkeypatch.setattr(keras.Model, "fit", original_fit)

    n_train = len((run_dir / "train.txt").read_text().split())
    steps = -(-n_train // 4)
    model = keras.saving.load_model(run_dir / "last.keras", compile=True, safe_mode=False)
    assert int(model.optimizer.iterations.numpy()) == 3 * steps  # not 2 * steps: no restart
    lr0 = json.loads((run_dir / "config.json").read_text())["lr"]
    schedule = learning_rate(lr0, "cosine", epochs=3, steps_per_epoch=steps, warmup_epochs=1)
    lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert lr == pytest.approx(float(schedule(3 * steps)), rel=1e-5)
