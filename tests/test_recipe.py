"""Tests for landslide_tf.training.recipe: --preset strong, given split lists, scoring after training."""

import json
import random
import re
from pathlib import Path

import pytest

from landslide_tf.cli.train import main
from landslide_tf.cli.train_args import build_parser, config_from_args
from landslide_tf.errors import UserError
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.recipe import PRESETS, STRONG, preset_config, validate_recipe


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_strong_preset_picks_the_model_and_leaves_the_data_choices_to_the_user():
    assert PRESETS["strong"] is STRONG
    assert not {"modalities", "data", "split_dir", "run_dir"} & set(STRONG)
    args = build_parser().parse_args(["--preset", "strong", "--modalities", "rgb"])
    config = config_from_args(args)
    assert config.model == STRONG["model"] and config.modalities == "rgb"
    assert config.augment and config.augment_policy == "strong" and config.tta
    assert config.optimizer == "adamw" and config.lr_schedule == "cosine"
    assert config.tune_threshold and config.precision == "auto" and config.image_size == 128
    assert config.tta_transforms == "dihedral"  # chosen on the selection split (recipe.py)
    fast = config_from_args(build_parser().parse_args(["--preset", "fast"]))
    assert fast.model == "unet" and fast.epochs == 30 and fast.tta_transforms == "dihedral"
    explicit = config_from_args(build_parser().parse_args(["--preset", "strong", "--epochs", "3"]))
    assert explicit.epochs == 3  # flags override the preset
    validate_recipe(config)


def test_old_config_without_recipe_fields_loads_with_the_paper_defaults():
    config = TrainConfig.from_dict({"model": "unet", "lr": 1e-3})
    assert config.optimizer == "adam" and config.lr_schedule == "constant"
    assert config.tta is False and config.test_split == "test"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--test-split", "train"], "invalid choice"),
        (["--augment-policy", "wild"], "invalid choice"),
        (["--weight-decay", "0.1"], "needs --optimizer adamw"),
        (["--deep-supervision"], "needs a U-Net++ model"),  # the argv's model is unet
    ],
)
def test_bad_recipe_flags_exit_2(flags, message, synth_dir, tmp_path, capsys):
    argv = ["--model", "unet", "--data", str(synth_dir), "--run-dir", str(tmp_path / "r")]
    try:
        rc = main([*argv, *flags])
    except SystemExit as exc:
        rc = int(exc.code)
    assert rc == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_validate_recipe_names_the_bad_value():
    with pytest.raises(UserError, match="unknown --test-split 'x'"):
        validate_recipe(TrainConfig(test_split="x"))


def test_tuning_the_threshold_on_the_scored_val_split_is_refused():
    with pytest.raises(UserError, match="would tune the threshold on the split it scores") as exc:
        validate_recipe(TrainConfig(test_split="val", tune_threshold=True))
    assert "--select-from-train" in str(exc.value) and "\n" not in str(exc.value)
    validate_recipe(TrainConfig(test_split="val"))  # scored at the run's threshold
    validate_recipe(TrainConfig(test_split="test", tune_threshold=True))


