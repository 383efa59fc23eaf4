"""Computing the maps: tf-keras-vis GradCAM, GradCAM++, LayerCAM and ScoreCAM wrappers.

``compute_cam`` is the entry point; ``RegionScoreHead`` is the two-class head that ScoreCAM
explains. See ``landslide_tf.explain`` for the methods; import these names from there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from landslide_tf.errors import UserError
from landslide_tf.explain.targets import EPSILON, METHODS, TARGETS, resolve_layer, target_regions
from landslide_tf.inference.tta import DEFAULT_TRANSFORMS, apply_model
from landslide_tf.training.precision import convert_model

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# ScoreCAM head


@keras.saving.register_keras_serializable(package="landslide_tf")
class RegionScoreHead(keras.layers.Layer):
    """Two-class head for ScoreCAM: ``[log(1 - m), log(m)]``, ``m`` = mean p over a region.

    tf-keras-vis ScoreCAM applies a softmax to the model output before scoring; on one sigmoid
    channel that is constant. Its softmax here is exactly ``[1 - m, m]``.

    Args:
        height: tile height.
        width: tile width.
        **kwargs: base layer arguments.

    Call:
        ``probs (B, H, W, 1)`` -> ``(B, 2)`` float32. The region (``(1, H, W, 1)`` in {0, 1},
        shared by the batch) is a non-trainable weight set with ``set_region``.
    """

    def __init__(self, height: int, width: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height = int(height)
        self.width = int(width)
        self.region = self.add_weight(
            shape=(1, self.height, self.width, 1),
            initializer="ones",
            trainable=False,
            name="region",
        )

    def set_region(self, region: np.ndarray) -> None:
        """Set the ``(H, W)`` or ``(H, W, 1)`` region (non-empty) explained next."""
        region = np.asarray(region, np.float32).reshape(1, self.height, self.width, 1)
        self.region.assign(region)

    def call(self, probs: Any) -> Any:
        probs = keras.ops.cast(probs, "float32")
        inside = keras.ops.sum(probs * self.region, axis=(1, 2, 3))  # (B,)
        mean = inside / keras.ops.maximum(keras.ops.sum(self.region), 1.0)
        mean = keras.ops.clip(mean, EPSILON, 1.0 - EPSILON)
        return keras.ops.stack([keras.ops.log(1.0 - mean), keras.ops.log(mean)], axis=-1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, int]:
        return (input_shape[0], 2)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"height": self.height, "width": self.width})
        return config


# --------------------------------------------------------------------------------------------
# CAMs


def _region_score(region: np.ndarray) -> Any:
    """Score function for tf-keras-vis: mean model output over ``region (B, H, W, 1)``."""
    region_t = tf.constant(region, tf.float32)
    area = tf.reduce_sum(region_t, axis=[1, 2, 3])

    def score(output: tf.Tensor) -> tf.Tensor:
        output = tf.cast(output, tf.float32)  # (B, H, W, 1)
        return tf.reduce_sum(output * region_t, axis=[1, 2, 3]) / area  # (B,)

    return score


def _gradient_visualizer(model: keras.Model, method: str, linear: bool) -> Any:
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

    cls = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "layercam": Layercam}[method]
    modifier = ReplaceToLinear() if linear else None
    return cls(model, model_modifier=modifier, clone=True)


def _check_input(model: keras.Model, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise UserError(f"expected tiles (N, H, W, C), got an array of shape {x.shape}")
    expected = tuple(model.inputs[0].shape[1:])
    for got, want in zip(x.shape[1:], expected, strict=True):
        if want is not None and got != want:
            raise UserError(
                f"tiles of shape {x.shape[1:]} do not fit model {model.name!r} (input {expected})"
            )
    return x


def predict_probs(
    model: keras.Model,
    x: np.ndarray,
    batch_size: int = 8,
    tta: bool = False,
    transforms: str = DEFAULT_TRANSFORMS,
) -> np.ndarray:
    """Probabilities ``(N, H, W, 1)`` of ``x (N, H, W, C)``, in eager batches.

    Plain calls (not ``predict``) so that different tile counts do not retrace a tf.function.
    With ``tta`` the probabilities are averaged over ``transforms`` as evaluate, predict and
    the SavedModel average them (``landslide_tf.inference.tta.apply_model``), so the
    "predicted" region is the run's own prediction.
    """
    batch_size = max(1, int(batch_size))
    parts = [
        keras.ops.convert_to_numpy(
            apply_model(
                lambda t: model(t, training=False), x[start : start + batch_size], tta, transforms
            )
        )
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts, axis=0).astype(np.float32)


def compute_cam(
    model: keras.Model,
    x: np.ndarray,
    method: str = "gradcam",
    layer: str | None = None,
    target: str = "predicted",
    mask: np.ndarray | None = None,
    threshold: float = 0.5,
    batch_size: int = 8,
    linear: bool = False,
    probs: np.ndarray | None = None,
) -> np.ndarray:
    """Class activation maps of a segmentation model, one per tile.

    Args:
        model: a model with one input and one ``(N, H, W, 1)`` sigmoid output.
        x: tiles ``(N, H, W, C)`` (or one ``(H, W, C)``), preprocessed as for training.
        method: ``"gradcam"``, ``"gradcam++"``, ``"layercam"`` or ``"scorecam"``.
        layer: the layer to explain; ``None`` = ``models.default_gradcam_layer(model)``.
        target: ``"predicted"``, ``"truth"`` or ``"all"``: the region whose mean probability
            is the explained score.
        mask: true masks ``(N, H, W[, 1])``; required for ``target="truth"``.
        threshold: probability threshold defining the predicted region.
        batch_size: tiles per CAM computation (memory: gradients of one batch at a time).
        linear: explain the mean *logit* instead of the mean probability, using tf-keras-vis's
            ``ReplaceToLinear`` on a clone of the model (gradient methods only).
        probs: the model's probabilities for ``x`` when already computed ``(N, H, W, 1)``.

    Returns:
        ``(N, H, W)`` float32 maps in [0, 1], each min-max normalized (an all-zero map means
        no positive evidence for the score in that layer). A mixed-precision model is
        explained through a float32 copy with the same weights (tf-keras-vis fails on
        bfloat16/float16 activations); ``model`` itself is left as it is.

    Raises:
        UserError: unknown method, target or layer, or tiles that do not fit the model.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    model = convert_model(model, "float32")  # the same model when it computes in float32
    x = _check_input(model, x)
    layer = resolve_layer(model, layer)
    batch_size = max(1, int(batch_size))
    if probs is None:
        probs = predict_probs(model, x, batch_size)  # (N, H, W, 1)
    regions = target_regions(probs, target, mask, threshold)
    logger.info(
        "%s on layer %s of %s: %d tile(s), target %s", method, layer, model.name, len(x), target
    )
    if method == "scorecam":
        if linear:
            logger.info("linear=True is ignored by scorecam (it scores probabilities)")
        cams = _scorecam(model, x, regions, layer, batch_size)
    else:
        cams = _gradient_cam(model, x, regions, layer, method, batch_size, linear)
    cams = np.nan_to_num(np.asarray(cams, np.float32).reshape(x.shape[:3]), nan=0.0)
    return np.clip(cams, 0.0, 1.0)


