"""Tests for landslide_tf.training.recipe: --preset strong, given split lists, scoring after training."""

import json
from pathlib import Path

import pytest

from landslide_tf.cli.train import main
from landslide_tf.cli.train_args import build_parser, config_from_args
from landslide_tf.errors import UserError
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.recipe import PRESETS, STRONG, validate_recipe


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


@pytest.mark.slow
def test_given_read_only_lists_train_records_them_and_skip_test(synth_dir, tmp_path, capsys):
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

    # --test-split val scores val (resume-free: the finished run is only re-scored)
    capsys.readouterr()
    assert main([*argv, "--test-split", "val"]) == 0
    assert "val metrics of" in capsys.readouterr().out
    assert _snapshot(given) == before