@pytest.mark.slow
def test_given_read_only_lists_train_records_them_and_skip_test(
    synth_dir, tmp_path, capsys, caplog
):
    from landslide_tf.data import find_samples

    stems = sorted({s.stem for s in find_samples(synth_dir)})
    given = tmp_path / "given"
    given.mkdir()
    (given / "train.txt").write_text("".join(f"{s}\n" for s in stems[:16]))
    (given / "val.txt").write_text("".join(f"{s}\n" for s in stems[16:24]))
    before = _snapshot(given)
    run_dir = tmp_path / "run"
    argv = [
        "--preset", "strong", "--model", "unet", "--data", str(synth_dir),
        "--split-dir", str(given), "--run-dir", str(run_dir), "--image-size", "32",
        "--base-filters", "4", "--depth", "2", "--epochs", "2", "--verbose", "0",
    ]  # fmt: skip
    given.chmod(0o555)  # read-only like shared data (root ignores it: the snapshot decides)
    try:
        assert main(argv) == 0
    finally:
        given.chmod(0o755)
    out = capsys.readouterr().out
    assert _snapshot(given) == before
    assert "test metrics skipped" in out and "val metrics of" in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["split_dir"] == str(given)
    assert config["split_files"] == {
        "train": str(given / "train.txt"),
        "val": str(given / "val.txt"),
        "test": None,
    }
    for name in ("train", "val"):
        copied = run_dir / "split_lists" / f"{name}.txt"
        assert copied.read_text() == (given / f"{name}.txt").read_text()
    assert not (run_dir / "metrics.json").exists()
    tuned = json.loads((run_dir / "threshold.json").read_text())
    assert 0.0 <= tuned["threshold"] <= 1.0 and tuned["tta"] is True
    val = json.loads((run_dir / "metrics_val.json").read_text())
    assert val["threshold"] == tuned["threshold"] and val["n_tiles"] == 8

    # --test-split val with the preset's --tune-threshold would tune on the scored split
    capsys.readouterr()
    assert main([*argv, "--test-split", "val"]) == 2
    assert "would tune the threshold on the split it scores" in capsys.readouterr().err
    # without it val is scored (resume-free: the finished run is only re-scored), with a
    # warning that the stored threshold was tuned on val
    assert main([*argv, "--test-split", "val", "--no-tune-threshold"]) == 0
    assert "val metrics of" in capsys.readouterr().out
    assert "scored at the threshold tuned on val itself" in caplog.text
    assert _snapshot(given) == before


@pytest.mark.slow
def test_deep_supervision_trains_a_unetpp_whose_heads_are_averaged(synth_dir, tmp_path):
    import keras
    import numpy as np

    from landslide_tf.inference.predictor import Predictor

    run_dir = tmp_path / "deep"
    argv = [
        "--model", "unetpp", "--deep-supervision", "--data", str(synth_dir), "--run-dir",
        str(run_dir), "--image-size", "32", "--base-filters", "4", "--depth", "2",
        "--epochs", "1", "--batch-size", "4", "--verbose", "0",
    ]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((run_dir / "config.json").read_text())["deep_supervision"] is True
    model = keras.models.load_model(run_dir / "best.keras", compile=False)
    heads = [layer.name for layer in model.layers if layer.name.startswith("logits_")]
    assert heads == ["logits_1", "logits_2"]  # one per x_0_j, depth 2
    assert type(model.get_layer("logits")).__name__ == "Average"
    x = np.random.default_rng(0).random((1, 32, 32, model.input_shape[-1]), "float32")
    mean = keras.ops.mean(
        keras.ops.stack([keras.Model(model.inputs, model.get_layer(h).output)(x) for h in heads]),
        axis=0,
    )
    expected = 1.0 / (1.0 + np.exp(-np.asarray(mean, "float32")))
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-5)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    prob = Predictor.load(run_dir).predict(image, rng.random((32, 32), "float32") * 100)
    assert prob.shape == (32, 32) and np.isfinite(prob).all()  # the reload path users take


# ------------------------------------ issue 20: --select-from-train, the honest protocol
class _Tile:
    def __init__(self, stem: str) -> None:
        self.stem = stem


def _given(n_train: int = 40, n_val: int = 10) -> dict[str, list]:
    return {
        "train": [_Tile(f"t{i:03d}") for i in range(n_train)],
        "val": [_Tile(f"v{i:03d}") for i in range(n_val)],
        "test": [],
    }


