"""Tests for landslide_tf.training.optim: AdamW, warm-up + cosine, and a resume-safe schedule."""

import keras
import numpy as np
import pytest

from landslide_tf.errors import UserError
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.optim import (
    COSINE_FLOOR,
    LR_SCHEDULES,
    OPTIMIZERS,
    build_optimizer,
    learning_rate,
)
from landslide_tf.training.recipe import OPTIMIZER_NAMES, SCHEDULE_NAMES


def test_registry_names_match_the_cli_choices():
    assert tuple(OPTIMIZERS) == OPTIMIZER_NAMES and LR_SCHEDULES == SCHEDULE_NAMES


def test_warmup_then_cosine_values():
    s = learning_rate(1e-3, "cosine", epochs=10, steps_per_epoch=10, warmup_epochs=2)
    values = [float(s(step)) for step in (0, 10, 20, 60, 100)]
    assert values[0] == 0.0
    assert values[1] == pytest.approx(5e-4)  # half-way through the warm-up
    assert values[2] == pytest.approx(1e-3)  # peak at the end of the warm-up
    # half-way through the decay: floor + (peak - floor) / 2
    assert values[3] == pytest.approx(1e-3 * (COSINE_FLOOR + (1 - COSINE_FLOOR) / 2), rel=1e-4)
    assert values[4] == pytest.approx(1e-3 * COSINE_FLOOR, rel=1e-4)


def test_constant_schedule_is_the_paper_float():
    assert learning_rate(1e-5, "constant", 50, 10) == 1e-5


def test_adamw_schedule_follows_the_restored_iteration_count(tmp_path):
    """A resumed optimizer continues the curve: its lr depends on the iterations only."""
    config = TrainConfig(
        optimizer="adamw",
        weight_decay=1e-4,
        lr=1e-3,
        lr_schedule="cosine",
        warmup_epochs=1,
        epochs=4,
    )
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=build_optimizer(config, steps_per_epoch=5), loss="mse")
    x, y = np.ones((10, 3), "float32"), np.ones((10, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)  # 5 steps
    model.save_weights(tmp_path / "w.weights.h5")
    lr_after = float(model.optimizer.learning_rate)

    fresh = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    fresh.compile(optimizer=build_optimizer(config, steps_per_epoch=5), loss="mse")
    assert float(fresh.optimizer.learning_rate) == 0.0  # a new run starts the warm-up
    fresh.optimizer.build(fresh.trainable_variables)
    fresh.load_weights(tmp_path / "w.weights.h5")
    assert int(fresh.optimizer.iterations) == 5
    assert float(fresh.optimizer.learning_rate) == pytest.approx(lr_after)
    assert lr_after == pytest.approx(1e-3)  # end of the one-epoch warm-up


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": "sgd"}, "unknown --optimizer"),
        ({"lr_schedule": "step"}, "unknown --lr-schedule"),
        ({"weight_decay": 1e-4}, "needs --optimizer adamw"),
        ({"optimizer": "adamw", "weight_decay": -1.0}, "weight decay must be"),
        ({"warmup_epochs": 50.0}, r"warm-up of 50 epochs \(--warmup-epochs; --preset strong"),
    ],
)
def test_bad_settings_are_one_line_user_errors(changes, message):
    config = TrainConfig(**changes)
    with pytest.raises(UserError, match=message):
        build_optimizer(config, steps_per_epoch=3)
