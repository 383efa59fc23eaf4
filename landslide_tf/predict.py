"""Landslide masks from a trained model: single images and whole scenes.

One inference path for every kind of model. ``raw_probability`` is the graph that maps raw
inputs to probabilities at the input size: it traces ``landslide_tf.preprocessing``
(resize to the training size, normalization, stacking), runs the network and resizes the
probabilities back (bilinear). ``landslide_tf.export`` traces the very same function into
the SavedModel, so in-package and SavedModel predictions agree to float rounding (1e-5).

MODEL may be:
- a run directory (``config.json`` + ``best.keras``, as written by ``landslide_tf.train``);
- a ``.keras`` file: the preprocessing settings come from a ``config.json`` beside it, else
  the defaults (128 px, rgb+dem, per-tile min-max DEM) with a warning;
- a SavedModel directory written by ``landslide_tf.export`` (settings from its model card).

Usage::

    python -m landslide_tf.predict MODEL --image a.png [--dem a_dem.png] --out mask.png \\
        [--overlay] [--threshold T] [--probability prob.png]
    python -m landslide_tf.predict MODEL --scene image.tif [--dem dem.tif] --out prob.tif \\
        [--polygons out.geojson] [--window 256] [--overlap 0.25] [--batch 4]

Single images are resized to the training size as a whole (like a training tile); scenes are
cut into overlapping model-scale windows by ``landslide_tf.scene``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from landslide_tf import preprocessing
from landslide_tf.config import MODALITIES, num_channels
from landslide_tf.errors import DataError, UserError

logger = logging.getLogger(__name__)

#: Name of the model card inside a SavedModel's ``assets/`` folder.
MODEL_CARD_JSON = "model_card.json"
MODEL_CARD_MD = "MODEL_CARD.md"

#: Overlay colour (RGB) for landslide pixels.
OVERLAY_COLOR = (255, 0, 0)


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
    """

    image_size: int = 128
    modalities: str = "rgb+dem"
    dem_norm: str = "minmax"
    dem_stats: tuple[float, float] | None = None
    derived: tuple[str, ...] = ()
    threshold: float = 0.5
    nodata: float | None = None

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
            threshold=float(values.get("threshold", 0.5)),
            nodata=None if nodata is None else float(nodata),
        )


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
    with tf.control_dependencies(checks):
        x = preprocessing.preprocess_inputs(
            image if settings.uses_image else None,
            dem if settings.uses_dem else None,
            size=settings.image_size,
            modalities=settings.modalities,
            dem_norm=settings.dem_norm,
            dem_stats=settings.dem_stats,
            derived=settings.derived,
            nodata=settings.nodata,
        )  # (N, S, S, C)
    prob = tf.cast(model_fn(x), tf.float32)  # (N, S, S, 1)
    grid = tf.shape(image)[1:3] if settings.uses_image else tf.shape(dem)[1:3]
    # preprocessing.resize wants a static size; same op (bilinear, antialiased) on a tensor.
    back = tf.image.resize(prob, grid, method="bilinear", antialias=True)
    return back[..., 0]  # (N, H, W)


