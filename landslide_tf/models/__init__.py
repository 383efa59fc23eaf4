"""The U-Net family of the paper behind one registry and one builder.

``MODELS`` maps every registry name to a builder; ``build_model(name, ...)`` is the one way
the rest of the package makes a network. Paper names: ``unet``, ``resunet``, ``unetpp``,
``unetpp_spatial``, ``unetpp_ctx``, ``unetpp_spatial_ctx``; beyond the paper the same
attention options exist on every base (``unet_spatial``, ``resunet_spatial_ctx``, ...).

Every model: input ``image`` ``(batch, h, w, c)``; output ``probability`` ``(batch, h, w, 1)``
float32 = ``Activation("sigmoid", dtype="float32")`` over the 1x1 conv ``logits``; the last
decoder map is ``head_features``, the deepest (dropped-out) encoder map ``bottleneck``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras

from landslide_tf.models.encoders import ENCODERS, get_encoder
from landslide_tf.models.resunet import build_resunet
from landslide_tf.models.unet import build_unet
from landslide_tf.models.unetpp import build_unetpp

__all__ = [
    "ENCODERS",
    "MODELS",
    "PAPER_MODELS",
    "build_model",
    "build_resunet",
    "build_unet",
    "build_unetpp",
    "default_gradcam_layer",
    "spatial_layers",
]

PAPER_MODELS = ("unet", "resunet", "unetpp", "unetpp_spatial", "unetpp_ctx", "unetpp_spatial_ctx")

_BASES: dict[str, Callable[..., keras.Model]] = {
    "unet": build_unet,
    "resunet": build_resunet,
    "unetpp": build_unetpp,
}
_ATTENTION: dict[str, tuple[str, ...]] = {
    "": (),
    "_spatial": ("spatial",),
    "_ctx": ("ctx",),
    "_spatial_ctx": ("spatial", "ctx"),
}

# name -> builder(input_shape, base_filters, depth, dropout, **kwargs); explicit and greppable:
# unet, unet_spatial, unet_ctx, unet_spatial_ctx, resunet, resunet_spatial, resunet_ctx,
# resunet_spatial_ctx, unetpp, unetpp_spatial, unetpp_ctx, unetpp_spatial_ctx.
MODELS: dict[str, Callable[..., keras.Model]] = {
    f"{base}{suffix}": functools.partial(builder, attention=attention, name=f"{base}{suffix}")
    for base, builder in _BASES.items()
    for suffix, attention in _ATTENTION.items()
}


def build_model(
    name: str,
    input_shape: Sequence[int | None] = (128, 128, 4),
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.5,
    deep_supervision: bool = False,
    encoder: str | None = None,
    encoder_weights: str = "imagenet",
    rgb_channels: int | None = None,
    **kwargs: Any,
) -> keras.Model:
    """Build a registered network.

    Example:
        >>> model = build_model("unetpp_ctx", input_shape=(64, 64, 4), base_filters=8)
        >>> model.output_shape
        (None, 64, 64, 1)

    Args:
        name: A key of ``MODELS``.
        input_shape: ``(height, width, channels)``; height and width divisible by
            ``2**depth`` (or ``None``), any channel count >= 1.
        base_filters: Filters of the first encoder level, doubled at every level (the paper
            does not give it; 32 is our default).
        depth: Number of 2x down-samplings (4: 128 -> 8 at the bottleneck).
        dropout: Dropout rate after the deepest encoder block (layer ``bottleneck``).
        deep_supervision: U-Net++ only: average the 1x1 heads of ``x_0_1..x_0_depth``.
        encoder: A key of ``ENCODERS`` (U-Net and U-Net++ families): a keras-hub backbone
            gives the skip features at strides ``2..2**depth`` (``depth <= 5``); the model is
            named ``{name}_{encoder}``. ``None`` (default): the model's own encoder.
        encoder_weights: ``"imagenet"`` (fetched once, cached), ``"none"``, a local keras-hub
            preset folder or a ``.weights.h5`` file; see :mod:`landslide_tf.models.encoders`.
        rgb_channels: Leading channels that are RGB (the encoder's input scaling applies to
            them); default 3 when there are at least 3 channels.
        **kwargs: ``attention_kernel_size`` (7) and ``attention_reduction`` (8).

    Returns:
        An uncompiled ``keras.Model`` named ``name``.

    Raises:
        ValueError: For an unknown name (the message lists the valid ones), bad sizes, or
            deep supervision on a model without nested decoder.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    unknown = set(kwargs) - {"attention_kernel_size", "attention_reduction"}
    if unknown:
        raise ValueError(
            f"unknown model option(s) {', '.join(sorted(unknown))}; "
            "valid: attention_kernel_size, attention_reduction"
        )
    if deep_supervision:
        if not name.startswith("unetpp"):
            raise ValueError(f"deep_supervision needs a U-Net++ model (unetpp*), not {name!r}")
        kwargs["deep_supervision"] = True
    if encoder is not None:
        if name.startswith("resunet"):
            raise ValueError(
                f"--encoder needs a U-Net or U-Net++ model (unet*, unetpp*), not {name!r}"
            )
        get_encoder(encoder)  # unknown names fail with the valid ones
        kwargs.update(
            backbone=encoder,
            backbone_weights=encoder_weights,
            rgb_channels=rgb_channels,
            name=f"{name}_{encoder}",
        )
    return MODELS[name](
        input_shape=tuple(input_shape),
        base_filters=base_filters,
        depth=depth,
        dropout=dropout,
        **kwargs,
    )


def output_layer_names(model: keras.Model) -> set[str]:
    """Names of the layers that make the model's outputs."""
    return {t._keras_history.operation.name for t in model.outputs}


def spatial_layers(model: keras.Model) -> list[str]:
    """Names of the layers whose output is ``(N, h, w, c)``, input and output layers excluded.

    Args:
        model: a functional Keras model.

    Returns:
        The names, in model order.
    """
    names = []
    outputs = output_layer_names(model)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name in outputs:
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # layers used more than once, nested oddities
            continue
        if len(shape) == 4:
            names.append(layer.name)
    return names


def default_gradcam_layer(model: keras.Model) -> str:
    """The layer GradCAM should look at by default: ``head_features``.

    ``head_features`` is the last decoder feature map before the 1x1 ``logits`` conv, at full
    resolution, so heat maps need no up-sampling. Models that lack it (not built here) fall
    back to the last layer with a 4-D output (``spatial_layers``) other than ``logits``: never
    an output layer of the model.

    Args:
        model: A model from :func:`build_model` (or a reloaded one).

    Returns:
        The layer name.

    Raises:
        ValueError: If the model has no 4-D feature layer.
    """
    names = [layer.name for layer in model.layers]
    if "head_features" in names:
        return "head_features"
    candidates = [name for name in spatial_layers(model) if name != "logits"]
    if not candidates:
        raise ValueError(f"model {model.name!r} has no 4-D feature layer for GradCAM")
    return candidates[-1]
