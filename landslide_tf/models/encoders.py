"""The registry of pretrained encoders (keras-hub ResNet / EfficientNet) for the decoders.

This module is data only: ``ENCODERS`` maps a name to an :class:`EncoderSpec`;
:mod:`landslide_tf.models.encoder_weights` builds a spec's keras-hub backbone with its
weights and :mod:`landslide_tf.models.backbone` puts it under a decoder.
``build_model(name, encoder=NAME, encoder_weights="imagenet"|"none"|PATH)`` replaces the model's own encoder by the backbone's
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

Fetch a preset for offline use: ``python -m landslide_tf.cli.encoder_weights --fetch resnet18
DIR`` (see :mod:`landslide_tf.cli.encoder_weights`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["ENCODERS", "IMAGENET_MEAN", "IMAGENET_STD", "MAX_DEPTH", "EncoderSpec", "get_encoder"]

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
