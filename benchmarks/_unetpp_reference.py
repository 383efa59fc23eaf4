"""A plain-Keras U-Net++ with the nested dense skips (Zhou et al. 2018), as a fair peer.

keras-unet-collection 0.1.13's ``unet_plus_2d`` has no skip connections (see ``_peers``), so
its timings say nothing about a real U-Net++. This is the textbook network, written
independently of ``landslide_tf.models``: node ``X[i][j]`` (level ``i``, column ``j``) is two
3x3 conv-BN-ReLU on the concatenation of ``X[i][0..j-1]`` and the 2x transposed-conv
up-sampling of ``X[i+1][j-1]``; the encoder column ``X[i][0]`` max-pools between levels; a
1x1 conv with sigmoid reads ``X[0][depth]`` (no deep supervision).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers


def _block(x, filters: int, name: str):
    for k in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{k}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{k}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{k}")(x)
    return x


def build_reference_unetpp(
    input_shape: Sequence[int] = (128, 128, 4), base_filters: int = 32, depth: int = 4
) -> keras.Model:
    """The nested U-Net++ with ``depth + 1`` levels of ``base_filters * 2**i`` filters."""
    inputs = keras.Input(tuple(input_shape), name="inputs")
    nodes: list[list] = [[] for _ in range(depth + 1)]
    x = inputs
    for i in range(depth + 1):
        if i:
            x = layers.MaxPooling2D(name=f"pool{i}")(nodes[i - 1][0])
        nodes[i].append(_block(x, base_filters * 2**i, f"x{i}_0"))
    for j in range(1, depth + 1):
        for i in range(depth + 1 - j):
            up = layers.Conv2DTranspose(
                base_filters * 2**i, 2, strides=2, padding="same", name=f"up{i + 1}_{j - 1}"
            )(nodes[i + 1][j - 1])
            merged = layers.Concatenate(name=f"cat{i}_{j}")([*nodes[i][:j], up])
            nodes[i].append(_block(merged, base_filters * 2**i, f"x{i}_{j}"))
    out = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="probability")(
        nodes[0][depth]
    )
    return keras.Model(inputs, out, name="reference_unetpp")
