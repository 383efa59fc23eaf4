"""The encoder side every family starts from: the ``image`` input and its feature maps.

:func:`image_encoder` gives the feature maps of levels ``0..depth``, either from the model's
own blocks (:func:`landslide_tf.models.blocks.encoder`) or, with ``backbone=NAME``, from a
pretrained keras-hub backbone (:func:`encoder_features`; the registry is
:mod:`landslide_tf.models.encoders`, the weights come from
:mod:`landslide_tf.models.encoder_weights`). The decoders (:mod:`landslide_tf.models.unet`,
:mod:`landslide_tf.models.unetpp`) take it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from landslide_tf.models.blocks import (
    attention_layer,
    check_input_shape,
    encoder,
    encoder_filters,
)
from landslide_tf.models.encoder_weights import build_backbone
from landslide_tf.models.encoders import MAX_DEPTH, EncoderSpec, get_encoder
from landslide_tf.models.layers import LeadingChannelStandardization

__all__ = ["encoder_features", "encoder_model", "image_encoder", "stride_outputs"]


def stride_outputs(spec: EncoderSpec, backbone: Any) -> list[Any]:
    """The backbone's feature maps at strides 2, 4, 8, 16, 32."""
    pyramid = backbone.pyramid_outputs
    if spec.family == "resnet":
        # the stem (conv-BN-ReLU) output, just before the max pooling's padding
        stride2 = backbone.get_layer("pool1_pad").input
        return [stride2, *(pyramid[f"P{i}"] for i in range(2, 6))]
    return [pyramid[f"P{i}"] for i in range(1, 6)]


def encoder_model(
    name: str, channels: int, weights: str = "imagenet", depth: int = MAX_DEPTH
) -> keras.Model:
    """The backbone as a functional model ``encoder``: ``(b, h, w, C)`` -> ``depth`` maps.

    Output ``i`` (``0..depth-1``) has stride ``2**(i+1)``; stages deeper than ``depth`` are
    left out of the graph.
    """
    spec = get_encoder(name)
    backbone = build_backbone(name, spec, channels, weights)
    outputs = stride_outputs(spec, backbone)[:depth]
    return keras.Model(backbone.inputs, outputs, name="encoder")


def encoder_features(
    input_shape: Sequence[int | None],
    base_filters: int,
    depth: int,
    dropout: float,
    block: Callable[..., Any],
    *,
    encoder: str,
    encoder_weights: str = "imagenet",
    rgb_channels: int | None = None,
    attention: Sequence[str] = (),
    out_names: Sequence[str | None] | None = None,
    **attention_kwargs: Any,
) -> tuple[Any, list[int], list[Any]]:
    """The ``image`` input and the feature maps of levels ``0..depth`` from a backbone.

    Same contract as :func:`image_encoder`, which calls this when given an encoder.

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2**depth``.
        base_filters: Filters of level 0 (the model's own full-resolution block) and of the
            decoder (level ``i``: ``base_filters * 2**i``).
        depth: Backbone levels used, 1..5 (stride ``2**depth`` at the bottleneck).
        dropout: Rate of the ``bottleneck`` dropout.
        block: Block builder of level 0.
        encoder: A key of ``ENCODERS``.
        encoder_weights: ``"imagenet"``, ``"none"``, a preset folder or a ``.weights.h5``.
        rgb_channels: Leading channels that are RGB and get the backbone's input scaling
            (default 3 when there are at least 3 channels, else 0).
        attention: Attention kinds applied to every backbone skip feature.
        out_names: Optional names of each level's output (U-Net++: ``x_{i}_0``).
        **attention_kwargs: ``attention_kernel_size``, ``attention_reduction``.

    Returns:
        ``(inputs, filters, features)`` as :func:`image_encoder`.
    """
    spec = get_encoder(encoder)
    if not 1 <= int(depth) <= MAX_DEPTH:
        raise ValueError(f"depth must be in 1..{MAX_DEPTH} with an encoder, got {depth}")
    height, width, channels = check_input_shape(input_shape, depth, base_filters, dropout)
    rgb = (3 if channels >= 3 else 0) if rgb_channels is None else int(rgb_channels)
    if not 0 <= rgb <= min(3, channels):
        raise ValueError(f"rgb_channels must be in 0..{min(3, channels)}, got {rgb_channels}")
    filters = encoder_filters(base_filters, depth)
    names = list(out_names) if out_names is not None else [None] * (depth + 1)

    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = LeadingChannelStandardization(spec.mean[:rgb], spec.std[:rgb], name="encoder_scaling")(
        inputs
    )
    skips = encoder_model(encoder, channels, encoder_weights, depth)(x)
    skips = list(skips) if isinstance(skips, (list, tuple)) else [skips]
    level0 = block(
        x, filters[0], "enc0", attention=attention, out_name=names[0], **attention_kwargs
    )
    features = [level0]
    for i, skip in enumerate(skips, start=1):
        for kind in attention:
            skip = attention_layer(kind, f"enc{i}_{kind}", attention_kwargs)(skip)
        if names[i]:
            skip = keras.layers.Identity(name=names[i])(skip)
        features.append(skip)
    features[-1] = keras.layers.Dropout(dropout, name="bottleneck")(features[-1])
    return inputs, filters, features