def test_selection_is_disjoint_and_deterministic_for_a_seed():
    from landslide_tf.training.selection import carve_selection

    given = _given()
    carved = carve_selection(given, 0.25, seed=7)
    stems = {name: {s.stem for s in v} for name, v in carved.items()}
    assert len(stems["val"]) == 10 and len(stems["train"]) == 30
    assert not stems["train"] & stems["val"] and not stems["train"] & stems["test"]
    assert not stems["val"] & stems["test"]
    assert stems["train"] | stems["val"] == {s.stem for s in given["train"]}
    assert stems["test"] == {s.stem for s in given["val"]}  # scored, never selected on
    again = carve_selection(_given(), 0.25, seed=7)
    assert {s.stem for s in again["val"]} == stems["val"]
    # the rule of benchmarks/_protocol.honest_splits: the flag reproduces its lists
    train_list = [s.stem for s in given["train"]]
    assert stems["val"] == set(random.Random(7).sample(train_list, 10))
    assert {s.stem for s in carve_selection(given, 0.25, seed=8)["val"]} != stems["val"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"select_from_train": 1.5}, "must be in (0, 1)"),
        ({"split_dir": None}, "needs given split lists"),
        ({"test_split": "val"}, "drop --test-split val"),
    ],
)
def test_select_from_train_bad_settings_are_one_line_errors(changes, message):
    from landslide_tf.training.selection import validate_selection

    config = TrainConfig(**{"select_from_train": 0.2, "split_dir": "given", **changes})
    with pytest.raises(UserError, match=re.escape(message)):
        validate_selection(config)


def test_select_from_train_refuses_lists_with_a_test_split():
    from landslide_tf.training.selection import carve_selection

    with pytest.raises(UserError, match="train and val only"):
        carve_selection({**_given(), "test": [_Tile("x")]}, 0.2, seed=1)


