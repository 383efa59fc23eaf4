"""Class activation maps (GradCAM and friends) for the segmentation models.

Built on tf-keras-vis 0.8.7, which runs on Keras 3 without tf-keras. A segmentation model has
no class logit, so the explained *score* of one tile is the mean landslide probability over a
target region of that tile:

- ``target="predicted"`` (default): the pixels the model calls landslide (``p >= threshold``),
  falling back to the whole tile when the model predicts none;
- ``target="truth"``: the true landslide mask (needs ``mask``; an empty mask falls back to the
  whole tile);
- ``target="all"``: every pixel.

Methods: ``gradcam``, ``gradcam++``, ``layercam`` (gradient based) and ``scorecam``
(gradient free). ScoreCAM applies a softmax to the model output before scoring, which on a
single sigmoid channel is the constant 1, so every channel gets the same weight (a known
tf-keras-vis limitation). Here ScoreCAM therefore explains a per-image two-class head wrapped
around the model, ``[log(1 - m), log(m)]`` with ``m`` the mean probability over the target
region: its softmax is exactly ``[1 - m, m]`` and the score is ``m``.

The explained layer defaults to ``landslide_tf.models.default_gradcam_layer(model)``; any layer
with a ``(N, h, w, c)`` output can be named. The user's model is never modified: gradient
methods build a new functional model over the same layers (``clone=True`` when the
``ReplaceToLinear`` modifier is used, ``linear=True``), ScoreCAM wraps the model in a new one.

``cam_energy_inside(cam, mask)`` is the number reported beside the pictures: the share of the
CAM's total energy (sum of the map) that falls inside the true landslide region. A map that
ignores the landslide scores about the mask's area share; a map that looks at the landslide
scores more.

Command line::

    python -m landslide_tf.gradcam RUN_DIR --data DIR --out OUT [--layer NAME]
        [--method gradcam|gradcam++|layercam|scorecam] [--target predicted|truth|all] [--n K]

writes ``OUT/<stem>.png`` (image, DEM when present, truth, prediction, heat map over the
image) per tile, ``OUT/grid.png``, and ``OUT/energy.json`` + ``OUT/energy.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from landslide_tf.errors import UserError

logger = logging.getLogger(__name__)

METHODS = ("gradcam", "gradcam++", "layercam", "scorecam")
TARGETS = ("predicted", "truth", "all")
EPSILON = 1e-6


# --------------------------------------------------------------------------------------------
# layers and targets


def _spatial_layers(model: keras.Model) -> list[str]:
    """Names of the layers whose output is ``(N, h, w, c)``, input and output excluded."""
    names = []
    output_layers = {t._keras_history.operation.name for t in model.outputs}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name in output_layers:
            continue
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):  # layers used more than once, nested oddities
            continue
        if len(shape) == 4:
            names.append(layer.name)
    return names


def valid_layers(model: keras.Model) -> list[str]:
    """Layer names that can be explained, the usual choices first.

    Args:
        model: a functional Keras model.

    Returns:
        ``head_features``, ``bottleneck``, U-Net++ nodes ``x_{i}_{j}``, decoder block outputs
        ``dec{i}_relu2``, encoder convolutions ``enc{i}_conv{j}``, then every other layer with
        a 4-D output, each group in model order.
    """
    names = _spatial_layers(model)

    def rank(name: str) -> int:
        if name == "head_features":
            return 0
        if name == "bottleneck":
            return 1
        if re.fullmatch(r"x_\d+_\d+", name):  # U-Net++ nodes
            return 2
        if re.fullmatch(r"dec\d+_relu2", name):  # U-Net / ResUNet decoder block outputs
            return 3
        if re.fullmatch(r"enc\d+_conv\d+", name):
            return 4
        return 5

    return sorted(names, key=rank)  # stable: model order inside each group


def resolve_layer(model: keras.Model, layer: str | None = None) -> str:
    """Return the layer to explain: ``layer`` checked, or the model's default.

    Args:
        model: the segmentation model.
        layer: a layer name, or ``None`` for ``landslide_tf.models.default_gradcam_layer``.

    Returns:
        The layer name.

    Raises:
        UserError: unknown layer, or a layer without a ``(N, h, w, c)`` output; the message lists
            some valid names.
    """
    if layer is None:
        layer = _default_layer(model)
    names = [item.name for item in model.layers]
    candidates = valid_layers(model)
    if layer not in names or layer not in candidates:
        shown = ", ".join(candidates[:8])
        more = f" (and {len(candidates) - 8} more)" if len(candidates) > 8 else ""
        what = "unknown layer" if layer not in names else "layer without a (N, h, w, c) output"
        raise UserError(f"{what} {layer!r} in model {model.name!r}; valid layers: {shown}{more}")
    return layer


def _default_layer(model: keras.Model) -> str:
    try:
        from landslide_tf.models import default_gradcam_layer
    except ImportError:  # pragma: no cover - models is part of the package
        default_gradcam_layer = None
    if default_gradcam_layer is not None:
        try:
            return default_gradcam_layer(model)
        except (KeyError, ValueError) as exc:  # a model that is not from landslide_tf.models
            logger.debug("default_gradcam_layer failed (%s); using the last spatial layer", exc)
    candidates = _spatial_layers(model)
    if "head_features" in candidates:
        return "head_features"
    if not candidates:
        raise UserError(f"model {model.name!r} has no layer with a (N, h, w, c) output")
    return candidates[-1]


def target_regions(
    probs: np.ndarray,
    target: str = "predicted",
    mask: np.ndarray | None = None,
    threshold: float = 0.5,
) -> np.ndarray:
    """The pixels whose mean probability is explained, one region per tile.

    Args:
        probs: model probabilities ``(N, H, W, 1)``.
        target: ``"predicted"``, ``"truth"`` or ``"all"`` (see the module docstring).
        mask: true masks ``(N, H, W)`` or ``(N, H, W, 1)`` in {0, 1}; needed for ``"truth"``.
        threshold: probability threshold for ``"predicted"``.

    Returns:
        ``(N, H, W, 1)`` float32 in {0, 1}, never empty for a tile (empty -> whole tile).
    """
    probs = np.asarray(probs, np.float32)
    if target == "predicted":
        region = probs >= threshold
    elif target == "truth":
        if mask is None:
            raise UserError("target='truth' needs the true masks (mask=...)")
        region = _as_mask(mask, probs.shape[:3])[..., None]
    elif target == "all":
        region = np.ones_like(probs, dtype=bool)
    else:
        raise UserError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    region = region.astype(np.float32)
    empty = region.reshape(len(region), -1).sum(axis=1) == 0
    if empty.any():
        logger.debug(
            "%d tile(s) with an empty %s region: using the whole tile", empty.sum(), target
        )
        region[empty] = 1.0
    return region


def _as_mask(mask: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``(N, H, W[, 1])`` -> boolean ``(N, H, W)``, checked against ``shape``."""
    mask = np.asarray(mask)
    if mask.ndim == len(shape) + 1 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if tuple(mask.shape) != tuple(shape):
        raise UserError(f"mask shape {mask.shape} does not match the tiles {tuple(shape)}")
    return mask > 0.5


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