def input_signature(settings: InferenceSettings) -> list[tf.TensorSpec]:
    """The raw-input signature: ``image`` uint8 ``[N, H, W, 3]`` and/or ``dem`` float32."""
    specs = []
    if settings.uses_image:
        specs.append(tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"))
    if settings.uses_dem:
        specs.append(tf.TensorSpec([None, None, None], tf.float32, name="dem"))
    return specs


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` file of this package (safe mode, uncompiled) as a ``UserError``."""
    from landslide_tf.runs import load_model_file

    try:
        return load_model_file(path)
    except UserError:
        raise
    except Exception as exc:  # keras raises many types for unreadable files
        raise UserError(f"cannot load Keras model {path}: {exc}") from exc


class Predictor:
    """Probabilities from raw images for a Keras model or an exported SavedModel.

    Build with ``Predictor.load(path)`` (run dir, ``.keras`` file or SavedModel) or
    ``Predictor.from_keras(model, settings)``.
    """

    def __init__(self, fn: Any, settings: InferenceSettings, source: str) -> None:
        """Wrap a raw-input function.

        Args:
            fn: callable ``(image, dem) -> (N, H, W)`` probabilities (tensors, per settings).
            settings: preprocessing and threshold.
            source: description of where the model came from (for messages).
        """
        self._fn = fn
        self.settings = settings
        self.source = source

    @classmethod
    def from_keras(
        cls, model: Any, settings: InferenceSettings, source: str = "keras"
    ) -> Predictor:
        """Predictor over an in-memory Keras model, tracing ``raw_probability``."""

        def call(*args: tf.Tensor) -> tf.Tensor:
            inputs = dict(zip([s.name for s in input_signature(settings)], args, strict=True))
            return raw_probability(
                lambda x: model(x, training=False),
                inputs.get("image"),
                inputs.get("dem"),
                settings,
            )

        traced = tf.function(call, input_signature=input_signature(settings))

        def fn(image: Any, dem: Any) -> tf.Tensor:
            args = [
                a for a, used in ((image, settings.uses_image), (dem, settings.uses_dem)) if used
            ]
            return traced(*args)

        predictor = cls(fn, settings, source)
        predictor.model = model
        return predictor

    @classmethod
    def from_saved_model(cls, path: str | Path, nodata: float | None = None) -> Predictor:
        """Predictor over a SavedModel written by ``landslide_tf.export``."""
        path = Path(path)
        card_path = path / "assets" / MODEL_CARD_JSON
        if not card_path.is_file():
            raise UserError(f"{path} is a SavedModel without {card_path.relative_to(path)}")
        card = json.loads(card_path.read_text())
        settings = InferenceSettings.from_dict(card["settings"])
        if nodata is not None and settings.nodata is None:
            logger.warning(
                "the SavedModel was exported without a DEM nodata value; "
                "--dem-nodata %s is applied before calling it",
                nodata,
            )
        loaded = tf.saved_model.load(str(path))
        serving = loaded.signatures["serving_default"]

        def fn(image: Any, dem: Any) -> tf.Tensor:
            kwargs = {}
            if settings.uses_image:
                kwargs["image"] = tf.convert_to_tensor(image, tf.uint8)
            if settings.uses_dem:
                dem = tf.convert_to_tensor(dem, tf.float32)
                if nodata is not None and settings.nodata is None:
                    dem = tf.where(tf.equal(dem, nodata), tf.fill(tf.shape(dem), np.nan), dem)
                kwargs["dem"] = dem
            return serving(**kwargs)["probability"]

        predictor = cls(fn, settings, f"SavedModel {path}")
        predictor.loaded = loaded
        predictor.card = card
        return predictor

    @classmethod
    def load(cls, path: str | Path, nodata: float | None = None) -> Predictor:
        """Load a run dir, a ``.keras`` file or a SavedModel directory.

        Args:
            path: the model location.
            nodata: DEM nodata value (overrides any stored one; NaN is always nodata).
        """
        path = Path(path)
        if not path.exists():
            raise UserError(f"model not found: {path}")
        if path.is_dir() and (path / "saved_model.pb").is_file():
            return cls.from_saved_model(path, nodata=nodata)
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise UserError(
                    f"{path} is neither a run directory (config.json + best.keras) "
                    "nor a SavedModel (saved_model.pb)"
                )
            config, model = _load_run(path)
            settings = InferenceSettings.from_dict(config, run_dir=path)
            source = f"run {path}"
        elif path.suffix == ".keras":
            model = load_keras_model(path)
            beside = path.parent / "config.json"
            if beside.is_file():
                settings = InferenceSettings.from_dict(json.loads(beside.read_text()), path.parent)
            else:
                settings = InferenceSettings()
                logger.warning(
                    "no config.json beside %s: assuming the defaults (%d px, %s, %s DEM)",
                    path,
                    settings.image_size,
                    settings.modalities,
                    settings.dem_norm,
                )
            source = f"model {path}"
        else:
            raise UserError(f"{path}: expected a run directory, a .keras file or a SavedModel")
        if nodata is not None:
            settings = dataclasses.replace(settings, nodata=float(nodata))
        expected = settings.channels
        got = model.input_shape[-1]
        if got is not None and got != expected:
            raise UserError(
                f"{path}: the model takes {got} channels but the settings "
                f"({settings.modalities}, derived={list(settings.derived)}) give {expected}"
            )
        return cls.from_keras(model, settings, source)

    @property
    def threshold(self) -> float:
        """The decision threshold of the model."""
        return self.settings.threshold

    def predict_batch(self, images: np.ndarray | None, dems: np.ndarray | None) -> np.ndarray:
        """Probabilities for a batch.

        Args:
            images: uint8 ``(N, H, W, 3)`` (None for DEM-only models).
            dems: float32 ``(N, H', W')`` (None for RGB-only models).

        Returns:
            float32 ``(N, H, W)``.
        """
        self._check(images, dems, batched=True)
        image = None if images is None else tf.convert_to_tensor(images, tf.uint8)
        dem = None if dems is None else tf.convert_to_tensor(dems, tf.float32)
        return np.asarray(self._fn(image, dem), dtype=np.float32)

    def predict(self, image: np.ndarray | None, dem: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``(H, W)`` for one uint8 image ``(H, W, 3)`` and DEM ``(H', W')``."""
        self._check(image, dem, batched=False)
        images = None if image is None else np.asarray(image)[np.newaxis]
        dems = None if dem is None else np.asarray(dem, np.float32)[np.newaxis]
        return self.predict_batch(images, dems)[0]

    def _check(self, image: Any, dem: Any, batched: bool) -> None:
        """Validate presence, dtype and channels before calling the graph."""
        s = self.settings
        rank = 4 if batched else 3
        if s.uses_image:
            if image is None:
                raise UserError(f"this model ({s.modalities}) needs an RGB image")
            image = np.asarray(image)
            if image.ndim != rank or image.shape[-1] != 3:
                raise DataError(f"image must be RGB (..., H, W, 3), got shape {image.shape}")
            if image.dtype != np.uint8:
                raise DataError(f"image must be uint8 RGB, got {image.dtype}")
        if s.uses_dem:
            if dem is None:
                raise UserError(f"this model ({s.modalities}) needs a DEM (--dem)")
            if np.asarray(dem).ndim != rank - 1:
                raise DataError(f"DEM must be (..., H, W), got shape {np.asarray(dem).shape}")
        if s.uses_image and s.uses_dem:
            check_extents(np.asarray(image).shape[-3:-1], np.asarray(dem).shape[-2:])


def check_extents(image_hw: Sequence[int], dem_hw: Sequence[int], tolerance: float = 0.05) -> None:
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


def _load_run(run_dir: Path) -> tuple[dict[str, Any], Any]:
    """``(config.json dict, model)`` of a run dir via ``load_run``."""
    from landslide_tf.runs import load_run

    config = json.loads((run_dir / "config.json").read_text())
    try:
        _, model = load_run(run_dir)
    except UserError:
        raise
    except Exception as exc:  # keras raises many types for unreadable files
        raise UserError(f"cannot load run {run_dir}: {exc}") from exc
    return config, model


# ----------------------------------------------------------------------------- images


def threshold_mask(prob: np.ndarray, threshold: float) -> np.ndarray:
    """``prob >= threshold`` as uint8 in {0, 1}."""
    return (np.asarray(prob) >= threshold).astype(np.uint8)


def make_overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8 with landslide pixels tinted red and outlined.

    Args:
        image: uint8 RGB ``(H, W, 3)`` (a gray DEM rendering works too).
        mask: ``(H, W)`` in {0, 1}.
        alpha: opacity of the tint.
    """
    import cv2

    out = image.astype(np.float32)
    color = np.array(OVERLAY_COLOR, np.float32)
    sel = mask.astype(bool)
    out[sel] = (1 - alpha) * out[sel] + alpha * color
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, OVERLAY_COLOR, 1)
    return out


def dem_preview(dem: np.ndarray) -> np.ndarray:
    """A gray uint8 RGB rendering of a DEM (min..max), for overlays of DEM-only models."""
    dem = np.asarray(dem, np.float32)
    finite = np.isfinite(dem)
    lo, hi = (dem[finite].min(), dem[finite].max()) if finite.any() else (0.0, 1.0)
    gray = np.where(finite, (dem - lo) / max(hi - lo, 1e-6), 0.0)
    return np.repeat((gray * 255).round().astype(np.uint8)[..., np.newaxis], 3, axis=-1)


def _write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = array[..., ::-1]  # RGB -> BGR for OpenCV
    if not cv2.imwrite(str(path), np.ascontiguousarray(array)):
        raise UserError(f"cannot write {path}")


def overlay_path(out: str | Path) -> Path:
    """Where ``--overlay`` writes: ``mask.png`` -> ``mask_overlay.png``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_overlay.png")


def predict_image(
    predictor: Predictor,
    image: str | Path | None,
    dem: str | Path | None,
    out: str | Path,
    *,
    overlay: bool = False,
    threshold: float | None = None,
    probability: str | Path | None = None,
) -> dict[str, Any]:
    """Predict one tile-like PNG and write the mask (0/255 PNG) and optional extras.

    Args:
        predictor: the model.
        image: RGB PNG (needed unless the model is DEM-only).
        dem: DEM PNG (needed unless the model is RGB-only).
        out: mask PNG to write (landslide = 255).
        overlay: also write ``<out stem>_overlay.png``.
        threshold: decision threshold (default: the model's).
        probability: also write the probability as an 8-bit PNG (0..255).

    Returns:
        Summary dict: ``out``, ``overlay``, ``probability``, ``threshold``,
        ``landslide_pixels``, ``landslide_fraction``, ``shape``.
    """
    from landslide_tf.data import read_dem, read_rgb

    settings = predictor.settings
    rgb = read_rgb(image) if settings.uses_image and image is not None else None
    elevation = read_dem(dem) if settings.uses_dem and dem is not None else None
    if settings.uses_image and rgb is None:
        raise UserError(f"this model ({settings.modalities}) needs --image")
    if settings.uses_dem and elevation is None:
        raise UserError(f"this model ({settings.modalities}) needs --dem")
    if image is not None and not settings.uses_image:
        logger.warning("the model is DEM-only: --image is used for the overlay only")
    if dem is not None and not settings.uses_dem:
        logger.warning("the model is RGB-only: --dem is ignored")
    prob = predictor.predict(rgb, elevation)  # (H, W)
    threshold = predictor.threshold if threshold is None else float(threshold)
    mask = threshold_mask(prob, threshold)
    out = Path(out)
    _write_png(out, mask * 255)
    result: dict[str, Any] = {
        "out": str(out),
        "shape": list(prob.shape),
        "threshold": threshold,
        "landslide_pixels": int(mask.sum()),
        "landslide_fraction": float(mask.mean()),
        "overlay": None,
        "probability": None,
    }
    if probability is not None:
        _write_png(Path(probability), np.round(prob * 255).astype(np.uint8))
        result["probability"] = str(probability)
    if overlay:
        if rgb is None and image is not None:
            base = read_rgb(image)
        else:
            base = rgb if rgb is not None else dem_preview(elevation)
        if base.shape[:2] != mask.shape:
            import cv2

            base = cv2.resize(base, mask.shape[::-1], interpolation=cv2.INTER_AREA)
        path = overlay_path(out)
        _write_png(path, make_overlay(base, mask))
        result["overlay"] = str(path)
    return result


# ----------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m landslide_tf.predict`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m landslide_tf.predict",
        description="Landslide masks for a tile (--image) or a whole scene (--scene).",
    )
    parser.add_argument("model", help="run directory, .keras file or SavedModel directory")
    source = parser.add_mutually_exclusive_group(required=False)
    source.add_argument("--image", help="RGB tile (PNG), resized to the training size whole")
    source.add_argument("--scene", help="whole scene (GeoTIFF, or a small PNG): sliding windows")
    parser.add_argument("--dem", help="DEM (PNG for --image; GeoTIFF or PNG for --scene)")
    parser.add_argument("--out", required=True, help="mask PNG (--image) or probability map")
    parser.add_argument("--overlay", action="store_true", help="also write <out>_overlay.png")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: model's)")
    parser.add_argument("--probability", help="--image: also write probabilities as 8-bit PNG")
    parser.add_argument("--dem-nodata", type=float, help="DEM nodata value (NaN always is)")
    parser.add_argument("--polygons", help="--scene: write landslide polygons (GeoJSON)")
    parser.add_argument("--window", type=int, default=None, help="--scene: window px (256)")
    parser.add_argument("--overlap", type=float, default=None, help="--scene: overlap (0.25)")
    parser.add_argument("--batch", type=int, default=4, help="--scene: windows per batch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.image is None and args.scene is None:
            if args.dem is None:
                raise UserError("give --image (a tile), --scene (a whole scene) or --dem")
        predictor = Predictor.load(args.model, nodata=args.dem_nodata)
        if args.scene is not None:
            from landslide_tf import scene

            kwargs = {k: v for k, v in (("window", args.window), ("overlap", args.overlap))}
            result = scene.predict_scene(
                predictor,
                args.scene,
                args.out,
                dem=args.dem,
                polygons=args.polygons,
                batch=args.batch,
                threshold=args.threshold,
                dem_nodata=args.dem_nodata,
                progress=not args.quiet,
                **{k: v for k, v in kwargs.items() if v is not None},
            )
            print(result.format())
            return 0
        for option in ("polygons", "window", "overlap"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option} applies to --scene only")
        result = predict_image(
            predictor,
            args.image,
            args.dem,
            args.out,
            overlay=args.overlay,
            threshold=args.threshold,
            probability=args.probability,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {result['out']} ({result['shape'][0]}x{result['shape'][1]} px, "
        f"{result['landslide_pixels']} landslide px = {100 * result['landslide_fraction']:.1f} %, "
        f"threshold {result['threshold']:.3f})"
    )
    for key in ("overlay", "probability"):
        if result[key]:
            print(f"wrote {result[key]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
