"""The inference core: training preprocessing settings and the raw-input graph.

One inference path for every kind of model. ``raw_probability`` is the graph that maps raw
inputs to probabilities at the input size: it traces ``landslide_tf.data.preprocess``
(resize to the training size, normalization, stacking), runs the network and resizes the
probabilities back (bilinear). ``landslide_tf.inference.export`` traces the very same function into
the SavedModel, so in-package and SavedModel predictions agree to float rounding (1e-5).

``landslide_tf.inference.predictor.Predictor`` wraps it for a loaded model; ``landslide_tf.inference.predict``
(tiles, CLI) and ``landslide_tf.inference.scene`` (whole scenes) use that.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landslide_tf.data.spec import InputSpec, bijie_spec
from landslide_tf.errors import DataError, UserError
from landslide_tf.inference.tta import apply_model
from landslide_tf.training.config import MODALITIES, num_channels

if TYPE_CHECKING:
    import tensorflow as tf

#: The run's tuned threshold file (``landslide_tf.training.runs.THRESHOLD_FILE``; no keras import here).
THRESHOLD_FILE = "threshold.json"

#: Name of the model card inside a SavedModel's ``assets/`` folder.
MODEL_CARD_JSON = "model_card.json"
MODEL_CARD_MD = "MODEL_CARD.md"


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """The preprocessing a model was trained with, plus the decision threshold.

    Attributes:
        image_size: training tile size; every input (tile or scene window) is resized to it.
        modalities: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``.
        dem_norm: ``"minmax"`` (per tile) or ``"dataset"`` (training-split mean and std).
        dem_stats: ``(mean, std)`` of the raw training DEMs, for ``dem_norm="dataset"``.
        derived: extra DEM channels (slope, aspect, hillshade) after the DEM.
        threshold: probability at or above which a pixel is a landslide.
        nodata: DEM value treated as missing (NaN always is).
        tta: average the probabilities over the four flips of each input
            (``landslide_tf.inference.tta``; four forward passes).
    """

    image_size: int = 128
    modalities: str = "rgb+dem"
    dem_norm: str = "minmax"
    dem_stats: tuple[float, float] | None = None
    derived: tuple[str, ...] = ()
    threshold: float = 0.5
    nodata: float | None = None
    tta: bool = False

    def __post_init__(self) -> None:
        if self.modalities not in MODALITIES:
            raise UserError(f"unknown modalities {self.modalities!r}; expected one of {MODALITIES}")
        if self.dem_norm == "dataset" and self.uses_dem and self.dem_stats is None:
            raise UserError(
                "dem_norm='dataset' needs the training DEM mean and std "
                "(config.json key 'dem_stats': [mean, std])"
            )

    @property
    def uses_image(self) -> bool:
        """Whether the model takes the RGB image."""
        return self.modalities in ("rgb+dem", "rgb")

    @property
    def uses_dem(self) -> bool:
        """Whether the model takes the DEM."""
        return self.modalities in ("rgb+dem", "dem")

    @property
    def channels(self) -> int:
        """Channel count of the normalized network input."""
        return num_channels(self.modalities, self.derived)

    @property
    def spec(self) -> InputSpec:
        """The input spec these settings describe."""
        return bijie_spec(
            self.image_size,
            self.modalities,
            self.derived,
            self.dem_norm,
            self.dem_stats,
            self.nodata,
        )

    @property
    def channel_names(self) -> list[str]:
        """Channel names in input order, e.g. ``["red", "green", "blue", "dem"]``."""
        names = ["red", "green", "blue"] if self.uses_image else []
        if self.uses_dem:
            names += ["dem", *self.derived]
        return names

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``from_dict`` reads it back)."""
        values = dataclasses.asdict(self)
        values["dem_stats"] = list(self.dem_stats) if self.dem_stats is not None else None
        values["derived"] = list(self.derived)
        return values

    @classmethod
    def from_dict(
        cls, values: dict[str, Any], run_dir: str | Path | None = None
    ) -> InferenceSettings:
        """Settings from a ``config.json`` dict (or a model card's ``settings``).

        Reads keys defensively: unknown keys are ignored, missing ones take the defaults.
        The DEM statistics for ``dem_norm="dataset"`` are looked up as ``dem_stats``
        (``[mean, std]``), ``dem_mean`` + ``dem_std``, or ``dem_stats.json`` in ``run_dir``.
        """
        stats = _find_dem_stats(values, run_dir)
        nodata = values.get("nodata", values.get("dem_nodata"))
        return cls(
            image_size=int(values.get("image_size", 128)),
            modalities=str(values.get("modalities", "rgb+dem")),
            dem_norm=str(values.get("dem_norm", "minmax")),
            dem_stats=stats,
            derived=tuple(values.get("derived") or ()),
            threshold=_tuned_or(values, run_dir),
            nodata=None if nodata is None else float(nodata),
            tta=bool(values.get("tta", False)),
        )


def _tuned_or(values: dict[str, Any], run_dir: str | Path | None) -> float:
    """The run's validation-tuned threshold (``threshold.json``) if any, else ``threshold``."""
    path = Path(run_dir) / THRESHOLD_FILE if run_dir is not None else None
    if path is not None and path.is_file():
        from landslide_tf.training.runs import tuned_threshold

        return float(tuned_threshold(run_dir))
    return float(values.get("threshold", 0.5))


