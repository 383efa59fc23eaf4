"""Optimizers and learning-rate schedules for training (registries, resume-safe).

``build_optimizer(config, steps_per_epoch)`` is the one place ``landslide_tf.training.fit`` gets
its optimizer from. The schedule is a ``keras.optimizers.schedules.LearningRateSchedule``
evaluated at the optimizer's own iteration count, which ``load_weights`` restores with the
rest of the optimizer state: a resumed run continues the curve where it stopped instead of
warming up again.

- ``optimizer``: ``adam`` (the paper's) or ``adamw`` (decoupled weight decay
  ``weight_decay``; biases and normalization parameters are not decayed);
- ``lr_schedule``: ``constant`` (the paper's) or ``cosine``: a linear warm-up from 0 to
  ``lr`` over ``warmup_epochs`` epochs, then a cosine decay to ``COSINE_FLOOR * lr`` at the
  last step of ``epochs``;
- ``ema``: with a momentum in (0, 1) the optimizer keeps an exponential moving average of the
  weights (Keras ``use_ema``); validation, ``best.keras`` and the final weights use the
  average, the resume checkpoint keeps the raw weights and the average (see
  ``landslide_tf.training.callbacks``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import keras

from landslide_tf.errors import UserError
from landslide_tf.training.config import TrainConfig

#: The cosine schedule ends at this fraction of the peak learning rate.
COSINE_FLOOR = 0.01

#: Names of variables (substrings) that AdamW does not decay.
NO_DECAY = ("bias", "gamma", "beta", "moving_mean", "moving_variance")


def _adam(lr: Any, weight_decay: float, **ema: Any) -> keras.optimizers.Optimizer:
    if weight_decay:
        raise UserError("--weight-decay needs --optimizer adamw (Adam has no decoupled decay)")
    return keras.optimizers.Adam(learning_rate=lr, **ema)


def _adamw(lr: Any, weight_decay: float, **ema: Any) -> keras.optimizers.Optimizer:
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=weight_decay, **ema)
    opt.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return opt


#: name -> builder(learning_rate or schedule, weight_decay, **ema keyword arguments).
OPTIMIZERS: dict[str, Callable[..., keras.optimizers.Optimizer]] = {
    "adam": _adam,
    "adamw": _adamw,
}

LR_SCHEDULES = ("constant", "cosine")


def learning_rate(
    lr: float, schedule: str, epochs: int, steps_per_epoch: int, warmup_epochs: float = 0.0
) -> Any:
    """A float (``constant``) or a warm-up + cosine ``LearningRateSchedule``.

    Args:
        lr: peak learning rate.
        schedule: ``"constant"`` or ``"cosine"``.
        epochs: total epochs of the run (the decay ends with the last step).
        steps_per_epoch: optimizer steps per epoch.
        warmup_epochs: linear warm-up length in epochs (may be fractional).

    >>> s = learning_rate(1e-3, "cosine", epochs=10, steps_per_epoch=10, warmup_epochs=1)
    >>> [round(float(s(step)), 6) for step in (0, 5, 10, 100)]
    [0.0, 0.0005, 0.001, 1e-05]
    """
    if schedule not in LR_SCHEDULES:
        raise UserError(f"unknown --lr-schedule {schedule!r}; expected one of {LR_SCHEDULES}")
    if schedule == "constant":
        return float(lr)
    total = max(1, int(epochs) * int(steps_per_epoch))
    warmup = min(total - 1, int(math.ceil(float(warmup_epochs) * steps_per_epoch)))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else float(lr),
        decay_steps=max(1, total - warmup),
        alpha=COSINE_FLOOR,
        warmup_target=float(lr) if warmup else None,
        warmup_steps=warmup,
    )


def validate_optim(config: TrainConfig) -> None:
    """One-line ``UserError`` for bad optimizer or schedule settings."""
    if config.optimizer not in OPTIMIZERS:
        raise UserError(
            f"unknown --optimizer {config.optimizer!r}; expected one of {', '.join(OPTIMIZERS)}"
        )
    if config.lr_schedule not in LR_SCHEDULES:
        raise UserError(
            f"unknown --lr-schedule {config.lr_schedule!r}; expected one of {LR_SCHEDULES}"
        )
    if not (config.weight_decay >= 0 and math.isfinite(config.weight_decay)):
        raise UserError(f"weight decay must be >= 0, got {config.weight_decay}")
    if not 0 <= config.warmup_epochs < config.epochs:
        raise UserError(
            f"a warm-up of {config.warmup_epochs:g} epochs (--warmup-epochs; --preset strong "
            f"and fast set 1) must be shorter than the run (--epochs {config.epochs}): give "
            "--warmup-epochs 0 or a fraction such as 0.25, or more --epochs"
        )
    if not (0 <= config.ema < 1):
        raise UserError(
            f"--ema is the moving average's momentum: 0 (off) or in (0, 1) such as 0.99, "
            f"got {config.ema}"
        )
    if config.optimizer == "adam" and config.weight_decay:
        raise UserError("--weight-decay needs --optimizer adamw (Adam has no decoupled decay)")


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer a run trains with (see the module docstring)."""
    validate_optim(config)
    lr = learning_rate(
        config.lr, config.lr_schedule, config.epochs, steps_per_epoch, config.warmup_epochs
    )
    ema = {"use_ema": True, "ema_momentum": float(config.ema)} if config.ema else {}
    return OPTIMIZERS[config.optimizer](lr, config.weight_decay, **ema)
