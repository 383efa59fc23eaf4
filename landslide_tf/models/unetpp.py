"""U-Net++ (Zhou et al. 2018): nested, dense skip pathways, optional deep supervision.

Node ``x_{i}_{j}`` sits at level ``i`` (resolution ``1/2**i``) and column ``j``:
``x_{i}_0`` is the encoder block at level ``i`` (layers ``enc{i}_conv{j}``, ``enc{i}_bn{j}``,
...; the block's last layer is named ``x_{i}_0``; the deepest one, ``x_{depth}_0``, is
followed by the ``bottleneck`` dropout), and for ``j >= 1``
``x_{i}_{j} = block(concat(x_{i}_0, ..., x_{i}_{j-1}, up(x_{i+1}_{j-1})))`` with layers
``x_{i}_{j}_up``, ``x_{i}_{j}_concat``, ``x_{i}_{j}_conv{k}``, ``x_{i}_{j}_bn{k}``,
``x_{i}_{j}_relu1`` and the block output ``x_{i}_{j}``. ``head_features`` = ``x_0_{depth}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from landslide_tf.models.backbone import image_encoder
from landslide_tf.models.blocks import conv_block, segmentation_head, up_conv

__all__ = ["build_unetpp"]


def build_unetpp(
    input_shape: Sequence[int | None] = (128, 128, 4),
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.5,
    *,
    attention: Sequence[str] = (),
    deep_supervision: bool = False,
    name: str = "unetpp",
    **attention_kwargs: Any,
) -> keras.Model:
    """U-Net++ with ``conv3x3-BN-ReLU`` blocks; attention in the encoder nodes ``x_{i}_0``.

    Args:
        input_shape: ``(height, width, channels)``, sides divisible by ``2**depth``.
        base_filters: Filters of level 0; level ``i`` has ``base_filters * 2**i``.
        depth: Number of down-samplings.
        dropout: Bottleneck dropout rate.
        attention: Attention after each conv + BN (before its ReLU) of the encoder blocks, any of
            ``"spatial"``, ``"ctx"`` in order (the paper's variants 4-6).
        deep_supervision: Put a 1x1 head ``logits_{j}`` on every ``x_0_{j}``; ``logits`` is
            their mean, so the model keeps one ``probability`` output.
        name: Model name.
        **attention_kwargs: ``attention_kernel_size`` (7), ``attention_reduction`` (8).

    Returns:
        A model ``(batch, h, w, c) -> (batch, h, w, 1)`` float32 probabilities.
    """
    inputs, filters, column0 = image_encoder(
        input_shape,
        base_filters,
        depth,
        dropout,
        conv_block,
        attention=attention,
        out_names=[f"x_{i}_0" for i in range(depth + 1)],
        **attention_kwargs,
    )
    nodes: dict[tuple[int, int], Any] = {(i, 0): f for i, f in enumerate(column0)}
    for j in range(1, depth + 1):
        for i in range(depth + 1 - j):
            up = up_conv(nodes[i + 1, j - 1], filters[i], name=f"x_{i}_{j}_up")
            skips = [nodes[i, k] for k in range(j)]
            x = keras.layers.Concatenate(name=f"x_{i}_{j}_concat")([*skips, up])
            nodes[i, j] = conv_block(x, filters[i], f"x_{i}_{j}", out_name=f"x_{i}_{j}")
    deep = [nodes[0, j] for j in range(1, depth + 1)] if deep_supervision else ()
    outputs = segmentation_head(nodes[0, depth], deep)
    return keras.Model(inputs, outputs, name=name)
