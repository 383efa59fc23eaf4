"""``--ema``: a moving average of the weights for validation, best.keras and the final model,
while the per-epoch checkpoint keeps the raw weights so a resume is exact (issue 21)."""

import json

import keras
import numpy as np
import pytest

from landslide_tf.cli.train_args import build_parser, config_from_args
from landslide_tf.errors import UserError
from landslide_tf.experiments.run import train
from landslide_tf.training import runstate as rs
from landslide_tf.training.callbacks import averaged_weights, uses_ema
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.fit import prepare_splits
from landslide_tf.training.optim import build_optimizer
from landslide_tf.training.runs import load_model_file
from landslide_tf.training.train import fit_run


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]


def test_averaged_weights_swap_in_and_back_exactly():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=build_optimizer(TrainConfig(ema=0.5, lr=0.1), 5), loss="mse")
    x, y = np.random.default_rng(0).normal(size=(10, 3)).astype("float32"), np.ones((10, 2))
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # fit ends on the average...
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[_Grab()])
    raw = _Grab.raw  # ...so take the raw weights of the last epoch from a callback
    assert uses_ema(model)
    for a, b in zip(_weights(model), raw, strict=True):
        assert not np.allclose(a, b)  # after fit: the average, not the raw weights
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    plain.compile(optimizer=build_optimizer(TrainConfig(lr=0.1), 5), loss="mse")
    before = _weights(plain)
    with averaged_weights(plain):  # no EMA: nothing changes
        assert all(np.array_equal(a, b) for a, b in zip(_weights(plain), before, strict=True))


class _Grab(keras.callbacks.Callback):
    """Records the raw weights at the end of the epoch, before fit puts the average in, and
    checks that ``averaged_weights`` swaps the average in and the raw weights back exactly."""

    raw: list[np.ndarray] = []

    def on_epoch_end(self, epoch, logs=None):
        raw = _weights(self.model)
        with averaged_weights(self.model):
            averaged = _weights(self.model)
        after = _weights(self.model)
        assert all(np.array_equal(a, b) for a, b in zip(after, raw, strict=True))
        assert not all(np.allclose(a, b) for a, b in zip(averaged, raw, strict=True))
        type(self).raw = raw


def test_the_flag_reaches_the_config_and_bad_values_are_refused():
    args = build_parser().parse_args(["--ema", "0.99"])
    assert config_from_args(args).ema == 0.99
    assert config_from_args(build_parser().parse_args([])).ema == 0.0
    with pytest.raises(UserError, match="--ema is the moving average's momentum"):
        build_optimizer(TrainConfig(ema=1.0), 3)


def _tiny(synth_dir, run_dir, **overrides) -> TrainConfig:
    values = dict(model="unet", data=str(synth_dir), run_dir=str(run_dir), epochs=1,
                  image_size=32, base_filters=4, depth=2, batch_size=4, lr=1e-2, ema=0.5,
                  precision="float32")  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


def test_best_keras_holds_the_average_the_checkpoint_keeps_both(synth_dir, tmp_path):
    run = tmp_path / "ema"
    config = _tiny(synth_dir, run)
    train(config, verbose=0)
    assert json.loads((run / "config.json").read_text())["ema"] == 0.5
    # epoch 1 is always the best so far: best.keras and the epoch's resume checkpoint come
    # from the same moment
    best = _weights(load_model_file(run / "best.keras"))
    model = load_model_file(run / "last.keras")
    model.compile(optimizer=build_optimizer(config, steps_per_epoch=1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.load_weights(run / "last.keras")  # as a resume does: weights and optimizer state
    raw = _weights(model)
    average = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables
               if v.path.endswith("_average")]  # fmt: skip
    assert len(average) == len(best) == len(raw)
    assert all(np.allclose(a, b, atol=1e-7) for a, b in zip(best, average, strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(best, raw, strict=True))
    train(_tiny(synth_dir, run, epochs=2), verbose=0)  # a resume with the average goes on
    assert [r["epoch"] for r in rs.read_history(run / "history.csv")] == [1, 2]


class _CtrlCAfter(keras.callbacks.Callback):
    """Ctrl-C once epoch ``number`` is committed (the run's own callbacks come first)."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.number:
            raise KeyboardInterrupt


def test_the_next_phase_starts_from_the_raw_weights_as_a_resume_there_does(
    synth_dir, tmp_path, monkeypatch
):
    """``fit`` ends by copying the average into the weights; the fine-tuning fit must start
    from the raw weights that epoch 2's checkpoint keeps, as a run resumed there does. One
    step per epoch (the batch is the whole training split), so an unbroken run and a resumed
    one train on the same data and end alike."""
    lists = tmp_path / "lists"
    plan = TrainConfig(data=str(synth_dir), split_dir=str(lists), batch_size=1)
    n_train = len(prepare_splits(plan, synth_dir, tmp_path / "plan")[0]["train"])

    def config(name: str) -> TrainConfig:
        return _tiny(synth_dir, tmp_path / name, epochs=3, finetune_loss="dice",
                     finetune_epochs=1, batch_size=n_train, split_dir=str(lists),
                     dropout=0.0)  # fmt: skip

    starts: list[list[np.ndarray]] = []  # the weights each fit starts from
    stop_after: list[int] = []
    original_fit = keras.Model.fit

    def fit(model, *args, **kwargs):
        starts.append(_weights(model))
        if stop_after:
            kwargs["callbacks"] = [*kwargs["callbacks"], _CtrlCAfter(stop_after[0])]
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    fit_run(config("unbroken"), verbose=0)
    assert len(starts) == 2  # the base loss (epochs 1-2), then the fine-tuning (epoch 3)
    raw = _weights(load_model_file(tmp_path / "unbroken" / rs.checkpoint_name(2)))
    assert all(np.array_equal(a, b) for a, b in zip(starts[1], raw, strict=True))

    starts.clear()
    stop_after.append(2)
    with pytest.raises(KeyboardInterrupt):
        fit_run(config("resumed"), verbose=0)
    stop_after.clear()
    fit_run(config("resumed"), verbose=0)  # resumes at the phase boundary
    assert len(starts) == 2
    unbroken = _weights(load_model_file(tmp_path / "unbroken" / rs.LAST_MODEL))
    resumed = _weights(load_model_file(tmp_path / "resumed" / rs.LAST_MODEL))
    # only the order of the tiles inside the one batch differs: float rounding (the average
    # copied into the weights moved them by ~1e-3 before)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(unbroken, resumed, strict=True))
    assert diff < 1e-5
