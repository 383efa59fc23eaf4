"""U-Net (Ronneberger et al. 2015) with batch norm, optional encoder attention.

Layer names: ``image``; encoder ``enc{i}_conv{j}``, ``enc{i}_bn{j}``, ``enc{i}_relu{j}``,
``enc{i}_pool``; ``bottleneck`` (dropout after the deepest block ``enc{depth}``); decoder
``dec{i}_up``, ``dec{i}_concat``, ``dec{i}_conv{j}``, ``dec{i}_bn{j}``, ``dec{i}_relu{j}``;
``head_features``, ``logits``, ``probability``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras

from landslide_tf.models.blocks import (
    check_input_shape,
    conv_block,
    encoder,
    encoder_filters,
    segmentation_head,
    up_conv,
)

__all__ = ["build_unet", "encoder_decoder"]


def encoder_decoder(
    input_shape: Sequence[int | None],
    base_filters: int,
    depth: int,
    dropout: float,
    block: Callable[..., Any],
    attention: Sequence[str],
    name: str,
    **attention_kwargs: Any,
) -> keras.Model:
    """A U-shaped network built from ``block`` (shared by U-Net and ResUNet).

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2**depth``.
        base_filters: Filters of level 0; level ``i`` has ``base_filters * 2**i``.
        depth: Number of down-samplings.
        dropout: Rate of the ``bottleneck`` dropout.
        block: Block builder (:func:`conv_block` or :func:`residual_block`).
        attention: Attention after each conv of the encoder blocks (decoder has none).
        name: Model name.
        **attention_kwargs: ``attention_kernel_size``, ``attention_reduction``.

    Returns:
        A model ``(batch, h, w, c) -> (batch, h, w, 1)`` float32 probabilities.
    """
    shape = check_input_shape(input_shape, depth, base_filters, dropout)
    filters = encoder_filters(base_filters, depth)
    inputs = keras.Input(shape=shape, name="image")
    features = encoder(
        inputs, filters, block, attention=attention, dropout=dropout, **attention_kwargs
    )
    x = features[-1]
    for i in reversed(range(depth)):
        up = up_conv(x, filters[i], name=f"dec{i}_up")  # (batch, h_i, w_i, f_i)
        x = keras.layers.Concatenate(name=f"dec{i}_concat")([features[i], up])
        x = block(x, filters[i], f"dec{i}")
    outputs = segmentation_head(x)
    return keras.Model(inputs, outputs, name=name)


def build_unet(
    input_shape: Sequence[int | None] = (128, 128, 4),
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.5,
    *,
    attention: Sequence[str] = (),
    name: str = "unet",
    **attention_kwargs: Any,
) -> keras.Model:
    """U-Net: two ``conv3x3-BN-ReLU`` per block, max pooling, transposed-conv up-sampling.

    Args:
        input_shape: ``(height, width, channels)``.
        base_filters: Filters of the first level.
        depth: Number of down-samplings (``depth + 1`` encoder levels).
        dropout: Bottleneck dropout rate.
        attention: Encoder attention, any of ``"spatial"``, ``"ctx"`` in order.
        name: Model name.
        **attention_kwargs: ``attention_kernel_size`` (7), ``attention_reduction`` (8).

    Returns:
        The model.
    """
    return encoder_decoder(
        input_shape, base_filters, depth, dropout, conv_block, attention, name, **attention_kwargs
    )
