"""``--finetune-loss``/``--finetune-epochs``: the last epochs train with another loss (the
Lovasz hinge fine-tuning of issue 21) on the same optimizer, also after a resume."""

import json
import logging

import keras
import pytest

from landslide_tf.cli.train_args import build_parser, config_from_args
from landslide_tf.errors import UserError
from landslide_tf.experiments.run import train
from landslide_tf.training import runstate as rs
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.fit import loss_phases
from landslide_tf.training.rundir import validate_config


def _tiny(synth_dir, run_dir, **overrides) -> TrainConfig:
    values = dict(model="unet", data=str(synth_dir), run_dir=str(run_dir), epochs=2,
                  image_size=32, base_filters=4, depth=2, batch_size=4, lr=1e-2, loss="bce_dice",
                  finetune_loss="lovasz_hinge", finetune_epochs=1, precision="float32")  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


def test_the_flags_reach_the_config():
    args = build_parser().parse_args(["--finetune-loss", "lovasz_hinge", "--finetune-epochs", "3"])
    config = config_from_args(args)
    assert (config.finetune_loss, config.finetune_epochs) == ("lovasz_hinge", 3)
    plain = config_from_args(build_parser().parse_args([]))
    assert (plain.finetune_loss, plain.finetune_epochs) == (None, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"finetune_loss": None}, "go together"),
        ({"finetune_epochs": 0}, "go together"),
        ({"finetune_loss": "nope"}, "unknown --finetune-loss 'nope'"),
        ({"finetune_epochs": 5, "epochs": 5}, "must be fewer than --epochs 5"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, overrides, message):
    config = _tiny(tmp_path / "data", tmp_path / "run", **overrides)
    with pytest.raises(UserError, match=message):
        validate_config(config)
    assert not (tmp_path / "run").exists()


def test_the_fits_split_where_the_finetuning_starts():
    config = TrainConfig(epochs=10, finetune_loss="lovasz_hinge", finetune_epochs=3)
    assert loss_phases([(0, 10, False)], config) == [(0, 7, False, False), (7, 10, False, True)]
    assert loss_phases([(8, 10, False)], config) == [(8, 10, False, True)]  # resumed inside it
    assert loss_phases([(0, 10, False)], TrainConfig(epochs=10)) == [(0, 10, False, False)]


class _Compiles:
    """Records every ``Model.compile``: the loss's class and the optimizer object."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, int]] = []
        original = keras.Model.compile

        def compile(model, *args, **kwargs):  # noqa: A001
            self.calls.append((type(kwargs["loss"]).__name__, id(kwargs["optimizer"])))
            return original(model, *args, **kwargs)

        monkeypatch.setattr(keras.Model, "compile", compile)


class _CtrlCAfterEpoch2(keras.callbacks.Callback):
    """Ctrl-C once epoch 2 is committed (the run's own callbacks come first)."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_the_last_epochs_finetune_on_the_same_optimizer_also_after_a_resume(
    synth_dir, tmp_path, monkeypatch, caplog
):
    compiles = _Compiles(monkeypatch)
    run = tmp_path / "ft"
    with caplog.at_level(logging.INFO, logger="landslide_tf"):
        train(_tiny(synth_dir, run), verbose=0)
    stored = json.loads((run / "config.json").read_text())
    assert (stored["finetune_loss"], stored["finetune_epochs"]) == ("lovasz_hinge", 1)
    assert len(rs.read_history(run / rs.HISTORY_FILE)) == 2
    assert [name for name, _ in compiles.calls] == ["BCEDiceLoss", "LovaszHingeLoss"]
    assert compiles.calls[0][1] == compiles.calls[1][1]  # the optimizer (and schedule) go on
    assert "epoch 2: fine-tuning with lovasz_hinge" in caplog.text

    # a fine-tuning run cannot change --epochs once it trained: stop a 3-epoch run after
    # epoch 2 (Ctrl-C once it is committed), then resume it at the fine-tuning boundary
    run = tmp_path / "ft3"
    original_fit = keras.Model.fit

    def interrupted_fit(model, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs["callbacks"], _CtrlCAfterEpoch2()]
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(synth_dir, run, epochs=3), verbose=0)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    assert len(rs.read_history(run / rs.HISTORY_FILE)) == 2
    compiles.calls.clear()
    train(_tiny(synth_dir, run, epochs=3), verbose=0)  # resumes after epoch 2 of 3
    assert len(rs.read_history(run / rs.HISTORY_FILE)) == 3
    # built and restored with the base loss, then recompiled with the Lovasz hinge keeping
    # the restored optimizer (its moments and step count)
    assert [name for name, _ in compiles.calls] == ["BCEDiceLoss", "LovaszHingeLoss"]
    assert compiles.calls[0][1] == compiles.calls[1][1]
    with pytest.raises(UserError, match="finetune_epochs"):  # another fine-tuning: another run
        train(_tiny(synth_dir, run, epochs=4, finetune_epochs=2), verbose=0)
