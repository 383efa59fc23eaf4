"""Building blocks shared by the U-Net family: conv and residual blocks, heads, checks.

The families assemble them: :mod:`landslide_tf.models.backbone` (the ``image`` input and the
encoder, own or pretrained), :mod:`landslide_tf.models.unet` (the U-shaped network of U-Net
and ResUNet) and :mod:`landslide_tf.models.unetpp`.

Every block names its layers from a prefix so that models have deterministic layer names:
``{prefix}_conv{j}``, ``{prefix}_bn{j}``, ``{prefix}_relu{j}`` and, where attention is on,
``{prefix}_spatial{j}`` / ``{prefix}_ctx{j}`` (j = 1, 2). ``out_name`` renames the block's
last layer (U-Net++ nodes ``x_{i}_{j}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import keras

from landslide_tf.models.layers import ContextualAttention, SpatialAttention

__all__ = [
    "ATTENTION_KINDS",
    "attention_layer",
    "check_input_shape",
    "conv_block",
    "encoder",
    "encoder_filters",
    "residual_block",
    "segmentation_head",
    "up_conv",
]

ATTENTION_KINDS = ("spatial", "ctx")


def check_input_shape(
    input_shape: Sequence[int | None], depth: int, base_filters: int, dropout: float
) -> tuple[int | None, int | None, int]:
    """Validate the builder arguments; fail with the numbers.

    Args:
        input_shape: ``(height, width, channels)``; height/width may be ``None`` (any size
            divisible by ``2**depth`` at call time).
        depth: Number of 2x down-samplings.
        base_filters: Filters of the first encoder level.
        dropout: Dropout rate at the bottleneck.

    Returns:
        ``(height, width, channels)`` as ints (``None`` kept for free spatial sizes).

    Raises:
        ValueError: On a wrong rank, a non-integer size, depth or width, a size not
            divisible by ``2**depth``, no channel, or out-of-range
            ``depth``/``base_filters``/``dropout``.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    # int() would truncate 4.7 filters or a 16.5 side silently, and a depth of 2.5 would pass
    # here only to fail in a builder's range(depth) with a TypeError
    sizes = (("depth", depth), ("base_filters", base_filters))
    names = ("input height", "input width", "input channels")
    sizes += tuple(zip(names, input_shape, strict=True))
    for what, value in sizes:
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)):
            raise ValueError(f"{what} must be an integer, got {value!r}")
    if int(depth) < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if int(base_filters) < 1:
        raise ValueError(f"base_filters must be >= 1, got {base_filters}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    height, width, channels = input_shape
    if channels is None or int(channels) < 1:
        raise ValueError(f"input channels must be >= 1, got {channels}")
    factor = 2 ** int(depth)
    for axis, size in (("height", height), ("width", width)):
        if size is None:
            continue
        if int(size) < 1 or int(size) % factor:
            raise ValueError(f"input {axis} {size} is not divisible by {factor} (depth {depth})")
    return (
        None if height is None else int(height),
        None if width is None else int(width),
        int(channels),
    )


def encoder_filters(base_filters: int, depth: int) -> list[int]:
    """Filters per level ``0..depth``: ``base_filters * 2**i`` (level ``depth`` = bottleneck)."""
    return [int(base_filters) * 2**i for i in range(int(depth) + 1)]


def attention_layer(kind: str, name: str, attention_kwargs: dict[str, Any]) -> keras.layers.Layer:
    """The attention layer ``kind`` (``"spatial"`` or ``"ctx"``) named ``name``.

    Args:
        kind: One of ``ATTENTION_KINDS``.
        name: Layer name.
        attention_kwargs: ``attention_kernel_size`` (7), ``attention_reduction`` (8).

    Raises:
        ValueError: For an unknown kind (the message lists the valid ones).
    """
    kernel_size = int(attention_kwargs.get("attention_kernel_size", 7))
    if kind == "spatial":
        return SpatialAttention(kernel_size=kernel_size, name=name)
    if kind == "ctx":
        reduction = int(attention_kwargs.get("attention_reduction", 8))
        return ContextualAttention(reduction=reduction, kernel_size=kernel_size, name=name)
    raise ValueError(f"unknown attention {kind!r}; valid: {', '.join(ATTENTION_KINDS)}")


def _attention_relu(
    x: Any,
    prefix: str,
    j: int,
    attention: Sequence[str],
    activation: bool,
    out_name: str | None,
    attention_kwargs: dict[str, Any],
) -> Any:
    """The attention layers (on the batch-norm output), then the ReLU (optional).

    Attention sees the signed, batch-normalised conv output, as the paper places it "after
    each convolution + batch norm"; since the attention weights are positive,
    ``relu(x * a) == relu(x) * a`` for the spatial gate. Placing it after the ReLU instead
    would feed the contextual MLP only non-negative pooled values, which leaves about half of
    its ReLU hidden units dead from the start (the training-step test caught this).
    """
    for k, kind in enumerate(attention):
        name = f"{prefix}_{kind}{j}"
        if out_name and not activation and k == len(attention) - 1:
            name = out_name
        x = attention_layer(kind, name, attention_kwargs)(x)
    if activation:
        x = keras.layers.Activation("relu", name=out_name or f"{prefix}_relu{j}")(x)
    return x


#: Moving-average momentum of every batch norm. Keras' default (0.99) needs several hundred
#: steps before the inference statistics settle; with the paper's batch of 2 on a small
#: dataset, or a short run, validation then scores a model whose BN statistics still
#: remember their initial values (we saw val mIoU collapse to all-background while training
#: improved). 0.9 is PyTorch's default (its momentum=0.1).
BN_MOMENTUM = 0.9


def _conv_bn(x: Any, filters: int, prefix: str, j: int, kernel: int = 3) -> Any:
    x = keras.layers.Conv2D(
        filters,
        kernel,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{prefix}_conv{j}",
    )(x)
    return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_bn{j}")(x)


def conv_block(
    x: Any,
    filters: int,
    prefix: str,
    *,
    attention: Sequence[str] = (),
    out_name: str | None = None,
    **attention_kwargs: Any,
) -> Any:
    """Two ``3x3 conv -> batch norm [-> attention...] -> ReLU`` stages.

    Args:
        x: Input feature map ``(batch, h, w, c_in)``.
        filters: Output channels.
        prefix: Layer-name prefix (``enc2``, ``dec1``, ``x_1_2``).
        attention: Attention after each conv + BN (before its ReLU), in order: any of
            ``"spatial"``, ``"ctx"``.
        out_name: Name of the block's last layer, the second ReLU (default
            ``{prefix}_relu2``).
        **attention_kwargs: ``attention_kernel_size`` (7), ``attention_reduction`` (8).

    Returns:
        ``(batch, h, w, filters)``.
    """
    for j in (1, 2):
        x = _conv_bn(x, filters, prefix, j)
        x = _attention_relu(
            x, prefix, j, attention, True, out_name if j == 2 else None, attention_kwargs
        )
    return x


def residual_block(
    x: Any,
    filters: int,
    prefix: str,
    *,
    attention: Sequence[str] = (),
    out_name: str | None = None,
    **attention_kwargs: Any,
) -> Any:
    """Residual block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``.

    Layers: ``{prefix}_conv1, _bn1 [, attention1], _relu1, _conv2, _bn2 [, attention2],
    _shortcut (1x1 conv) + _shortcut_bn`` (only when the channel count changes), ``_add``,
    ``_relu2`` (or ``out_name``). Attention sits after conv1 + BN (before ``_relu1``) and
    after conv2 + BN (before the addition).

    Args:
        x: Input feature map ``(batch, h, w, c_in)``.
        filters: Output channels.
        prefix: Layer-name prefix.
        attention: As in :func:`conv_block`.
        out_name: Name of the block's final ReLU.
        **attention_kwargs: As in :func:`conv_block`.

    Returns:
        ``(batch, h, w, filters)``.
    """
    shortcut = x
    if x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(
            filters,
            1,
            use_bias=False,
            kernel_initializer="he_normal",
            name=f"{prefix}_shortcut",
        )(x)
        shortcut = keras.layers.BatchNormalization(
            momentum=BN_MOMENTUM, name=f"{prefix}_shortcut_bn"
        )(shortcut)
    y = _conv_bn(x, filters, prefix, 1)
    y = _attention_relu(y, prefix, 1, attention, True, None, attention_kwargs)
    y = _conv_bn(y, filters, prefix, 2)
    y = _attention_relu(y, prefix, 2, attention, False, None, attention_kwargs)
    y = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=out_name or f"{prefix}_relu2")(y)


