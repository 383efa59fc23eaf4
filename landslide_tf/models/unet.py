"""U-Net (Ronneberger et al. 2015) with batch norm, optional encoder attention.

``build_unet(input_shape=(128, 128, 4), base_filters=32, depth=4, dropout=0.5, *,
attention=(), name="unet", **attention_kwargs)``: two ``conv3x3-BN-ReLU`` per block, max
pooling, transposed-conv up-sampling; that is
:func:`encoder_decoder` with ``block=conv_block`` (ResUNet is the same network with
``block=residual_block``).

Layer names: ``image``; encoder ``enc{i}_conv{j}``, ``enc{i}_bn{j}``, ``enc{i}_relu{j}``,
``enc{i}_pool``; ``bottleneck`` (dropout after the deepest block ``enc{depth}``); decoder
``dec{i}_up``, ``dec{i}_concat``, ``dec{i}_conv{j}``, ``dec{i}_bn{j}``, ``dec{i}_relu{j}``;
``head_features``, ``logits``, ``probability``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras

from landslide_tf.models.backbone import image_encoder
from landslide_tf.models.blocks import conv_block, segmentation_head, up_conv

__all__ = ["build_unet", "encoder_decoder"]


def encoder_decoder(
    input_shape: Sequence[int | None] = (128, 128, 4),
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.5,
    *,
    block: Callable[..., Any] = conv_block,
    attention: Sequence[str] = (),
    name: str = "unet",
    **attention_kwargs: Any,
) -> keras.Model:
    """A U-shaped network built from ``block``: U-Net and ResUNet.

    The encoder, then for ``i = depth - 1 .. 0``: ``dec{i}_up`` -> ``dec{i}_concat`` with the
    encoder map of level ``i`` -> ``block`` ``dec{i}``; then the head. U-Net uses
    :func:`~landslide_tf.models.blocks.conv_block`, ResUNet :func:`~landslide_tf.models.blocks.residual_block`.

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2**depth``.
        base_filters: Filters of level 0; level ``i`` has ``base_filters * 2**i``.
        depth: Number of down-samplings (``depth + 1`` encoder levels).
        dropout: Rate of the ``bottleneck`` dropout.
        block: Block builder (:func:`~landslide_tf.models.blocks.conv_block` or :func:`~landslide_tf.models.blocks.residual_block`).
        attention: Attention after each conv of the encoder blocks, any of ``"spatial"``,
            ``"ctx"`` in order (the decoder has none).
        name: Model name.
        **attention_kwargs: ``attention_kernel_size`` (7), ``attention_reduction`` (8).

    Returns:
        A model ``(batch, h, w, c) -> (batch, h, w, 1)`` float32 probabilities.
    """
    inputs, filters, features = image_encoder(
        input_shape, base_filters, depth, dropout, block, attention=attention, **attention_kwargs
    )
    x = features[-1]
    for i in reversed(range(depth)):
        up = up_conv(x, filters[i], name=f"dec{i}_up")  # (batch, h_i, w_i, f_i)
        x = keras.layers.Concatenate(name=f"dec{i}_concat")([features[i], up])
        x = block(x, filters[i], f"dec{i}")
    outputs = segmentation_head(x)
    return keras.Model(inputs, outputs, name=name)


build_unet: Callable[..., keras.Model] = functools.partial(
    encoder_decoder, block=conv_block, name="unet"
)
