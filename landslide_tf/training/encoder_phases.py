"""Training with a pretrained encoder: the settings' checks and the frozen-encoder phase.

``--encoder NAME`` (``landslide_tf.models.encoders.ENCODERS``), ``--encoder-weights
imagenet|none|PATH`` (default ``imagenet`` when an encoder is given) and
``--freeze-encoder-epochs N``: the first ``N`` epochs train the decoder (and the model's own
full-resolution ``enc0`` block) with the backbone frozen (its batch norms in inference mode),
then the backbone is unfrozen and the model recompiled with a fresh optimizer that goes on
with the learning-rate schedule (its step count continues: no second warm-up) and, with
``--ema``, with the moving average (the frozen phase's for the weights it trained, the
weights themselves for the backbone's; ``callbacks.start_moving_averages``). Resume-safe: a
checkpoint saved in epochs ``1..N`` is restored into a frozen model (its optimizer holds the
decoder's slots only), then the run continues with the phase it is in; one saved after
epoch ``N`` is restored into an unfrozen model whose optimizer goes on as restored (its
moments are not reset by a second recompile).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from landslide_tf.data.bands import ALIASES
from landslide_tf.data.spec import MULTIBAND_FORMATS, RGB_NAMES
from landslide_tf.errors import UserError
from landslide_tf.training.config import TrainConfig

__all__ = [
    "apply_encoder_defaults",
    "build_kwargs",
    "frozen_at_checkpoint",
    "phases",
    "rgb_channels",
    "set_encoder_frozen",
    "validate_encoder_config",
]

#: ``--depth`` when an encoder is given and ``--depth`` is not: all five backbone stages.
ENCODER_DEPTH = 5


def apply_encoder_defaults(values: dict[str, Any], *, depth_given: bool) -> None:
    """With ``--encoder``: depth 5 unless ``--depth`` given, ``imagenet`` weights, PATH absolute."""
    if not values.get("encoder"):
        return
    if not depth_given:
        values["depth"] = ENCODER_DEPTH
    weights = values.get("encoder_weights") or "imagenet"
    if weights not in ("imagenet", "none"):
        weights = str(Path(weights).expanduser().resolve())
    values["encoder_weights"] = weights


def validate_encoder_config(config: TrainConfig) -> None:
    """One-line ``UserError`` for a bad encoder name, model, depth, weights or freeze count."""
    from landslide_tf.models import ENCODERS

    if config.freeze_encoder_epochs < 0:
        raise UserError(f"--freeze-encoder-epochs must be >= 0, got {config.freeze_encoder_epochs}")
    if not config.encoder:
        if config.freeze_encoder_epochs:
            raise UserError("--freeze-encoder-epochs needs --encoder")
        return
    if config.encoder not in ENCODERS:
        raise UserError(
            f"unknown encoder {config.encoder!r}; expected one of {', '.join(ENCODERS)}"
        )
    if config.model.startswith("resunet"):
        raise UserError(f"--encoder needs a unet* or unetpp* model, not {config.model!r}")
    if config.depth > ENCODER_DEPTH:
        raise UserError(
            f"depth must be at most {ENCODER_DEPTH} with an encoder, got {config.depth}"
        )
    weights = config.encoder_weights or "imagenet"
    if weights not in ("imagenet", "none") and not Path(weights).expanduser().exists():
        raise UserError(
            f"--encoder-weights {weights} does not exist (imagenet, none, a keras-hub preset "
            "folder or a .weights.h5 file)"
        )


def rgb_channels(config: TrainConfig) -> int:
    """Leading input channels that are RGB in ``[0, 1]`` and get the encoder's ImageNet scaling.

    Bijie: the 3 RGB channels (``/255``), none with ``--modalities dem``. Multi-band data
    (``l4s``, ``folder``): 3 only when the first three bands are red, green, blue
    (Landslide4Sense ``B4,B3,B2`` or bands named ``red,green,blue``) with
    ``--band-norm percentile`` (clipped to ``[0, 1]``); otherwise none, since the bands are
    standardised already or are not the colours ImageNet saw.

    >>> rgb_channels(TrainConfig(data_format="l4s", bands=["B4", "B3", "B2"]))
    0
    >>> rgb_channels(TrainConfig(data_format="l4s", bands=["B4", "B3", "B2"],
    ...                          band_norm="percentile"))
    3
    """
    if config.data_format not in MULTIBAND_FORMATS:
        return 0 if config.modalities == "dem" else 3
    if config.band_norm != "percentile":
        return 0
    first = tuple(str(name).lower() for name in (config.bands or [])[:3])
    trios = (RGB_NAMES, tuple(ALIASES["l4s"]["rgb"]))
    return 3 if any(first == tuple(n.lower() for n in trio) for trio in trios) else 0


def build_kwargs(config: TrainConfig, resuming: bool) -> dict[str, Any]:
    """``build_model`` keyword arguments for the encoder (empty without one).

    When resuming, the weights come from ``last.keras``, so the backbone is built with
    ``"none"`` (no download, no preset needed). ``rgb_channels`` is :func:`rgb_channels`.
    """
    if not config.encoder:
        return {}
    weights = "none" if resuming else (config.encoder_weights or "imagenet")
    return {
        "encoder": config.encoder,
        "encoder_weights": weights,
        "rgb_channels": rgb_channels(config),
    }


def frozen_at_checkpoint(config: TrainConfig, epochs_done: int) -> bool:
    """Whether the model is frozen when built: fresh with ``N > 0``, or resumed from 1..N."""
    n = config.freeze_encoder_epochs if config.encoder else 0
    return n > 0 and epochs_done <= n


def phases(config: TrainConfig, epochs_done: int) -> list[tuple[int, int, bool]]:
    """``(initial_epoch, epochs, frozen)`` fits left to run after ``epochs_done`` epochs.

    >>> phases(TrainConfig(encoder="resnet18", freeze_encoder_epochs=2, epochs=5), 0)
    [(0, 2, True), (2, 5, False)]
    >>> phases(TrainConfig(encoder="resnet18", freeze_encoder_epochs=2, epochs=5), 3)
    [(3, 5, False)]
    """
    n = min(config.freeze_encoder_epochs if config.encoder else 0, config.epochs)
    out = []
    if epochs_done < n:
        out.append((epochs_done, n, True))
    start = max(epochs_done, n)
    if start < config.epochs:
        out.append((start, config.epochs, False))
    return out


def set_encoder_frozen(model: Any, frozen: bool) -> bool:
    """Freeze or unfreeze the ``encoder`` sub-model; returns whether the model has one."""
    names = {layer.name for layer in model.layers}
    if "encoder" not in names:
        return False
    model.get_layer("encoder").trainable = not frozen
    return True
