"""``Predictor``: probabilities from raw images for a run dir, a ``.keras`` file or a SavedModel.

MODEL may be:
- a run directory (``config.json`` + ``best.keras``, as written by ``landslide_tf.training.train``);
- a ``.keras`` file: the preprocessing settings come from a ``config.json`` beside it, else
  the defaults (128 px, rgb+dem, per-tile min-max DEM) with a warning;
- a SavedModel directory written by ``landslide_tf.inference.export`` (settings from its model card).

Keras models run ``landslide_tf.inference.core.raw_probability``, the graph the SavedModel holds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landslide_tf.errors import DataError, UserError
from landslide_tf.inference.core import (
    MODEL_CARD_JSON,
    InferenceSettings,
    check_extents,
    input_signature,
    raw_probability,
)

if TYPE_CHECKING:
    import tensorflow as tf

# The name Predictor logged under before the split (its messages, e.g. the missing
# config.json warning, keep their logger name for users who filter on it).
logger = logging.getLogger("landslide_tf.inference.predict")


def load_keras_model(path: str | Path) -> Any:
    """Load a ``.keras`` file of this package (safe mode, uncompiled) as a ``UserError``."""
    from landslide_tf.training.runs import load_model_file

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
        import tensorflow as tf

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
        """Predictor over a SavedModel written by ``landslide_tf.inference.export``."""
        import tensorflow as tf

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
    def load(
        cls,
        path: str | Path,
        nodata: float | None = None,
        tta: bool | None = None,
        precision: str | None = None,
    ) -> Predictor:
        """Load a run dir, a ``.keras`` file or a SavedModel directory.

        Args:
            path: the model location.
            nodata: DEM nodata value (overrides any stored one; NaN is always nodata).
            tta: flip averaging on or off (default: the run's ``tta``); a SavedModel keeps
                what it was exported with.
            precision: ``auto``/``float32``/``bfloat16``/``float16`` to compute a Keras model
                in; ``None`` keeps the precision it was trained in (recorded in the file).
                A SavedModel keeps the precision it was exported in.
        """
        path = Path(path)
        if not path.exists():
            raise UserError(f"model not found: {path}")
        from landslide_tf.inference.band_inference import BandPredictor, is_band_model

        if is_band_model(path):  # issue 13: multi-band models take float bands, no DEM
            return BandPredictor.load(path)
        if path.is_dir() and (path / "saved_model.pb").is_file():
            predictor = cls.from_saved_model(path, nodata=nodata)
            if tta is not None and bool(tta) != predictor.settings.tta:
                raise UserError(
                    f"{path} was exported with flip averaging {'on' if not tta else 'off'}: "
                    f"export the run again with {'--tta' if tta else '--no-tta'}"
                )
            return predictor
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
                from landslide_tf.training.runs import read_config_json

                settings = InferenceSettings.from_dict(read_config_json(beside), path.parent)
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
        if tta is not None:
            settings = dataclasses.replace(settings, tta=bool(tta))
        expected = settings.channels
        got = model.input_shape[-1]
        if got is not None and got != expected:
            raise UserError(
                f"{path}: the model takes {got} channels but the settings "
                f"({settings.modalities}, derived={list(settings.derived)}) give {expected}"
            )
        if precision is not None:  # issue 14
            from landslide_tf.training.precision import convert_model, resolve_precision

            model = convert_model(model, resolve_precision(precision)[0])
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
        import tensorflow as tf

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
        primary = image if s.uses_image else dem
        if batched and primary is not None and len(primary) == 0:
            raise DataError("empty batch: give at least one image or DEM")
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


def _load_run(run_dir: Path) -> tuple[dict[str, Any], Any]:
    """``(config.json dict, model)`` of a run dir via ``load_run``."""
    from landslide_tf.training.runs import load_run, read_config_json

    config = read_config_json(run_dir / "config.json")
    try:
        _, model = load_run(run_dir)
    except UserError:
        raise
    except Exception as exc:  # keras raises many types for unreadable files
        raise UserError(f"cannot load run {run_dir}: {exc}") from exc
    return config, model
