"""Training safety: what a resume or an extension may keep from the run it goes on.

The moving average after the frozen-encoder phase, the tuned threshold of an extended run,
damaged ``state.json`` entries, temporary files of a killed save and edited split lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest

from landslide_tf.cli.train import main
from landslide_tf.errors import UserError
from landslide_tf.experiments.run import train
from landslide_tf.metrics.thresholds import threshold_path, write_threshold
from landslide_tf.training import runstate as cb
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.optim import build_optimizer
from landslide_tf.training.rundir import clear_run
from landslide_tf.training.runs import load_model_file
from landslide_tf.training.train import fit_run


def tiny(synth_dir: Path, run_dir: Path, **overrides) -> TrainConfig:
    """A run small enough for the default suite: 32x32, 4 base filters, depth 2."""
    values = dict(model="unet", data=str(synth_dir), run_dir=str(run_dir), epochs=1,
                  image_size=32, base_filters=4, depth=2, batch_size=4, lr=1e-3,
                  precision="float32")  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


def tiny_argv(synth_dir: Path, run_dir: Path, epochs: int) -> list[str]:
    return ["--model", "unet", "--data", str(synth_dir), "--run-dir", str(run_dir),
            "--epochs", str(epochs), "--image-size", "32", "--base-filters", "4",
            "--depth", "2", "--batch-size", "4", "--lr", "1e-3", "--precision", "float32",
            "--verbose", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(synth_dir, tmp_path_factory) -> Path:
    """One finished (trained and scored) 1-epoch run; tests change copies of it."""
    run_dir = tmp_path_factory.mktemp("safety") / "finished"
    train(tiny(synth_dir, run_dir), verbose=0)
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its content hash and modification time."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- 1: --ema with --freeze-encoder-epochs -------------------------------------------------


def test_the_moving_average_goes_on_from_the_weights_after_the_encoder_is_unfrozen(
    synth_dir, tmp_path, monkeypatch
):
    """The fresh optimizer of the unfrozen phase starts at step ``start * steps``, where Keras
    never copies the weights into its zero-initialised averages: before the fix the average
    after the unfreeze epoch was a few percent of the weights (0.99 momentum, 4 steps)."""
    pytest.importorskip("keras_hub")
    from test_encoders import TINY_RESNET

    from landslide_tf.models import ENCODERS
    from landslide_tf.models.encoders import EncoderSpec

    monkeypatch.setitem(ENCODERS, "tiny_resnet", EncoderSpec("resnet", "none", TINY_RESNET))
    run_dir = tmp_path / "run"
    config = tiny(synth_dir, run_dir, epochs=2, depth=5, encoder="tiny_resnet",
                  encoder_weights="none", freeze_encoder_epochs=1, ema=0.99)  # fmt: skip
    fit_run(config, verbose=0)

    checkpoint = run_dir / cb.checkpoint_name(2)  # after the unfrozen epoch
    model = load_model_file(checkpoint)
    assert model.get_layer("encoder").trainable
    model.compile(optimizer=build_optimizer(config, steps_per_epoch=1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.load_weights(checkpoint)  # as a resume does: weights and optimizer state
    raw = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    average = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables
               if v.path.endswith("_average")]  # fmt: skip
    assert len(average) == len(raw)
    raw_norm = np.sqrt(sum(float(np.sum(np.square(w))) for w in raw))
    average_norm = np.sqrt(sum(float(np.sum(np.square(w))) for w in average))
    assert average_norm == pytest.approx(raw_norm, rel=0.1)


# --- 2: the tuned threshold of an extended run ----------------------------------------------


def test_an_extended_run_drops_the_threshold_tuned_on_its_old_best_model(run_copy, synth_dir):
    """threshold.json goes with metrics.json before the new epochs commit (best.keras may
    change); without tuning again the run is scored at its config threshold."""
    write_threshold(run_copy, 0.3, metric="f1", split="val")  # tuned for the 1-epoch model
    result = train(tiny(synth_dir, run_copy, epochs=2, tune_threshold=False), verbose=0)
    assert result["epochs_trained"] == 1
    assert result["threshold"] == 0.5
    assert json.loads((run_copy / "metrics.json").read_text())["threshold"] == 0.5
    assert not threshold_path(run_copy).exists()


# --- 3: damaged state.json entries ---------------------------------------------------------


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"epochs_done": None, "best_epoch": None, "best_value": None}, "(no epochs_done)"),
        ({"best_value": "x"}, "(best_value='x')"),
        ({"best_value": "null"}, "(best_value=None)"),
        ({"best_value": None}, "(no best_value)"),
        ({"best_epoch": 7}, "(best_epoch=7 after epochs_done=1)"),
        ({"last_row": {"epoch": 1, "loss": "abc"}}, "(last_row['loss']='abc')"),
        ({"last_row": {"epoch": 3, "loss": 0.5}}, "(last_row={'epoch': 3"),
    ],
)
def test_damaged_state_entries_are_one_line(changes, expected, run_copy, synth_dir, capsys):
    """``None`` drops an entry, ``"null"`` writes a JSON null."""
    path = run_copy / cb.STATE_FILE
    state = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            state.pop(key)
        else:
            state[key] = None if value == "null" else value
    path.write_text(json.dumps(state))
    assert main(tiny_argv(synth_dir, run_copy, 2)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    assert f"{path} is damaged {expected}" in errors[0] and "--force" in errors[0]
    assert json.loads(path.read_text()) == state  # nothing was trained


# --- 4: temporary files of a killed save ---------------------------------------------------


def test_a_resume_removes_the_temporary_model_of_a_killed_save(run_copy, synth_dir):
    dead = dead_pid()
    stale = run_copy / f".epoch-0002.keras.{dead}.tmp.keras"  # killed inside epoch 2's save
    stale.write_bytes(b"PK half a model")
    live = run_copy / f".epoch-0002.keras.{os.getppid()}.tmp.keras"  # a live process's
    live.write_bytes(b"PK being written")
    user = run_copy / f".notes.txt.{dead}.tmp.txt"  # not a file of the run
    user.write_text("mine\n")
    fit_run(tiny(synth_dir, run_copy, epochs=2), verbose=0)
    assert cb.read_state(run_copy)["epochs_done"] == 2
    assert not stale.exists()
    assert live.read_bytes() == b"PK being written" and user.read_text() == "mine\n"


def test_force_clears_the_temporary_files_of_killed_saves_only(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    dead, live = dead_pid(), os.getppid()
    stale = [f".epoch-0003.keras.{dead}.tmp.keras", f"..best-0003.keras.{dead}.tmp.keras",
             f".best.keras.{dead}.tmp.keras", f".state.json.{dead}.tmp.json",
             f".metrics_val.json.{dead}.tmp.json"]  # fmt: skip
    kept = [f".best.keras.{live}.tmp.keras", f".notes.txt.{dead}.tmp.txt",
            f".epoch-0003.keras.{dead}.tmp.json", "notes.txt"]  # fmt: skip
    for name in stale + kept:
        (run_dir / name).write_bytes(b"x")
    clear_run(run_dir, None)
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(kept)


# --- 5: edited --split-dir lists -----------------------------------------------------------


def test_a_resume_with_edited_split_lists_is_refused_before_anything_is_written(
    synth_dir, tmp_path
):
    lists, run_dir = tmp_path / "lists", tmp_path / "run"
    fit_run(tiny(synth_dir, run_dir, split_dir=str(lists)), verbose=0)  # writes the lists
    assert (run_dir / "split_lists" / "train.txt").is_file()
    train_txt, val_txt = lists / "train.txt", lists / "val.txt"
    original = {p: p.read_text() for p in (train_txt, val_txt)}
    longer = tiny(synth_dir, run_dir, split_dir=str(lists), epochs=2)
    before = snapshot(run_dir)

    train_txt.write_text("".join(f"{s}\n" for s in original[train_txt].split()[1:]))
    with pytest.raises(UserError) as refused:
        fit_run(longer, verbose=0)
    message = str(refused.value)
    assert f"{train_txt} changed since {run_dir} trained 1 epoch(s)" in message
    assert "1 stem(s) removed, 0 added" in message and "--force" in message
    assert str(run_dir / "split_lists" / "train.txt") in message and "\n" not in message
    assert snapshot(run_dir) == before

    train_txt.write_text(original[train_txt])
    val_txt.write_text("".join(f"{s}\n" for s in reversed(original[val_txt].split())))
    with pytest.raises(UserError, match=r"val\.txt changed .*the same stems, reordered"):
        fit_run(longer, verbose=0)
    assert snapshot(run_dir) == before

    val_txt.write_text(original[val_txt])  # the lists it trained on: it goes on
    assert fit_run(longer, verbose=0).epochs_trained == 1