def predict_probs(model: keras.Model, x: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Probabilities ``(N, H, W, 1)`` of ``x (N, H, W, C)``, in eager batches.

    Plain calls (not ``predict``) so that different tile counts do not retrace a tf.function.
    """
    batch_size = max(1, int(batch_size))
    parts = [
        keras.ops.convert_to_numpy(model(x[start : start + batch_size], training=False))
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
        no positive evidence for the score in that layer).

    Raises:
        UserError: unknown method, target or layer, or tiles that do not fit the model.
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
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


# --------------------------------------------------------------------------------------------
# energy


def mask_area_share(mask: np.ndarray) -> float:
    """Share of the tile's pixels that are landslide (``mask`` ``(H, W[, 1])``)."""
    mask = np.asarray(mask) > 0.5
    return float(mask.mean()) if mask.size else math.nan


def cam_energy_inside(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of the CAM energy that falls inside the true landslide region.

    ``sum(cam * mask) / sum(cam)``: 1 means the map looks only at the landslide, the mask's
    area share is what a map spread evenly over the tile gets.

    >>> cam = np.array([[1.0, 1.0], [0.0, 2.0]]); mask = np.array([[0, 0], [0, 1]])
    >>> cam_energy_inside(cam, mask)
    0.5

    Args:
        cam: one map ``(H, W)`` or a batch ``(N, H, W)``, non-negative.
        mask: the true mask(s), same shape (a trailing channel of 1 is allowed), in {0, 1}.

    Returns:
        The share for one tile (``nan`` for an all-zero map); for a batch, the mean of the
        per-tile shares over tiles with landslide pixels and a non-zero map (``nan`` if none).
    """
    cam = np.asarray(cam, np.float64)
    inside = _as_mask(mask, cam.shape)
    if cam.ndim == 2:
        cam, inside = cam[None], inside[None]
    shares = []
    for tile_cam, tile_mask in zip(cam, inside, strict=True):
        total = tile_cam.sum()
        if total <= 0 or (len(cam) > 1 and not tile_mask.any()):
            shares.append(math.nan)
            continue
        shares.append(float(tile_cam[tile_mask].sum() / total))
    valid = [s for s in shares if not math.isnan(s)]
    if len(cam) == 1:
        return shares[0]
    return float(np.mean(valid)) if valid else math.nan


# --------------------------------------------------------------------------------------------
# figures


def display_channels(
    x: np.ndarray, modalities: str | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Split one input tile into what is shown: RGB ``(H, W, 3)`` and DEM ``(H, W)``.

    Args:
        x: one preprocessed tile ``(H, W, C)``.
        modalities: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``; ``None`` guesses from ``C``
            (1-2 channels: DEM first; 3: RGB; 4 or more: RGB then DEM, derived channels last).

    Returns:
        ``(rgb or None, dem or None)``, both scaled to [0, 1] for display.
    """
    channels = x.shape[-1]
    if modalities is None:
        modalities = "dem" if channels < 3 else ("rgb" if channels == 3 else "rgb+dem")
    rgb = dem = None
    if modalities in ("rgb+dem", "rgb"):
        rgb = np.clip(x[..., :3], 0.0, 1.0)
    if modalities == "rgb+dem" and channels > 3:
        dem = x[..., 3]
    elif modalities == "dem":
        dem = x[..., 0]
    if dem is not None:
        lo, hi = float(np.min(dem)), float(np.max(dem))
        dem = (dem - lo) / (hi - lo) if hi > lo else np.zeros_like(dem)
    return rgb, dem


def _background(rgb: np.ndarray | None, dem: np.ndarray | None) -> np.ndarray:
    if rgb is not None:
        return rgb
    return np.repeat(dem[..., None], 3, axis=-1)


def _tile_panels(
    axes: Sequence[Any],
    x: np.ndarray,
    mask: np.ndarray | None,
    prob: np.ndarray,
    cam: np.ndarray,
    modalities: str | None,
    threshold: float,
    with_dem: bool,
    titles: bool = True,
) -> None:
    """Draw image, [DEM], truth, prediction and heat map into ``axes``."""
    rgb, dem = display_channels(x, modalities)
    background = _background(rgb, dem)
    panels: list[tuple[str, Any]] = [("image (RGB)" if rgb is not None else "DEM", background)]
    if with_dem:
        panels.append(("DEM", dem if dem is not None else np.zeros(x.shape[:2])))
    truth = np.zeros(x.shape[:2]) if mask is None else np.asarray(mask).reshape(x.shape[:2])
    panels.append(("truth", truth))
    predicted = (np.asarray(prob).reshape(x.shape[:2]) >= threshold).astype(np.float32)
    panels.append((f"prediction (p >= {threshold:g})", predicted))
    for ax, (title, image) in zip(axes, panels, strict=False):
        if image.ndim == 3:
            ax.imshow(image)
        else:
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        if titles:
            ax.set_title(title, fontsize=8)
    heat_ax = axes[len(panels)]
    heat_ax.imshow(background)
    heat_ax.imshow(cam, cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
    if mask is not None and truth.any():
        heat_ax.contour(truth > 0.5, levels=[0.5], colors="white", linewidths=0.8)
    if titles:
        heat_ax.set_title("CAM (white: truth)", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def save_overlay(
    path: str | Path,
    x: np.ndarray,
    mask: np.ndarray | None,
    prob: np.ndarray,
    cam: np.ndarray,
    title: str = "",
    modalities: str | None = None,
    threshold: float = 0.5,
) -> Path:
    """Write one tile's figure: image, DEM (if any), truth, prediction, heat map over image.

    Args:
        path: PNG to write.
        x: the preprocessed tile ``(H, W, C)``.
        mask: true mask ``(H, W[, 1])`` or ``None``.
        prob: predicted probabilities ``(H, W[, 1])``.
        cam: the map ``(H, W)`` in [0, 1].
        title: figure title (for example the energy numbers).
        modalities: input modalities (see ``display_channels``).
        threshold: probability threshold drawn on the prediction.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, dem = display_channels(x, modalities)
    with_dem = dem is not None and x.shape[-1] > 1
    columns = 5 if with_dem else 4
    fig, axes = plt.subplots(1, columns, figsize=(2.2 * columns, 2.6))
    _tile_panels(axes, x, mask, prob, cam, modalities, threshold, with_dem)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_grid(
    path: str | Path,
    x: np.ndarray,
    masks: np.ndarray | None,
    probs: np.ndarray,
    cams: np.ndarray,
    labels: Sequence[str] = (),
    title: str = "",
    modalities: str | None = None,
    threshold: float = 0.5,
) -> Path:
    """Write all tiles as rows of (image, [DEM], truth, prediction, heat map).

    Args:
        path: PNG to write.
        x: tiles ``(N, H, W, C)``.
        masks: true masks ``(N, H, W[, 1])`` or ``None``.
        probs: probabilities ``(N, H, W[, 1])``.
        cams: maps ``(N, H, W)``.
        labels: one row label per tile (for example ``"stem: 0.71 / 0.20"``).
        title: figure title.
        modalities: input modalities (see ``display_channels``).
        threshold: probability threshold drawn on the predictions.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(x)
    _, dem = display_channels(x[0], modalities)
    with_dem = dem is not None and x.shape[-1] > 1
    columns = 5 if with_dem else 4
    fig, axes = plt.subplots(n, columns, figsize=(1.6 * columns, 1.6 * n + 0.5), squeeze=False)
    for i in range(n):
        mask = None if masks is None else masks[i]
        _tile_panels(
            axes[i], x[i], mask, probs[i], cams[i], modalities, threshold, with_dem, titles=i == 0
        )
        if i < len(labels):
            axes[i][0].set_ylabel(labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------
# run directories


def _pick_samples(run_dir: Path, data: str | Path | None, config: Any, split: str, n: int):
    """The first ``n`` tiles of a run's split (as in its split files), landslide tiles first."""
    from landslide_tf.runs import run_splits

    splits = run_splits(config, run_dir, data)
    if split not in splits:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(splits)}")
    chosen = [s for s in splits[split] if s.landslide] + [
        s for s in splits[split] if not s.landslide
    ]
    if not chosen:
        raise UserError(f"the {split} split of run {run_dir} is empty")
    return chosen[: max(1, int(n))]


def explain_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    out: str | Path | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    target: str = "predicted",
    n: int = 8,
    split: str = "test",
    threshold: float | None = None,
    batch_size: int = 8,
    linear: bool = False,
) -> dict[str, Any]:
    """CAMs of a trained run on ``n`` tiles of its test split, with figures and energy numbers.

    Tiles: the first ``n`` of the split (as in ``RUN_DIR/test.txt``), landslide tiles first.

    Args:
        run_dir: a run directory of ``landslide_tf.train`` (``config.json``, ``best.keras``).
        data: dataset folder or zip; ``None`` = the one in the run config.
        out: output folder; ``None`` = ``RUN_DIR/gradcam_<method>``.
        layer: layer to explain (``None`` = the model's default).
        method: see ``compute_cam``.
        target: see ``compute_cam``.
        n: number of tiles.
        split: ``"test"`` (default), ``"val"`` or ``"train"``.
        threshold: probability threshold; ``None`` = the run config's.
        batch_size: tiles per CAM batch.
        linear: see ``compute_cam``.

    Returns:
        The summary also written to ``OUT/energy.json``: ``model``, ``method``, ``layer``,
        ``target``, ``n_tiles``, ``mean_energy_inside`` and ``mean_area_share`` (over the
        ``n_tiles_scored`` tiles with landslide pixels and a non-zero map), ``n_zero_maps``,
        ``tiles`` (per-tile rows) and ``files``.
    """
    from landslide_tf import data as lsdata
    from landslide_tf.runs import dataset_options, load_run, read_run_config

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    config, raw = read_run_config(run_dir)
    _, model = load_run(run_dir)
    threshold = config.threshold if threshold is None else float(threshold)
    layer = resolve_layer(model, layer)
    samples = _pick_samples(run_dir, data, config, split, n)
    options = dataset_options(config, raw)  # image_size, modalities, dem_norm, dem_stats, derived

    xs, ys = [], []
    for sample in samples:
        x, y = lsdata.load_sample(sample, **options)
        xs.append(x)
        ys.append(y)
    x = np.stack(xs).astype(np.float32)  # (N, H, W, C)
    masks = np.stack(ys)[..., 0]  # (N, H, W)
    probs = predict_probs(model, x, batch_size)  # (N, H, W, 1)
    cams = compute_cam(
        model,
        x,
        method=method,
        layer=layer,
        target=target,
        mask=masks,
        threshold=threshold,
        batch_size=batch_size,
        linear=linear,
        probs=probs,
    )

    out = Path(out) if out is not None else run_dir / f"gradcam_{method.replace('+', 'p')}"
    out.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for i, sample in enumerate(samples):
        has_landslide = bool(masks[i].any())
        energy = cam_energy_inside(cams[i], masks[i]) if has_landslide else math.nan
        area = mask_area_share(masks[i])
        png = out / f"{sample.stem}.png"
        title = (
            f"{sample.stem}  {method} @ {layer}  energy inside {energy:.2f} vs area {area:.2f}"
            if has_landslide
            else f"{sample.stem}  {method} @ {layer}  (no landslide)"
        )
        save_overlay(png, x[i], masks[i], probs[i], cams[i], title, config.modalities, threshold)
        rows.append(
            {
                "stem": sample.stem,
                "landslide": has_landslide,
                "area_share": area,
                "energy_inside": None if math.isnan(energy) else energy,
                "predicted_share": float((probs[i] >= threshold).mean()),
                "cam_zero": bool(cams[i].max() <= 0.0),
                "png": png.name,
            }
        )
        labels.append(f"{sample.stem}\n{energy:.2f} / {area:.2f}" if has_landslide else sample.stem)

    scored = [r for r in rows if r["energy_inside"] is not None]
    mean_energy = float(np.mean([r["energy_inside"] for r in scored])) if scored else None
    mean_area = float(np.mean([r["area_share"] for r in scored])) if scored else None
    grid = save_grid(
        out / "grid.png",
        x,
        masks,
        probs,
        cams,
        labels,
        f"{config.model}: {method} @ {layer}, target {target} (row: energy inside / area)",
        config.modalities,
        threshold,
    )
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "model": config.model,
        "method": method,
        "layer": layer,
        "target": target,
        "threshold": threshold,
        "split": split,
        "n_tiles": len(rows),
        "n_tiles_with_landslide": sum(r["landslide"] for r in rows),
        "n_tiles_scored": len(scored),
        "n_zero_maps": sum(r["cam_zero"] for r in rows),
        "mean_energy_inside": mean_energy,
        "mean_area_share": mean_area,
        "tiles": rows,
        "files": {"grid": grid.name, "json": "energy.json", "csv": "energy.csv"},
        "out": str(out),
    }
    (out / "energy.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(out / "energy.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return summary


# --------------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m landslide_tf.gradcam",
        description="Class activation maps of a trained run on its test tiles, with the share "
        "of CAM energy inside the true landslide region.",
    )
    parser.add_argument("run_dir", help="run directory (config.json, best.keras, test.txt)")
    parser.add_argument("--data", default=None, help="dataset folder or zip (default: the run's)")
    parser.add_argument("--out", default=None, help="output folder (default RUN_DIR/gradcam_M)")
    parser.add_argument("--layer", default=None, help="layer to explain (default: per model)")
    parser.add_argument("--method", default="gradcam", choices=METHODS)
    parser.add_argument("--target", default="predicted", choices=TARGETS)
    parser.add_argument("--n", type=int, default=8, help="number of tiles (default 8)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--threshold", type=float, default=None, help="default: the run's")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per CAM batch")
    parser.add_argument(
        "--linear", action="store_true", help="explain the mean logit (ReplaceToLinear)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.n < 1:
        print("error: --n must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = explain_run(
            args.run_dir,
            data=args.data,
            out=args.out,
            layer=args.layer,
            method=args.method,
            target=args.target,
            n=args.n,
            split=args.split,
            threshold=args.threshold,
            batch_size=args.batch_size,
            linear=args.linear,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    energy, area = summary["mean_energy_inside"], summary["mean_area_share"]
    print(
        f"{summary['model']}: {summary['method']} @ {summary['layer']}, target "
        f"{summary['target']}, {summary['n_tiles']} tile(s)"
    )
    if energy is not None:
        print(
            f"CAM energy inside the true landslide: {energy:.3f} (mask area share {area:.3f}, "
            f"lift {energy / max(area, EPSILON):.2f}x) over {summary['n_tiles_scored']} tile(s)"
        )
    elif summary["n_tiles_with_landslide"] == 0:
        print("no tile with a landslide: no energy share")
    else:
        print("no energy share: every map of a landslide tile is zero")
    if summary["n_zero_maps"]:
        print(
            f"{summary['n_zero_maps']} all-zero map(s): no positive evidence at layer "
            f"{summary['layer']} (try another --layer or --method)"
        )
    print(f"wrote {summary['out']}/grid.png, energy.json, energy.csv and one PNG per tile")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