def image_encoder(
    input_shape: Sequence[int | None],
    base_filters: int,
    depth: int,
    dropout: float,
    block: Callable[..., Any],
    *,
    attention: Sequence[str] = (),
    out_names: Sequence[str | None] | None = None,
    backbone: str | None = None,
    backbone_weights: str = "imagenet",
    rgb_channels: int | None = None,
    **attention_kwargs: Any,
) -> tuple[Any, list[int], list[Any]]:
    """Validate the arguments; the ``image`` input and the encoder feature maps over it.

    The model's own encoder is :func:`landslide_tf.models.blocks.encoder`. With ``backbone``
    (a key of ``landslide_tf.models.encoders.ENCODERS``) the levels
    ``1..depth`` come from that pretrained backbone instead (:func:`encoder_features`).

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2**depth``.
        base_filters: Filters of level 0; level ``i`` has ``base_filters * 2**i``.
        depth: Number of down-samplings.
        dropout: Rate of the ``bottleneck`` dropout.
        block: :func:`~landslide_tf.models.blocks.conv_block` or
            :func:`~landslide_tf.models.blocks.residual_block`.
        attention: Attention after each conv of the encoder blocks.
        out_names: Optional names of each level's block output.
        backbone: Optional pretrained encoder name (see above; ``build_model``'s ``encoder``).
        backbone_weights: ``"imagenet"``, ``"none"``, a preset folder or a ``.weights.h5``.
        rgb_channels: Leading RGB channels that get the encoder's input scaling.
        **attention_kwargs: ``attention_kernel_size``, ``attention_reduction``.

    Returns:
        ``(inputs, filters, features)``: the ``image`` input ``(batch, h, w, c)``, the filters
        per level ``0..depth`` and the encoder feature map of every level.

    Raises:
        ValueError: As :func:`check_input_shape`.
    """
    if backbone is not None:
        return encoder_features(
            input_shape, base_filters, depth, dropout, block, encoder=backbone,
            encoder_weights=backbone_weights, rgb_channels=rgb_channels, attention=attention,
            out_names=out_names, **attention_kwargs,
        )  # fmt: skip
    shape = check_input_shape(input_shape, depth, base_filters, dropout)
    filters = encoder_filters(base_filters, depth)
    inputs = keras.Input(shape=shape, name="image")
    features = encoder(
        inputs,
        filters,
        block,
        attention=attention,
        dropout=dropout,
        out_names=out_names,
        **attention_kwargs,
    )
    return inputs, filters, features