def _gradient_cam(
    model: keras.Model,
    x: np.ndarray,
    regions: np.ndarray,
    layer: str,
    method: str,
    batch_size: int,
    linear: bool,
) -> np.ndarray:
    output_layer = model.outputs[0]._keras_history.operation
    activation_before = getattr(output_layer, "activation", None)
    visualizer = _gradient_visualizer(model, method, linear)
    if getattr(output_layer, "activation", None) is not activation_before:
        output_layer.activation = activation_before  # never leave the user's model modified
        raise RuntimeError("ReplaceToLinear modified the user's model; it was restored")
    cams = []
    for start in range(0, len(x), batch_size):
        stop = start + batch_size
        cam = visualizer(
            _region_score(regions[start:stop]),
            tf.constant(x[start:stop]),
            penultimate_layer=layer,
            seek_penultimate_conv_layer=False,
        )
        cams.append(np.asarray(cam, np.float32).reshape(x[start:stop].shape[:3]))  # (B, H, W)
    return np.concatenate(cams, axis=0)


def _scorecam(
    model: keras.Model, x: np.ndarray, regions: np.ndarray, layer: str, batch_size: int
) -> np.ndarray:
    from tf_keras_vis.scorecam import Scorecam

    height, width = x.shape[1:3]
    head = RegionScoreHead(height, width, name="region_score")
    wrapper = keras.Model(model.inputs, head(model.outputs[0]), name=f"{model.name}_two_class")
    visualizer = Scorecam(wrapper)
    cams = []
    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()  # Scorecam calls predict() with progress bars
    try:
        for i in range(len(x)):  # the region differs per tile, and the head holds one region
            head.set_region(regions[i])
            cam = visualizer(
                lambda output: output[:, 1],
                tf.constant(x[i : i + 1]),
                penultimate_layer=layer,
                seek_penultimate_conv_layer=False,
                batch_size=batch_size,
            )
            cams.append(np.asarray(cam, np.float32).reshape(1, height, width))
    finally:
        if interactive:
            keras.config.enable_interactive_logging()
    return np.concatenate(cams, axis=0)
