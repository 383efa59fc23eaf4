"""Tests for landslide_tf.training.acceleration: steps_per_execution chosen on faked hardware."""

from __future__ import annotations

import pytest

from landslide_tf.training import acceleration as acc
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.precision import Hardware


@pytest.mark.parametrize(
    "hw, batch, steps, expected",
    [
        (Hardware(cpu_flags=frozenset({"avx512_bf16"})), 2, 100, 1),  # CPU: always 1
        (Hardware(gpus=((7, 5),)), 2, 100, acc.MAX_STEPS),  # T4, paper batch 2
        (Hardware(gpus=((9, 0),)), 8, 5, 5),  # never more than an epoch
        (Hardware(tpu=True), 16, 50, acc.MAX_STEPS),
        (Hardware(gpus=((8, 0),)), 32, 100, 1),  # large batch: the step is long enough
    ],
)
def test_steps_per_execution_rule(hw, batch, steps, expected):
    used, reason = acc.choose_steps_per_execution(hw, batch, steps)
    assert used == expected
    assert reason and "\n" not in reason


def test_explicit_steps_per_execution_wins(monkeypatch):
    monkeypatch.setattr(
        "landslide_tf.training.precision.detect_hardware",
        lambda strategy="default": Hardware(gpus=((8, 0),)),
    )
    auto = acc.run_steps_per_execution(TrainConfig(), global_batch=2, n_train=20)
    assert auto["steps_per_execution_used"] == 10  # ceil(20 / 2) steps per epoch
    given = acc.run_steps_per_execution(TrainConfig(steps_per_execution=3), 2, 20)
    assert given == {
        "steps_per_execution_used": 3,
        "steps_per_execution_reason": "--steps-per-execution 3 given",
    }


def test_train_cli_flag():
    from landslide_tf.cli.train_args import build_parser, config_from_args

    args = build_parser().parse_args(["--steps-per-execution", "4"])
    assert config_from_args(args).steps_per_execution == 4
    assert config_from_args(build_parser().parse_args([])).steps_per_execution == 0