def test_train_select_from_train_scores_val_once_untouched(
    synth_dir, tmp_path, capsys, monkeypatch
):
    from landslide_tf.data import find_samples, pipeline

    stems = sorted({s.stem for s in find_samples(synth_dir)})
    given = tmp_path / "given"
    given.mkdir()
    (given / "train.txt").write_text("".join(f"{s}\n" for s in stems[:16]))
    (given / "val.txt").write_text("".join(f"{s}\n" for s in stems[16:24]))
    val_stems = set(stems[16:24])
    calls: list[set[str]] = []
    real = pipeline.make_dataset

    def spy(samples, *args, **kwargs):
        calls.append({s.stem for s in samples})
        return real(samples, *args, **kwargs)

    monkeypatch.setattr(pipeline, "make_dataset", spy)
    run_dir = tmp_path / "run"
    argv = [
        "--model", "unet", "--data", str(synth_dir), "--split-dir", str(given),
        "--run-dir", str(run_dir), "--image-size", "32", "--base-filters", "4", "--depth", "2",
        "--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--verbose", "0",
        "--tune-threshold", "--select-from-train", "0.25",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "val (untouched) metrics of" in out and "F1 plateau" in out

    # every read before the final scoring stays off val; after it only its pictures
    touching = [i for i, c in enumerate(calls) if c & val_stems]
    assert touching and calls[touching[0]] == val_stems
    assert all(c <= val_stems for c in calls[touching[0] :])  # predictions.png
    selection = set((run_dir / "selection.txt").read_text().split())
    assert len(selection) == 4 and selection <= set(stems[:16])
    assert any(c == selection for c in calls[: touching[0]])  # checkpoint + threshold there

    config = json.loads((run_dir / "config.json").read_text())
    assert config["select_from_train"] == 0.25 and config["protocol"] == "select-from-train"
    record = config["selection"]
    assert record["seed"] == config["select_seed"] == 0 and record["sizes"] == {
        "train": 12,
        "val": 4,
        "test": 8,
    }
    assert set(record["hashes"]) == {"given_train", "given_val", "train", "selection"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split_role"] == "val (untouched)" and metrics["n_tiles"] == 8
    assert metrics["protocol"] == "select-from-train"
    tuned = json.loads((run_dir / "threshold.json").read_text())
    assert tuned["split_role"] == "selection (carved from train)"
    assert metrics["threshold"] == tuned["threshold"]


def test_flips_of_oriented_terrain_channels_are_warned_about(caplog):
    """Review finding: --augment (and --tta) flip and rotate derived aspect/hillshade as
    pixels, so their direction disagrees with the DEM; the docs named aspect only."""
    from landslide_tf.training.recipe import oriented_channels_warning

    shade = TrainConfig(modalities="rgb+dem", derived=["slope", "hillshade"], augment=True)
    message = oriented_channels_warning(shade)
    assert message is not None and "--augment" in message and "hillshade" in message
    assert "slope" not in message.split("channel")[0]  # slope is not named as affected
    both = TrainConfig(modalities="dem", derived=["aspect"], augment=True, tta=True)
    assert "--augment and --tta" in oriented_channels_warning(both)
    assert oriented_channels_warning(TrainConfig(derived=["slope"], augment=True, tta=True)) is None
    assert oriented_channels_warning(TrainConfig(derived=["aspect"])) is None  # nothing flips
    with caplog.at_level("WARNING", logger="landslide_tf"):
        validate_recipe(shade)
    assert any("hillshade" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "flags, field, value",
    [
        (["--optimizer", "adam"], "weight_decay", 0.0),
        (["--lr-schedule", "constant"], "warmup_epochs", 0.0),
        (["--optimizer", "adam", "--weight-decay", "0.01"], "weight_decay", 0.01),
        (["--lr-schedule", "constant", "--warmup-epochs", "0.5"], "warmup_epochs", 0.5),
    ],
)
def test_an_explicit_optimizer_or_schedule_drops_the_presets_settings_for_the_other(
    flags, field, value
):
    """``--preset strong --optimizer adam`` was refused for the preset's AdamW decay, and
    ``--lr-schedule constant`` recorded the cosine warm-up it does not have; a value the user
    gives for the field itself still stands (and is validated as before)."""
    from landslide_tf.training.optim import build_optimizer

    assert PRESETS["strong"]["weight_decay"] and PRESETS["strong"]["warmup_epochs"]
    config = config_from_args(build_parser().parse_args(["--preset", "strong", *flags]))
    assert getattr(config, field) == value
    if value == 0.0:
        build_optimizer(config, steps_per_epoch=10)  # no UserError


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_with_a_model_and_loss_gives_the_command_lines_config(preset):
    """The notebooks built ``TrainConfig(model=MODEL, **PRESETS[preset])``, a TypeError for
    the presets that name a model (strong, fast); ``preset_config`` is the merge the command
    line uses, so both give one config for one choice."""
    given = {"model": "resunet", "loss": "focal", "epochs": 2, "depth": None, "batch_size": None}
    config = preset_config(preset, **given)
    assert (config.model, config.loss, config.epochs) == ("resunet", "focal", 2)
    expected_depth = PRESETS[preset].get("depth", TrainConfig().depth)
    assert config.depth == expected_depth  # None: the preset's value
    flags = ["--preset", preset, "--model", "resunet", "--loss", "focal", "--epochs", "2"]
    assert config == config_from_args(build_parser().parse_args(flags))


def test_preset_config_keeps_the_command_lines_rules():
    config = preset_config("strong", optimizer="adam", lr_schedule="constant")
    assert (config.weight_decay, config.warmup_epochs) == (0.0, 0.0)
    assert preset_config("quick", modalities="rgb").derived == []
    assert preset_config("quick", modalities="rgb", derived=["slope"]).derived == ["slope"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: preset_config("strongest"), "unknown preset 'strongest'"),
        (lambda: preset_config("fast", epoch=3), "unknown training setting(s): epoch"),
    ],
)
def test_preset_config_names_a_bad_preset_or_setting(call, message):
    with pytest.raises(UserError, match=re.escape(message)):
        call()