def encoder(
    inputs: Any,
    filters: Sequence[int],
    block: Any,
    *,
    attention: Sequence[str] = (),
    dropout: float = 0.5,
    out_names: Sequence[str | None] | None = None,
    **attention_kwargs: Any,
) -> list[Any]:
    """The contracting path: ``enc{i}`` blocks with 2x max pooling in between.

    Level ``i`` (``0..depth``) has ``filters[i]`` channels at ``1/2**i`` resolution; the
    deepest level is followed by ``Dropout(dropout, name="bottleneck")``, so the layer named
    ``bottleneck`` is the (dropped-out in training) deepest feature map. Attention, when on,
    sits in every encoder block including the deepest.

    Args:
        inputs: ``(batch, h, w, c)``.
        filters: Channels per level, ``depth + 1`` values.
        block: :func:`conv_block` or :func:`residual_block`.
        attention: Attention kinds applied after each conv of every encoder block.
        dropout: Bottleneck dropout rate.
        out_names: Optional names for each level's block output (U-Net++: ``x_{i}_0``).
        **attention_kwargs: Passed to the blocks.

    Returns:
        The feature map of every level; the last one is the ``bottleneck`` dropout output.
    """
    depth = len(filters) - 1
    names = list(out_names) if out_names is not None else [None] * (depth + 1)
    features = []
    x = inputs
    for i, f in enumerate(filters):
        if i > 0:
            x = keras.layers.MaxPooling2D(2, name=f"enc{i - 1}_pool")(x)
        x = block(x, f, f"enc{i}", attention=attention, out_name=names[i], **attention_kwargs)
        features.append(x)
    features[-1] = keras.layers.Dropout(dropout, name="bottleneck")(features[-1])
    return features


