"""ResUNet: the U-Net layout with residual (shortcut-add) blocks in encoder and decoder.

Layer names as in :mod:`landslide_tf.models.unet`, plus ``{prefix}_shortcut``,
``{prefix}_shortcut_bn`` (1x1 projection where the channel count changes) and
``{prefix}_add`` in every block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from landslide_tf.models.blocks import residual_block
from landslide_tf.models.unet import encoder_decoder

__all__ = ["build_resunet"]


def build_resunet(
    input_shape: Sequence[int | None] = (128, 128, 4),
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.5,
    *,
    attention: Sequence[str] = (),
    name: str = "resunet",
    **attention_kwargs: Any,
) -> keras.Model:
    """ResUNet: ``relu(conv-BN-ReLU-conv-BN + shortcut)`` blocks in a U-Net.

    Args:
        input_shape: ``(height, width, channels)``.
        base_filters: Filters of the first level.
        depth: Number of down-samplings.
        dropout: Bottleneck dropout rate.
        attention: Encoder attention, any of ``"spatial"``, ``"ctx"`` in order.
        name: Model name.
        **attention_kwargs: ``attention_kernel_size`` (7), ``attention_reduction`` (8).

    Returns:
        The model.
    """
    return encoder_decoder(
        input_shape,
        base_filters,
        depth,
        dropout,
        residual_block,
        attention,
        name,
        **attention_kwargs,
    )
