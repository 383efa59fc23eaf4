"""U-Net (Ronneberger et al. 2015) with batch norm, optional encoder attention.

``build_unet(input_shape=(128, 128, 4), base_filters=32, depth=4, dropout=0.5, *,
attention=(), name="unet", **attention_kwargs)``: two ``conv3x3-BN-ReLU`` per block, max
pooling, transposed-conv up-sampling; that is
:func:`landslide_tf.models.blocks.encoder_decoder` with ``block=conv_block``.

Layer names: ``image``; encoder ``enc{i}_conv{j}``, ``enc{i}_bn{j}``, ``enc{i}_relu{j}``,
``enc{i}_pool``; ``bottleneck`` (dropout after the deepest block ``enc{depth}``); decoder
``dec{i}_up``, ``dec{i}_concat``, ``dec{i}_conv{j}``, ``dec{i}_bn{j}``, ``dec{i}_relu{j}``;
``head_features``, ``logits``, ``probability``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras

from landslide_tf.models.blocks import conv_block, encoder_decoder

__all__ = ["build_unet"]

build_unet: Callable[..., keras.Model] = functools.partial(
    encoder_decoder, block=conv_block, name="unet"
)
