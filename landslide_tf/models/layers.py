"""Attention layers of the paper: spatial attention and contextual (CBAM-like) attention.

Both layers keep the shape of their input, ``(batch, h, w, c) -> (batch, h, w, c)``, compute
in the dtype policy's compute dtype (so they work under ``mixed_float16``/``mixed_bfloat16``)
and are registered for ``.keras`` serialization under the package name ``landslide_tf``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["ContextualAttention", "LeadingChannelStandardization", "SpatialAttention"]


@keras.saving.register_keras_serializable(package="landslide_tf")
class SpatialAttention(keras.layers.Layer):
    """Spatial attention: where in the tile to look.

    ``a = sigmoid(conv_k([mean_c(x), max_c(x)]))`` and the output is ``x * a``: the mean and
    the maximum over the channel axis are stacked into a 2-channel map, a single ``k x k``
    convolution turns it into one attention logit per pixel, and the sigmoid of it scales
    every channel of that pixel (Woo et al. 2018, CBAM, spatial branch).

    Example:
        >>> layer = SpatialAttention(kernel_size=7)
        >>> layer(keras.ops.ones((2, 16, 16, 8))).shape
        (2, 16, 16, 8)

    Args:
        kernel_size: Side of the square convolution over the pooled 2-channel map.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(kernel_size) < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        self.kernel_size = int(kernel_size)
        self.conv = keras.layers.Conv2D(
            1,
            self.kernel_size,
            padding="same",
            kernel_initializer="glorot_uniform",
            dtype=self.dtype_policy,
            name="conv",
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.conv.build((*input_shape[:-1], 2))

    def attention_map(self, x: Any) -> Any:
        """The per-pixel attention weights in (0, 1), ``(batch, h, w, 1)``."""
        avg = ops.mean(x, axis=-1, keepdims=True)  # (batch, h, w, 1)
        mx = ops.max(x, axis=-1, keepdims=True)  # (batch, h, w, 1)
        pooled = ops.concatenate([avg, mx], axis=-1)  # (batch, h, w, 2)
        return ops.sigmoid(self.conv(pooled))

    def call(self, inputs: Any) -> Any:
        return inputs * self.attention_map(inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"kernel_size": self.kernel_size})
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class ContextualAttention(keras.layers.Layer):
    """Contextual attention: channel attention, then spatial attention (CBAM-like).

    Channel branch: ``m = sigmoid(mlp(gap(x)) + mlp(gmp(x)))`` with a shared two-layer MLP
    ``c -> max(c // reduction, min(c, 4)) -> c`` (ReLU in between), ``x' = x * m``. Spatial branch:
    ``SpatialAttention(kernel_size)`` applied to ``x'``.

    Example:
        >>> layer = ContextualAttention(reduction=8, kernel_size=7)
        >>> layer(keras.ops.ones((2, 16, 16, 32))).shape
        (2, 16, 16, 32)

    Args:
        reduction: Channel reduction ratio of the shared MLP's hidden layer.
        kernel_size: Kernel side of the spatial branch.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ...).
    """

    def __init__(self, reduction: int = 8, kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(reduction) < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        self.reduction = int(reduction)
        self.kernel_size = int(kernel_size)
        self.spatial = SpatialAttention(self.kernel_size, dtype=self.dtype_policy, name="spatial")
        self.mlp_hidden: keras.layers.Dense | None = None
        self.mlp_out: keras.layers.Dense | None = None

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ContextualAttention needs a known channel count")
        hidden = self.hidden_units(int(channels))
        self.mlp_hidden = keras.layers.Dense(
            hidden, activation="relu", dtype=self.dtype_policy, name="mlp_hidden"
        )
        self.mlp_out = keras.layers.Dense(int(channels), dtype=self.dtype_policy, name="mlp_out")
        self.mlp_hidden.build((None, int(channels)))
        self.mlp_out.build((None, hidden))
        self.spatial.build(input_shape)

    def hidden_units(self, channels: int) -> int:
        """Width of the MLP's hidden layer: ``channels // reduction``, at least ``min(channels, 4)``.

        The floor only matters for narrow layers (fewer than ``4 * reduction`` channels, e.g.
        test-size models): a single ReLU unit that is negative for every tile would cut the
        whole channel branch off from training.
        """
        return max(channels // self.reduction, min(channels, 4))

    def channel_map(self, x: Any) -> Any:
        """The per-channel attention weights in (0, 1), ``(batch, 1, 1, c)``."""
        avg = ops.mean(x, axis=(1, 2))  # (batch, c)
        mx = ops.max(x, axis=(1, 2))  # (batch, c)
        logits = self.mlp_out(self.mlp_hidden(avg)) + self.mlp_out(self.mlp_hidden(mx))
        return ops.expand_dims(ops.expand_dims(ops.sigmoid(logits), 1), 1)

    def call(self, inputs: Any) -> Any:
        return self.spatial(inputs * self.channel_map(inputs))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"reduction": self.reduction, "kernel_size": self.kernel_size})
        return config


@keras.saving.register_keras_serializable(package="landslide_tf")
class LeadingChannelStandardization(keras.layers.Layer):
    """``(x - mean) / std`` on the first ``len(mean)`` channels; the others pass unchanged.

    Pretrained encoders expect their own input scaling on the RGB channels (ImageNet mean and
    standard deviation of ``[0, 1]`` images); DEM and other extra channels keep the package's
    own normalisation. Doing it inside the model keeps export and predict unchanged.

    Example:
        >>> layer = LeadingChannelStandardization(mean=(0.5,), std=(0.25,))
        >>> keras.ops.convert_to_numpy(layer(keras.ops.ones((1, 1, 1, 2))))[0, 0, 0].tolist()
        [2.0, 1.0]

    Args:
        mean: Per-channel means of the leading channels (empty: identity).
        std: Per-channel standard deviations, same length, all > 0.
        **kwargs: Standard layer arguments.
    """

    def __init__(
        self, mean: tuple[float, ...] = (), std: tuple[float, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if len(mean) != len(std) or any(float(s) <= 0 for s in std):
            raise ValueError(f"mean {mean} and std {std} need equal lengths and std > 0")
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)

    def call(self, inputs: Any) -> Any:
        n = len(self.mean)
        if n == 0:
            return inputs
        mean = ops.cast(ops.convert_to_tensor(self.mean), inputs.dtype)
        std = ops.cast(ops.convert_to_tensor(self.std), inputs.dtype)
        head = (inputs[..., :n] - mean) / std  # (batch, h, w, n)
        return ops.concatenate([head, inputs[..., n:]], axis=-1)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"mean": list(self.mean), "std": list(self.std)})
        return config
