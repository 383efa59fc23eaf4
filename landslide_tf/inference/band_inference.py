"""Inference for multi-band runs (``l4s``, ``folder``): settings, raw-input graph, predictor.

The multi-band twin of ``landslide_tf.inference.core`` + ``landslide_tf.inference.predictor``. A multi-band
model takes ``image`` float32 ``[N, H, W, bands]`` in the user's units (the bands of
``settings.bands``, in that order; NaN = nodata). ``band_probability`` normalises each band
with the training statistics, resizes to the training size, runs the network and resizes the
probabilities back: the graph ``landslide_tf.inference.band_export`` writes into the SavedModel, so the
export and the in-package prediction agree to float rounding.

``Predictor.load`` hands multi-band run dirs, ``.keras`` files and SavedModels to
``BandPredictor.load``; Bijie models keep their uint8 RGB + DEM path unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from landslide_tf.data.preprocess import preprocess
from landslide_tf.data.spec import multiband_spec
from landslide_tf.errors import DataError, UserError
from landslide_tf.inference.core import MODEL_CARD_JSON

MULTIBAND_FORMATS = ("l4s", "folder")


def is_band_config(values: dict[str, Any] | None) -> bool:
    """Whether a ``config.json`` dict (or a model card's settings) is a multi-band run."""
    return bool(values) and values.get("data_format") in MULTIBAND_FORMATS


@dataclasses.dataclass(frozen=True)
class BandSettings:
    """The preprocessing of a multi-band run, plus the decision threshold.

    Attributes:
        image_size: training size; inputs are resized to it and the output back.
        bands: the band names the model takes, in order.
        band_norm: ``{"method": "standard" | "percentile", "params": [[a, b], ...]}``.
        threshold: probability at or above which a pixel is a landslide.
        data_format: ``l4s`` or ``folder``.
        available_bands: every band of the training format (to read scenes by position).
        band_indices: 0-based positions of ``bands`` in ``available_bands``.
        native_size: typical side (px) of the training tiles: the default scene window.
    """

    image_size: int
    bands: tuple[str, ...]
    band_norm: dict[str, Any]
    threshold: float = 0.5
    data_format: str = "l4s"
    available_bands: tuple[str, ...] = ()
    band_indices: tuple[int, ...] = ()
    native_size: int | None = None

    # Attributes the Bijie code paths (scene windows, model card) look at.
    modalities = "bands"
    uses_image = True
    uses_dem = False
    nodata = None
    dem_norm = None
    dem_stats = None
    derived = ()

    @property
    def channels(self) -> int:
        """Number of input bands."""
        return len(self.bands)

    @property
    def channel_names(self) -> list[str]:
        """Band names in input order."""
        return list(self.bands)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``from_dict`` reads it back (keys as in ``config.json``)."""
        return {
            "image_size": self.image_size,
            "bands": list(self.bands),
            "band_stats": self.band_norm,
            "threshold": self.threshold,
            "data_format": self.data_format,
            "available_bands": list(self.available_bands),
            "band_indices": list(self.band_indices),
            "native_size": self.native_size,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BandSettings:
        """Settings from a multi-band run's ``config.json`` or a model card's ``settings``."""
        norm = values.get("band_stats")
        bands = values.get("bands")
        if not bands or not isinstance(norm, dict) or len(norm.get("params", [])) != len(bands):
            raise UserError(
                "the run's config.json has no band list and statistics (keys 'bands', "
                "'band_stats'): retrain it with this version"
            )
        native = values.get("native_size")
        return cls(
            image_size=int(values.get("image_size", 128)),
            bands=tuple(bands),
            band_norm={"method": norm["method"], "params": [list(p) for p in norm["params"]]},
            threshold=float(values.get("threshold", 0.5)),
            data_format=str(values.get("data_format")),
            available_bands=tuple(values.get("available_bands") or bands),
            band_indices=tuple(values.get("band_indices") or range(len(bands))),
            native_size=None if native is None else int(native),
        )


def band_probability(model_fn: Any, image: tf.Tensor, settings: BandSettings) -> tf.Tensor:
    """User-unit bands ``(N, H, W, C)`` -> probabilities ``(N, H, W)`` (TF ops; exported)."""
    checks = [
        tf.debugging.assert_rank(image, 4, message="image must be (batch, height, width, bands)"),
        tf.debugging.assert_equal(
            tf.shape(image)[-1],
            settings.channels,
            message=f"image must have {settings.channels} bands ({', '.join(settings.bands)})",
        ),
        tf.debugging.assert_positive(
            tf.shape(image)[1:3], message="image height and width must be > 0"
        ),
    ]
    with tf.control_dependencies(checks):
        norm = settings.band_norm
        names = [str(i + 1) for i in range(len(norm["params"]))]
        spec = multiband_spec(names, norm["method"], norm["params"], size=settings.image_size)
        x = preprocess(image, None, spec)  # (N, S, S, C)
    prob = tf.cast(model_fn(x), tf.float32)  # (N, S, S, 1)
    back = tf.image.resize(prob, tf.shape(image)[1:3], method="bilinear", antialias=True)
    return back[..., 0]


def band_signature(settings: BandSettings) -> list[tf.TensorSpec]:
    """``image`` float32 ``[N, H, W, bands]``."""
    return [tf.TensorSpec([None, None, None, settings.channels], tf.float32, name="image")]


class BandPredictor:
    """Probabilities from user-unit bands for a multi-band Keras model or SavedModel."""

    multiband = True

    def __init__(self, fn: Any, settings: BandSettings, source: str) -> None:
        self._fn = fn
        self.settings = settings
        self.source = source

    @classmethod
    def from_keras(cls, model: Any, settings: BandSettings, source: str = "keras") -> Any:
        """Predictor over an in-memory Keras model, tracing ``band_probability``."""
        got = model.input_shape[-1]
        if got is not None and got != settings.channels:
            raise UserError(
                f"{source}: the model takes {got} channels but the run's bands "
                f"({', '.join(settings.bands)}) are {settings.channels}"
            )
        traced = tf.function(
            lambda image: band_probability(lambda x: model(x, training=False), image, settings),
            input_signature=band_signature(settings),
        )
        predictor = cls(traced, settings, source)
        predictor.model = model
        return predictor

    @classmethod
    def from_saved_model(cls, path: str | Path) -> BandPredictor:
        """Predictor over a multi-band SavedModel written by ``landslide_tf.inference.export``."""
        path = Path(path)
        card = json.loads((path / "assets" / MODEL_CARD_JSON).read_text())
        settings = BandSettings.from_dict(card["settings"])
        serving = tf.saved_model.load(str(path)).signatures["serving_default"]
        predictor = cls(lambda image: serving(image=image)["probability"], settings, str(path))
        predictor.card = card
        return predictor

    @classmethod
    def load(cls, path: str | Path) -> BandPredictor:
        """A multi-band run dir, ``.keras`` file (``config.json`` beside it) or SavedModel."""
        from landslide_tf.inference.predictor import load_keras_model

        path = Path(path)
        if path.is_dir() and (path / "saved_model.pb").is_file():
            return cls.from_saved_model(path)
        from landslide_tf.training.runs import tuned_threshold

        run_dir = path if path.is_dir() else path.parent
        settings = BandSettings.from_dict(json.loads((run_dir / "config.json").read_text()))
        tuned = tuned_threshold(run_dir)  # the validation-tuned threshold travels too
        if tuned is not None:
            settings = dataclasses.replace(settings, threshold=tuned)
        model = load_keras_model(path / "best.keras" if path.is_dir() else path)
        return cls.from_keras(model, settings, f"run {run_dir}")

    @property
    def threshold(self) -> float:
        """The decision threshold of the model."""
        return self.settings.threshold

    def predict_batch(self, images: np.ndarray, dems: Any = None) -> np.ndarray:
        """Probabilities ``(N, H, W)`` for float bands ``(N, H, W, C)`` (``dems`` unused)."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or images.shape[-1] != self.settings.channels:
            raise DataError(
                f"image must be (N, H, W, {self.settings.channels}) with the bands "
                f"{', '.join(self.settings.bands)}; got shape {images.shape}"
            )
        return np.asarray(self._fn(tf.convert_to_tensor(images)), np.float32)

    def predict(self, image: np.ndarray, dem: Any = None) -> np.ndarray:
        """Probabilities ``(H, W)`` for one tile ``(H, W, C)``."""
        return self.predict_batch(np.asarray(image, np.float32)[np.newaxis])[0]


def is_band_model(path: str | Path) -> bool:
    """Whether a run dir, ``.keras`` file or SavedModel holds a multi-band model."""
    path = Path(path)
    card = path / "assets" / MODEL_CARD_JSON
    if path.is_dir() and card.is_file():
        try:
            return is_band_config(json.loads(card.read_text()).get("settings"))
        except (json.JSONDecodeError, AttributeError):
            return False
    config = (path if path.is_dir() else path.parent) / "config.json"
    if not config.is_file():
        return False
    try:
        return is_band_config(json.loads(config.read_text()))
    except json.JSONDecodeError:
        return False
