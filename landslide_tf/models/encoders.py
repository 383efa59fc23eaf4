"""Pretrained encoders (keras-hub ResNet / EfficientNet) for the U-Net and U-Net++ decoders.

``ENCODERS`` maps a name to an :class:`EncoderSpec`; ``build_model(name, encoder=NAME,
encoder_weights="imagenet"|"none"|PATH)`` replaces the model's own encoder by the backbone's
feature maps at strides 2, 4, 8, 16, 32 (levels ``1..depth``, ``depth <= 5``). Level 0 (full
resolution) stays a small block of the model's own (``enc0``, ``base_filters`` channels) so
the decoders keep their full-resolution skip. The decoders are unchanged: decoder level ``i``
has ``base_filters * 2**i`` filters.

Why keras-hub and not ``keras.applications``: keras-hub ships ResNet-18 (applications has no
ResNet-18/34), ResNet-50 and EfficientNet-B0 as backbones with ``pyramid_outputs`` (P2..P5
named, no layer-name archaeology), presets with a config, a ``save_to_preset`` format we can
accept as a local PATH, and kagglehub caching; all its ResNet/EfficientNet layers are core
Keras layers, so a saved model loads without keras-hub. keras-hub's ``resnet_vd_34`` is a
different (``vd``) architecture, so no ResNet-34 is offered.

Model layers (besides the decoder's): ``image`` -> ``encoder_scaling``
(:class:`~landslide_tf.models.layers.LeadingChannelStandardization`: ImageNet mean/std on the RGB
channels of ``[0, 1]`` inputs, DEM and extra channels unchanged) -> ``encoder`` (a nested
functional model: the backbone's layers, outputs at strides 2..2**depth) and ``enc0_*``
(level 0); attention variants put ``enc{i}_spatial`` / ``enc{i}_ctx`` on every backbone skip;
U-Net++ names the skips ``x_{i}_0``; the deepest is followed by ``bottleneck`` (dropout).

Fetch a preset for offline use: ``python -m landslide_tf.models.encoder_weights --fetch resnet18
DIR`` (see :mod:`landslide_tf.models.encoder_weights`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras

from landslide_tf.models.blocks import _attention, check_input_shape, encoder_filters
from landslide_tf.models.layers import LeadingChannelStandardization

__all__ = ["ENCODERS", "EncoderSpec", "encoder_features", "encoder_model", "get_encoder"]

#: ImageNet statistics of ``[0, 1]`` RGB, what keras-hub's image converters of these presets
#: apply (``scale = 1 / (255 * std)``, ``offset = -mean / std`` on 0..255 images).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: The most down-samplings an encoder gives (stride 32).
MAX_DEPTH = 5


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """One encoder: keras-hub family, ImageNet preset, architecture, input statistics.

    Attributes:
        family: ``"resnet"`` or ``"efficientnet"`` (the keras-hub backbone class).
        preset: keras-hub preset name of the ImageNet weights.
        config: Backbone constructor arguments of that preset's architecture (used for
            ``"none"`` and ``.weights.h5``; presets bring their own config).
        mean: Per-channel RGB means of ``[0, 1]`` inputs.
        std: Per-channel RGB standard deviations.
    """

    family: str
    preset: str
    config: dict[str, Any]
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD


def _resnet(blocks: list[int], block_type: str) -> dict[str, Any]:
    # keras_hub/src/utils/timm/convert_resnet.py: the config of the resnet_*_imagenet presets
    return {
        "input_conv_filters": [64],
        "input_conv_kernel_sizes": [7],
        "stackwise_num_filters": [64, 128, 256, 512],
        "stackwise_num_blocks": blocks,
        "stackwise_num_strides": [1, 2, 2, 2],
        "block_type": block_type,
        "use_pre_activation": False,
    }


# keras_hub/src/utils/timm/convert_efficientnet.py, variant b0
_EFFICIENTNET_B0 = {
    "stackwise_width_coefficients": [1.0] * 7,
    "stackwise_depth_coefficients": [1.0] * 7,
    "stackwise_squeeze_and_excite_ratios": [0.25] * 7,
    "stackwise_kernel_sizes": [3, 3, 5, 3, 5, 5, 3],
    "stackwise_num_repeats": [1, 2, 2, 3, 3, 4, 1],
    "stackwise_input_filters": [32, 16, 24, 40, 80, 112, 192],
    "stackwise_output_filters": [16, 24, 40, 80, 112, 192, 320],
    "stackwise_expansion_ratios": [1, 6, 6, 6, 6, 6, 6],
    "stackwise_strides": [1, 2, 2, 2, 1, 2, 1],
    "stackwise_block_types": ["v1"] * 7,
    "min_depth": None,
    "include_stem_padding": True,
    "use_depth_divisor_as_min_depth": True,
    "cap_round_filter_decrease": True,
    "stem_conv_padding": "valid",
    "batch_norm_momentum": 0.9,
    "batch_norm_epsilon": 1e-5,
    "dropout": 0,
    "projection_activation": None,
}

# name -> spec; explicit and greppable: resnet18, resnet50, efficientnet_b0.
ENCODERS: dict[str, EncoderSpec] = {
    "resnet18": EncoderSpec("resnet", "resnet_18_imagenet", _resnet([2, 2, 2, 2], "basic_block")),
    "resnet50": EncoderSpec(
        "resnet", "resnet_50_imagenet", _resnet([3, 4, 6, 3], "bottleneck_block")
    ),
    "efficientnet_b0": EncoderSpec("efficientnet", "efficientnet_b0_ra_imagenet", _EFFICIENTNET_B0),
}


def get_encoder(name: str) -> EncoderSpec:
    """The spec of a registered encoder; ``ValueError`` lists the valid names."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid names: {', '.join(ENCODERS)}")
    return ENCODERS[name]


def _stride_outputs(spec: EncoderSpec, backbone: Any) -> list[Any]:
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
    from landslide_tf.models.encoder_weights import build_backbone

    spec = get_encoder(name)
    backbone = build_backbone(name, spec, channels, weights)
    outputs = _stride_outputs(spec, backbone)[:depth]
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

    Same contract as :func:`landslide_tf.models.blocks.image_encoder`, which calls this when
    given an encoder.

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
        ``(inputs, filters, features)`` as :func:`~landslide_tf.models.blocks.image_encoder`.
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
            skip = _attention(kind, f"enc{i}_{kind}", attention_kwargs)(skip)
        if names[i]:
            skip = keras.layers.Identity(name=names[i])(skip)
        features.append(skip)
    features[-1] = keras.layers.Dropout(dropout, name="bottleneck")(features[-1])
    return inputs, filters, features
