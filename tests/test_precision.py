"""Tests for landslide_tf.training.precision: the auto rule on faked hardware, recording, conversion."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from landslide_tf.errors import UserError
from landslide_tf.training import precision as prec
from landslide_tf.training.config import TrainConfig

BF16_CPU = frozenset({"avx2", "avx512f", "avx512_bf16"})
AMX_CPU = frozenset({"avx2", "amx_tile", "amx_bf16"})
OLD_CPU = frozenset({"avx2", "fma"})


@pytest.mark.parametrize(
    "hw, expected",
    [
        (prec.Hardware(tpu=True, cpu_flags=OLD_CPU), "bfloat16"),
        (prec.Hardware(gpus=((8, 0),)), "bfloat16"),  # A100
        (prec.Hardware(gpus=((9, 0), (9, 0))), "bfloat16"),  # 2x H100
        (prec.Hardware(gpus=((7, 5),), cpu_flags=BF16_CPU), "float16"),  # T4: the GPU decides
        (prec.Hardware(gpus=((7, 0),)), "float16"),  # V100
        (prec.Hardware(gpus=((8, 6), (7, 5))), "float16"),  # mixed cards: the slowest decides
        (prec.Hardware(gpus=((6, 1),), cpu_flags=BF16_CPU), "float32"),  # P100/GTX 10xx
        (prec.Hardware(cpu_flags=BF16_CPU), "bfloat16"),
        (prec.Hardware(cpu_flags=AMX_CPU), "bfloat16"),
        (prec.Hardware(cpu_flags=OLD_CPU), "float32"),
        (prec.Hardware(), "float32"),
    ],
)
def test_auto_rule_on_faked_hardware(hw, expected, monkeypatch):
    monkeypatch.delenv(prec.ENV_VAR, raising=False)
    chosen, reason = prec.choose_precision(hw)
    assert chosen == expected
    assert reason and "\n" not in reason
    assert prec.resolve_precision("auto", hw) == (chosen, reason)


def test_explicit_and_legacy_precisions(monkeypatch):
    gpu, cpu = prec.Hardware(gpus=((8, 0),)), prec.Hardware(cpu_flags=OLD_CPU)
    assert prec.resolve_precision("float16", cpu)[0] == "float16"
    assert prec.resolve_precision("float32", gpu)[0] == "float32"
    # --mixed-precision keeps its old meaning: float16 on any GPU, bfloat16 elsewhere
    assert prec.resolve_precision("mixed", gpu)[0] == "float16"
    assert prec.resolve_precision("mixed", cpu)[0] == "bfloat16"
    monkeypatch.setenv(prec.ENV_VAR, "float32")
    assert prec.resolve_precision("auto", gpu) == ("float32", "$LANDSLIDE_TF_PRECISION=float32")
    with pytest.raises(UserError, match="unknown precision 'half'"):
        prec.resolve_precision("half", cpu)


def test_float16_without_a_gpu_warns_and_says_why(caplog):
    """Issue 22 item 7: float16 on a CPU is emulated; the choice is not silent."""
    cpu, gpu = prec.Hardware(cpu_flags=BF16_CPU), prec.Hardware(gpus=((7, 5),))
    with caplog.at_level("WARNING", logger="landslide_tf.training.precision"):
        chosen, reason = prec.resolve_precision("float16", cpu)
    assert chosen == "float16" and "no GPU" in reason
    assert any("bfloat16" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="landslide_tf.training.precision"):
        assert prec.resolve_precision("float16", gpu) == ("float16", "--precision float16 given")
    assert not caplog.records


def test_cpu_flags_from_a_cpuinfo_file(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Fake EPYC\nflags\t\t: fpu avx2 AVX512_BF16\n\n"
        "processor\t: 1\nmodel name\t: Fake EPYC\nflags\t\t: fpu avx2 avx512_bf16\n"
    )
    flags, name = prec.read_cpu_info(info)
    assert "avx512_bf16" in flags and name == "Fake EPYC"
    assert prec.read_cpu_info(tmp_path / "missing") == (frozenset(), "")


def test_old_config_json_without_precision_loads():
    old = TrainConfig().to_dict()
    del old["precision"]
    assert TrainConfig.from_dict(old).precision == "float32"
    assert TrainConfig.from_dict({**old, "mixed_precision": True}).precision == "mixed"
    assert TrainConfig().precision == "auto"
    assert TrainConfig.from_dict({"model": "unet"}).precision == "auto"  # e.g. a study's dict


def test_cli_flags_and_alias():
    from landslide_tf.cli.train_args import build_parser, config_from_args

    def parse(*flags):
        return config_from_args(build_parser().parse_args(list(flags))).precision

    assert parse() == "auto"
    assert parse("--precision", "float16") == "float16"
    assert parse("--mixed-precision") == "mixed"
    assert parse("--no-mixed-precision") == "float32"


def test_run_precision_records_and_resume_keeps_it(monkeypatch, caplog):
    caplog.set_level("INFO", logger="landslide_tf.training.precision")
    monkeypatch.setattr(prec, "detect_hardware", lambda strategy="default": prec.Hardware())
    monkeypatch.delenv(prec.ENV_VAR, raising=False)
    new = prec.run_precision(TrainConfig(precision="auto"), None)
    assert new["precision_used"] == "float32" and "no avx512_bf16" in new["precision_reason"]
    stored = {"precision_used": "bfloat16", "precision_reason": "recorded"}
    again = prec.run_precision(TrainConfig(precision="float16"), stored)
    assert again == {"precision_used": "bfloat16", "precision_reason": "recorded"}
    assert "resuming in bfloat16" in caplog.text
    legacy = prec.run_precision(TrainConfig(), {"mixed_precision": False})
    assert legacy["precision_used"] == "float32"


@pytest.fixture
def _float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.usefixtures("_float32_after")
def test_convert_model_keeps_weights_and_float32_output():
    from landslide_tf.models import build_model

    prec.apply_precision("bfloat16")
    model = build_model("unet", input_shape=(16, 16, 3), base_filters=4, depth=2)
    prec.apply_precision("float32")
    assert prec.model_precision(model) == "bfloat16"
    full = prec.convert_model(model, "float32")
    assert prec.model_precision(full) == "float32"
    assert all(layer.compute_dtype == "float32" for layer in full.layers)
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    a, b = np.asarray(model(x)), np.asarray(full(x))
    assert b.dtype == np.float32 and np.abs(a - b).max() < 0.05
    assert prec.convert_model(full, "float32") is full


def nested_policies(model: keras.Model) -> set[str]:
    """Dtype policies of every weighted layer, inside nested sub-models too (not the wrappers)."""
    out: set[str] = set()
    for layer in model.layers:
        if getattr(layer, "layers", None):
            out |= nested_policies(layer)
        elif layer.weights:
            out.add(layer.dtype_policy.name)
    return out


@pytest.mark.usefixtures("_float32_after")
def test_model_precision_and_convert_model_see_nested_models():
    """A float32 wrapper around a bfloat16 sub-model computes mostly in bfloat16."""
    inner_in = keras.Input((4,))
    hidden = keras.layers.Dense(4, dtype="mixed_bfloat16")(inner_in)
    hidden = keras.layers.Dense(4, dtype="mixed_bfloat16")(hidden)
    inner = keras.Model(inner_in, keras.layers.Dense(4, dtype="mixed_bfloat16")(hidden))
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, inner(keras.layers.Dense(4)(outer_in)))
    assert prec.model_precision(outer) == "bfloat16"
    full = prec.convert_model(outer, "float32")
    assert full is not outer and nested_policies(full) == {"float32"}


@pytest.mark.usefixtures("_float32_after")
@pytest.mark.parametrize("source, target", [("bfloat16", "float32"), ("float32", "bfloat16")])
def test_convert_model_converts_the_pretrained_encoder(source, target, monkeypatch):
    """Every layer of the converted model, the ``encoder`` sub-model's included, computes in
    the target precision: the output is the one of the model built in that precision."""
    pytest.importorskip("keras_hub")
    from test_encoders import TINY_RESNET

    from landslide_tf.models import ENCODERS, build_model
    from landslide_tf.models.encoders import EncoderSpec

    monkeypatch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
    kwargs = {"input_shape": (32, 32, 4), "base_filters": 4, "depth": 2,
              "encoder": "tiny_resnet", "encoder_weights": "none"}  # fmt: skip
    prec.apply_precision(source)
    model = build_model("unet", **kwargs)
    prec.apply_precision(target)
    reference = build_model("unet", **kwargs)
    reference.set_weights(model.get_weights())
    prec.apply_precision("float32")
    model.get_layer("encoder").trainable = False  # a frozen encoder stays frozen

    converted = prec.convert_model(model, target)
    assert not converted.get_layer("encoder").trainable
    assert nested_policies(converted) == {prec.POLICIES[target]}
    assert nested_policies(converted.get_layer("encoder")) == {prec.POLICIES[target]}
    assert prec.model_precision(converted) == target
    x = np.random.default_rng(0).random((2, 32, 32, 4), dtype=np.float32)
    np.testing.assert_allclose(
        np.asarray(converted(x)), np.asarray(reference(x)), rtol=0, atol=1e-6
    )
    assert prec.convert_model(converted, target) is converted


@pytest.mark.usefixtures("_float32_after")
def test_apply_precision_sets_the_global_policy():
    assert prec.apply_precision("float16") == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    with pytest.raises(UserError):
        prec.apply_precision("auto")


def test_train_records_precision_in_config_json(synth_dir, tmp_path, monkeypatch):
    from landslide_tf.experiments.run import train

    monkeypatch.setenv(prec.ENV_VAR, "bfloat16")
    config = TrainConfig(
        model="unet", loss="bce", epochs=1, base_filters=4, depth=2, image_size=32,
        batch_size=8, data=str(synth_dir), run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    train(config, verbose=0)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    assert stored["precision"] == "auto"
    assert stored["precision_used"] == "bfloat16"
    assert stored["precision_reason"] == "$LANDSLIDE_TF_PRECISION=bfloat16"
    assert stored["steps_per_execution_used"] == 1  # CPU
    assert keras.mixed_precision.global_policy().name == "float32"  # reset after training
    from landslide_tf.training.runs import load_model_file

    assert prec.model_precision(load_model_file(tmp_path / "run" / "best.keras")) == "bfloat16"


@pytest.fixture
def bf16_run(synth_dir, tmp_path):
    """A run dir whose best.keras was built under mixed_bfloat16 (as auto trains on such CPUs)."""
    from landslide_tf.data import find_samples, make_split
    from landslide_tf.models import build_model

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(model="unet", data=str(synth_dir), run_dir=str(run_dir), image_size=16)
    raw = {**config.resolved().to_dict(), "precision_used": "bfloat16", "precision_reason": "x"}
    (run_dir / "config.json").write_text(json.dumps(raw))
    make_split(find_samples(synth_dir), seed=config.seed, out_dir=run_dir)
    prec.apply_precision("bfloat16")
    try:
        model = build_model("unet", input_shape=(16, 16, 4), base_filters=4, depth=2)
    finally:
        prec.apply_precision("float32")
    model.save(run_dir / "best.keras")
    return run_dir


@pytest.mark.usefixtures("_float32_after")
def test_evaluate_predict_export_precision(bf16_run, tmp_path):
    from landslide_tf.evaluation.evaluate import evaluate_run
    from landslide_tf.inference.export import export_run
    from landslide_tf.inference.predictor import Predictor, load_inference_model

    # issue 22: inference computes in float32 unless asked; None keeps the trained precision
    assert prec.model_precision(Predictor.load(bf16_run).model) == "float32"
    assert prec.model_precision(Predictor.load(bf16_run, precision=None).model) == "bfloat16"
    assert prec.model_precision(Predictor.load(bf16_run, precision="float32").model) == "float32"
    assert prec.model_precision(load_inference_model(bf16_run)) == "float32"
    assert prec.model_precision(load_inference_model(bf16_run, "bfloat16")) == "bfloat16"
    as_trained = evaluate_run(bf16_run, split="val", precision=None)
    full = evaluate_run(bf16_run, split="val")  # float32 by default, like predict and export
    assert abs(as_trained["miou"] - full["miou"]) < 0.05
    # issue 23 case 4: each metrics file says how it was computed; other settings, other file
    assert (as_trained["inference_precision"], as_trained["file"]) == (
        "bfloat16",
        "metrics_val_bfloat16.json",
    )
    assert (full["inference_precision"], full["file"]) == ("float32", "metrics_val.json")
    flipped = evaluate_run(bf16_run, split="test", tta=True)
    assert flipped["file"] == "metrics_test_tta.json" and flipped["tta"] is True
    assert not (bf16_run / "metrics.json").exists()  # the training result is never overwritten
    for name in ("metrics_val_bfloat16.json", "metrics_val.json", "metrics_test_tta.json"):
        stored = json.loads((bf16_run / name).read_text())
        assert {"inference_precision", "tta", "threshold"} <= set(stored), name
    export_run(bf16_run, tmp_path / "saved")  # float32 by default
    card = json.loads((tmp_path / "saved" / "assets" / "model_card.json").read_text())
    assert json.dumps(card).count('"exported_precision": "float32"') == 1


#: Issue 22 item 1: the same run and input give these probabilities on every inference path,
#: to this absolute tolerance (float32 everywhere; only op order may differ).
ONE_ANSWER_ATOL = 1e-5


@pytest.mark.usefixtures("_float32_after")
def test_one_answer_per_model_predictor_scene_and_saved_model(tmp_path):
    """A run trained in bfloat16 (what ``auto`` picks on such CPUs) gives the same
    probabilities via Predictor, the scene mapper and the exported SavedModel loaded with
    plain ``tf.saved_model.load``, with no precision flag anywhere."""
    import cv2
    import tensorflow as tf
    from test_predict import make_run, raw_inputs, write_png

    from landslide_tf.inference.export import export_run
    from landslide_tf.inference.predictor import Predictor
    from landslide_tf.inference.scene import predict_scene

    prec.apply_precision("bfloat16")
    try:
        run = make_run(tmp_path / "run")  # a few training steps under mixed_bfloat16
    finally:
        prec.apply_precision("float32")
    from landslide_tf.training.runs import load_model_file

    assert prec.model_precision(load_model_file(run / "best.keras")) == "bfloat16"

    image, dem = raw_inputs(64, 80, seed=3)
    dem = np.round(dem).astype(np.float32)  # what a 16-bit DEM PNG can hold
    predictor = Predictor.load(run)
    ours = predictor.predict(image, dem)
    assert ours.shape == (64, 80) and np.isfinite(ours).all()

    # the scene mapper: one window covering the whole scene gives that window exactly
    write_png(tmp_path / "scene.png", image)
    assert cv2.imwrite(str(tmp_path / "dem.png"), dem.astype(np.uint16))
    predict_scene(
        predictor, tmp_path / "scene.png", tmp_path / "prob.npy", dem=tmp_path / "dem.png",
        window=80,
    )  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "prob.npy"), ours, atol=ONE_ANSWER_ATOL)

    # the exported SavedModel, through plain TensorFlow
    saved = export_run(run, tmp_path / "saved")
    serving = tf.saved_model.load(str(saved)).signatures["serving_default"]
    got = serving(image=tf.constant(image[np.newaxis]), dem=tf.constant(dem[np.newaxis]))
    np.testing.assert_allclose(got["probability"].numpy()[0], ours, atol=ONE_ANSWER_ATOL)

    # and a Predictor over that SavedModel
    exported = Predictor.load(saved).predict(image, dem)
    np.testing.assert_allclose(exported, ours, atol=ONE_ANSWER_ATOL)
    # the rule matters: the model as trained (bfloat16) answers differently
    trained = Predictor.load(run, precision=None).predict(image, dem)
    assert np.abs(trained - ours).max() > ONE_ANSWER_ATOL


def test_one_answer_per_model_evaluate_scores_what_predict_gives(tmp_path):
    """Issue 22 item 1, the evaluate leg: a run trained in bfloat16 is evaluated, with no
    precision flag, by the same float32 model that predict, scene and the SavedModel use
    (test above): its figures equal those of the Predictor's probabilities on the same tiles."""
    from landslide_tf.data import find_samples, synthesize
    from landslide_tf.data.bijie import read_sample_arrays
    from landslide_tf.evaluation.evaluate import evaluate_run
    from landslide_tf.experiments.run import train
    from landslide_tf.inference.predictor import Predictor
    from landslide_tf.metrics.segmentation import SegmentationMetrics

    data = synthesize(tmp_path / "bijie", n=16, seed=0, min_size=32, max_size=32)  # no resize
    run = tmp_path / "run"
    config = TrainConfig(model="unet", data=str(data), run_dir=str(run), epochs=1, image_size=32,
                         base_filters=4, depth=2, batch_size=4, lr=1e-2, precision="bfloat16")  # fmt: skip
    try:
        train(config, verbose=0)
    finally:
        prec.apply_precision("float32")
    assert json.loads((run / "config.json").read_text())["precision"] == "bfloat16"
    scored = evaluate_run(run, split="test")
    assert scored["inference_precision"] == "float32"

    stems = set((run / "test.txt").read_text().split())
    predictor = Predictor.load(run)
    ours = SegmentationMetrics()
    for sample in (s for s in find_samples(data) if s.stem in stems):
        rgb, dem, mask, _ = read_sample_arrays(sample)
        prob = predictor.predict(rgb, dem)
        truth = (np.zeros(prob.shape) if mask is None else mask > 0).astype(np.float32)
        ours.update(truth[np.newaxis, ..., np.newaxis], prob[np.newaxis, ..., np.newaxis])
    expected = ours.result(threshold=scored["threshold"])
    for key in ("auc", "miou", "f1", "precision", "recall"):
        assert scored[key] == pytest.approx(expected[key], abs=1e-4), key