def up_conv(x: Any, filters: int, name: str) -> Any:
    """2x up-sampling by a learned ``2x2`` transposed convolution, ``(b, h, w, c) -> (b, 2h, 2w, f)``."""
    return keras.layers.Conv2DTranspose(
        filters, 2, strides=2, padding="same", kernel_initializer="he_normal", name=name
    )(x)


def segmentation_head(features: Any, deep_features: Sequence[Any] = ()) -> Any:
    """``head_features`` -> 1x1 conv ``logits`` -> float32 sigmoid ``probability``.

    Args:
        features: The last decoder feature map ``(batch, h, w, c)``.
        deep_features: With deep supervision (U-Net++), the maps ``x_0_1..x_0_depth``: each
            gets its own 1x1 conv ``logits_{j}`` and ``logits`` is their average (so the
            output stays one ``(batch, h, w, 1)`` map named ``probability``).

    Returns:
        ``(batch, h, w, 1)`` float32 probabilities.
    """
    features = keras.layers.Identity(name="head_features")(features)
    if deep_features:
        # the deepest head reads head_features itself so that layer stays in the graph
        maps = [*deep_features[:-1], features]
        heads = [
            keras.layers.Conv2D(1, 1, name=f"logits_{j}")(f) for j, f in enumerate(maps, start=1)
        ]
        logits = keras.layers.Average(name="logits")(heads)
    else:
        logits = keras.layers.Conv2D(1, 1, name="logits")(features)
    return keras.layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