def _find_dem_stats(
    values: dict[str, Any], run_dir: str | Path | None
) -> tuple[float, float] | None:
    """``(mean, std)`` from the usual config keys or a ``dem_stats.json`` beside it."""
    candidates: list[Any] = [values.get("dem_stats"), values.get("dem_statistics")]
    if "dem_mean" in values and "dem_std" in values:
        candidates.append([values["dem_mean"], values["dem_std"]])
    if run_dir is not None and (Path(run_dir) / "dem_stats.json").is_file():
        candidates.append(json.loads((Path(run_dir) / "dem_stats.json").read_text()))
    for stats in candidates:
        if isinstance(stats, dict):
            stats = [stats.get("mean"), stats.get("std")]
        if isinstance(stats, list | tuple) and len(stats) == 2 and None not in stats:
            return (float(stats[0]), float(stats[1]))
    return None


def raw_probability(
    model_fn: Any,
    image: tf.Tensor | None,
    dem: tf.Tensor | None,
    settings: InferenceSettings,
) -> tf.Tensor:
    """Raw inputs to landslide probabilities at the input size (TF ops; traced by export).

    Args:
        model_fn: callable mapping the normalized ``(N, S, S, C)`` input to ``(N, S, S, 1)``.
        image: uint8 RGB ``(N, H, W, 3)``, or None for DEM-only models.
        dem: float32 elevation ``(N, H', W')`` on any grid (resampled onto the training
            size), or None for RGB-only models.
        settings: the training preprocessing.

    Returns:
        float32 probabilities ``(N, H, W)`` on the grid of ``image`` (of ``dem`` for DEM-only
        models).
    """
    import tensorflow as tf

    from landslide_tf.data.preprocess import preprocess

    checks = []
    if settings.uses_image:
        checks += [
            tf.debugging.assert_rank(image, 4, message="image must be (batch, height, width, 3)"),
            tf.debugging.assert_equal(
                tf.shape(image)[-1], 3, message="image must have 3 channels (RGB)"
            ),
            tf.debugging.assert_positive(
                tf.shape(image)[1:3], message="image height and width must be > 0"
            ),
        ]
    if settings.uses_dem:
        checks += [
            tf.debugging.assert_rank(dem, 3, message="dem must be (batch, height, width)"),
            tf.debugging.assert_positive(
                tf.shape(dem)[1:3], message="dem height and width must be > 0"
            ),
        ]
    if settings.uses_image and settings.uses_dem:
        checks.append(
            tf.debugging.assert_equal(
                tf.shape(image)[0], tf.shape(dem)[0], message="image and dem batch sizes differ"
            )
        )
        # check_extents in-graph: the DEM's aspect ratio must match the image's
        ih, iw = (tf.cast(tf.shape(image)[i], tf.float32) for i in (1, 2))
        dh, dw = (tf.cast(tf.shape(dem)[i], tf.float32) for i in (1, 2))
        checks.append(
            tf.debugging.assert_less_equal(
                tf.abs(dw - dh * iw / ih),
                tf.maximum(1.0, EXTENT_TOLERANCE * dw),
                message="image and dem have different aspect ratios: they cannot cover the "
                "same extent",
            )
        )
    primary = image if settings.uses_image else dem
    checks.append(
        tf.debugging.assert_positive(
            tf.shape(primary)[0], message="empty batch: give at least one image or dem"
        )
    )
    with tf.control_dependencies(checks):
        x = preprocess(
            image if settings.uses_image else None,
            dem if settings.uses_dem else None,
            settings.spec,
        )  # (N, S, S, C)
    prob = apply_model(model_fn, x, settings.tta)  # (N, S, S, 1) float32
    grid = tf.shape(image)[1:3] if settings.uses_image else tf.shape(dem)[1:3]
    # preprocessing.resize wants a static size; same op (bilinear, antialiased) on a tensor.
    back = tf.image.resize(prob, grid, method="bilinear", antialias=True)
    return back[..., 0]  # (N, H, W)


def input_signature(settings: InferenceSettings) -> list[tf.TensorSpec]:
    """The raw-input signature: ``image`` uint8 ``[N, H, W, 3]`` and/or ``dem`` float32."""
    import tensorflow as tf

    specs = []
    if settings.uses_image:
        specs.append(tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"))
    if settings.uses_dem:
        specs.append(tf.TensorSpec([None, None, None], tf.float32, name="dem"))
    return specs


#: Relative tolerance of the image/DEM aspect-ratio check (at least one DEM pixel).
EXTENT_TOLERANCE = 0.05


def check_extents(
    image_hw: Sequence[int], dem_hw: Sequence[int], tolerance: float = EXTENT_TOLERANCE
) -> None:
    """Reject an image and a DEM whose grids cannot cover the same extent.

    Without georeferencing the DEM is assumed to span the image; it may be coarser or finer,
    but its aspect ratio must match within one DEM pixel (or ``tolerance``, relative).

    Raises:
        DataError: with both sizes.
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    dh, dw = int(dem_hw[0]), int(dem_hw[1])
    expected = dh * w / h
    if abs(dw - expected) > max(1.0, tolerance * dw):
        raise DataError(
            f"image ({h}x{w} px) and DEM ({dh}x{dw} px) have different aspect ratios: "
            "they cannot cover the same extent"
        )
