"""ResUNet: the U-Net layout with residual (shortcut-add) blocks in encoder and decoder.

``build_resunet(input_shape=(128, 128, 4), base_filters=32, depth=4, dropout=0.5, *,
attention=(), name="resunet", **attention_kwargs)``: ``relu(conv-BN-ReLU-conv-BN +
shortcut)`` blocks in a U-Net; that is :func:`landslide_tf.models.unet.encoder_decoder`
with ``block=residual_block``.

Layer names as in :mod:`landslide_tf.models.unet`, plus ``{prefix}_shortcut``,
``{prefix}_shortcut_bn`` (1x1 projection where the channel count changes) and
``{prefix}_add`` in every block.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras

from landslide_tf.models.blocks import residual_block
from landslide_tf.models.unet import encoder_decoder

__all__ = ["build_resunet"]

build_resunet: Callable[..., keras.Model] = functools.partial(
    encoder_decoder, block=residual_block, name="resunet"
)
