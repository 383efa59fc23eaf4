"""``Predictor``: probabilities from raw inputs for a run dir, a ``.keras`` file or a SavedModel.

One inference path for every input the run's ``InputSpec`` describes (Bijie uint8 RGB + DEM,
RGB-only, DEM-only, float32 multi-band). ``raw_probability`` is the graph that maps raw
inputs to probabilities at the input size: it traces ``landslide_tf.data.preprocess``
(resize to the training size, normalisation, stacking), runs the network (flip-averaged when
the run's ``tta`` is on) and resizes the probabilities back (bilinear).
``landslide_tf.inference.serving`` traces the very same function into the SavedModel, so
in-package and SavedModel predictions agree to float rounding (1e-5).

MODEL may be:

- a run directory (``config.json`` + ``best.keras``, as written by ``landslide_tf.training.train``);
- a ``.keras`` file: the settings come from a ``config.json`` beside it, else the defaults
  (128 px, rgb+dem, per-tile min-max DEM) with a warning;
- a SavedModel directory written by ``landslide_tf.inference.export`` (settings from its model
  card).

Keras models compute in ``INFERENCE_PRECISION`` (float32) unless ``precision`` asks for
another: ``load_inference_model`` is the one function that loads a run's model for inference.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from landslide_tf.errors import DataError, UserError
from landslide_tf.inference.settings import (
    EXTENT_TOLERANCE,
    INFERENCE_PRECISION,
    MODEL_CARD_JSON,
    InferenceSettings,
    check_extents,
)
from landslide_tf.inference.tta import apply_model, check_transforms

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- loading


def load_inference_model(path: str | Path, precision: str | None = INFERENCE_PRECISION) -> Any:
    """A run's model (run dir: its ``best.keras``; or a ``.keras`` file) for inference.

    Args:
        path: a run directory or a ``.keras`` file of this package.
        precision: ``float32`` (the default: every inference path gives the same answer),
            ``bfloat16``, ``float16`` or ``auto`` (this machine's fast choice); ``None``
            keeps the precision the model was trained in (recorded in the file).

    Returns:
        The uncompiled Keras model, computing in ``precision``.

    Raises:
        UserError: the file is missing or unreadable, or the precision unknown.
    """
    from landslide_tf.training.runs import load_model_file

    path = Path(path)
    file = path / "best.keras" if path.is_dir() else path
    try:
        model = load_model_file(file)
    except UserError:
        raise
    except Exception as exc:  # keras raises many types for unreadable files
        raise UserError(f"cannot load Keras model {file}: {exc}") from exc
    if precision is not None:
        from landslide_tf.training.precision import convert_model, resolve_precision

        model = convert_model(model, resolve_precision(precision)[0])
    return model


# ----------------------------------------------------------------------------- the graph


def input_signature(settings: InferenceSettings) -> list[tf.TensorSpec]:
    """The raw-input signature from the spec.

    ``image`` ``[N, H, W, bands]`` in the spec's image dtype (uint8 ``[N, H, W, 3]`` for
    Bijie RGB, float32 for multi-band) when the spec has image bands, and ``dem`` float32
    ``[N, H', W']`` when it uses the DEM.
    """
    import tensorflow as tf

    specs = []
    if settings.uses_image:
        dtype = tf.as_dtype(settings.spec.image_dtype)
        specs.append(tf.TensorSpec([None, None, None, settings.image_channels], dtype, "image"))
    if settings.uses_dem:
        specs.append(tf.TensorSpec([None, None, None], tf.float32, name="dem"))
    return specs


def raw_probability(
    model_fn: Any,
    image: tf.Tensor | None,
    dem: tf.Tensor | None,
    settings: InferenceSettings,
) -> tf.Tensor:
    """Raw inputs to landslide probabilities at the input size (TF ops; traced by export).

    Args:
        model_fn: callable mapping the normalized ``(N, S, S, C)`` input to ``(N, S, S, 1)``.
        image: the raw image ``(N, H, W, bands)`` (uint8 RGB or float32 bands in the user's
            units), or None when the spec has no image band.
        dem: float32 elevation ``(N, H', W')`` on any grid (resampled onto the training
            size), or None when the spec has no DEM.
        settings: the run's input spec, threshold and TTA.

    Returns:
        float32 probabilities ``(N, H, W)`` on the grid of ``image`` (of ``dem`` for DEM-only
        models).
    """
    import tensorflow as tf

    from landslide_tf.data.preprocess import preprocess

    checks = []
    if settings.uses_image:
        n = settings.image_channels
        names = ", ".join(b.name for b in settings.spec.image_bands)
        checks += [
            tf.debugging.assert_rank(
                image, 4, message=f"image must be (batch, height, width, {n})"
            ),
            tf.debugging.assert_equal(
                tf.shape(image)[-1], n, message=f"image must have {n} channels ({names})"
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
    prob = apply_model(model_fn, x, settings.tta, settings.tta_transforms)  # (N, S, S, 1)
    grid = tf.shape(primary)[1:3]
    # preprocess.resize wants a static size; same op (bilinear, antialiased) on a tensor.
    back = tf.image.resize(prob, grid, method="bilinear", antialias=True)[..., 0]
    if settings.uses_dem:
        back = no_dem_as_nodata(back, dem, settings.nodata)
    return back  # (N, H, W)


def no_dem_as_nodata(prob: tf.Tensor, dem: tf.Tensor, nodata: float | None) -> tf.Tensor:
    """NaN probabilities for the samples whose DEM has no valid cell (the NO_DEM rule).

    A DEM that is NaN (or ``nodata``) everywhere gives the network nothing to predict from:
    ``predict --scene`` writes such windows as nodata, and the predictor and the exported
    SavedModel return NaN probabilities (mask 0) for such inputs, so every path agrees.
    """
    import tensorflow as tf

    valid = tf.math.is_finite(dem)
    if nodata is not None:
        valid = tf.logical_and(valid, tf.not_equal(dem, float(nodata)))
    has_dem = tf.reduce_any(valid, axis=[1, 2])[:, tf.newaxis, tf.newaxis]  # (N, 1, 1)
    return tf.where(has_dem, prob, tf.constant(np.nan, prob.dtype))


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (TensorFlow's own text for its errors), with
    its type: ``DataLossError: Checksum does not match``."""
    text = str(getattr(exc, "message", "") or exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def read_model_card(path: str | Path) -> tuple[dict[str, Any], InferenceSettings]:
    """The model card of a SavedModel written by ``landslide_tf.inference.export`` and the
    inference settings it records (``assets/model_card.json``); the network is not loaded.

    Raises:
        UserError: no model card; ``DataError`` when it is not JSON or has no valid
            ``settings`` (one line naming the file).
    """
    path = Path(path)
    card_path = path / "assets" / MODEL_CARD_JSON
    if not card_path.is_file():
        raise UserError(f"{path} is a SavedModel without {card_path.relative_to(path)}")
    hint = "export the run again"
    try:
        card = json.loads(card_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{card_path} is damaged: not valid JSON ({exc}); {hint}") from None
    try:
        settings = InferenceSettings.from_dict(card["settings"])
    except UserError as exc:
        raise DataError(f"{card_path} is damaged: {exc}; {hint}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = f"no {exc}" if isinstance(exc, KeyError) else one_line(exc)
        raise DataError(f"{card_path} is damaged: settings unreadable ({what}); {hint}") from None
    return card, settings


def read_settings(path: str | Path) -> InferenceSettings:
    """The inference settings a model location records, read without loading the network:
    a SavedModel's model card, a run directory's ``config.json``, the ``config.json`` beside a
    ``.keras`` file (else the defaults, as ``Predictor.load`` takes them).

    For checks before the model is loaded (``predict``: does this model take RGB tiles?).

    Raises:
        UserError: the path does not exist or is no model; a damaged config or card.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"model not found: {path}")
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return read_model_card(path)[1]
    if path.is_file() and path.suffix == ".keras" and not (path.parent / "config.json").is_file():
        return InferenceSettings()  # Predictor.load warns about the defaults
    return load_settings(path)


# ----------------------------------------------------------------------------- predictor


class Predictor:
    """Probabilities from raw inputs for a Keras model or an exported SavedModel.

    Build with ``Predictor.load(path)`` (run dir, ``.keras`` file or SavedModel) or
    ``Predictor.from_keras(model, settings)``.

    Attributes:
        settings: the input spec, threshold and TTA.
        source: where the model came from (for messages).
        model: the Keras model (Keras sources only).
        card: the model card (SavedModel sources only).
    """

    def __init__(self, fn: Any, settings: InferenceSettings, source: str) -> None:
        """Wrap a raw-input function ``(image, dem) -> (N, H, W)`` probabilities."""
        self._fn = fn
        self.settings = settings
        self.source = source
        self.model: Any = None
        self.card: dict[str, Any] | None = None

    @classmethod
    def from_keras(
        cls, model: Any, settings: InferenceSettings, source: str = "keras"
    ) -> Predictor:
        """Predictor over an in-memory Keras model, tracing ``raw_probability``."""
        import tensorflow as tf

        got = model.input_shape[-1]
        if got is not None and got != settings.channels:
            raise UserError(
                f"{source}: the model takes {got} channels but its input "
                f"({settings.modalities}) gives {settings.channels}"
            )
        signature = input_signature(settings)
        names = [s.name for s in signature]

        def call(*args: tf.Tensor) -> tf.Tensor:
            inputs = dict(zip(names, args, strict=True))
            return raw_probability(
                lambda x: model(x, training=False),
                inputs.get("image"),
                inputs.get("dem"),
                settings,
            )

        traced = tf.function(call, input_signature=signature)

        def fn(image: Any, dem: Any) -> tf.Tensor:
            given = {"image": image, "dem": dem}
            return traced(*(given[name] for name in names))

        predictor = cls(fn, settings, source)
        predictor.model = model
        return predictor

    @classmethod
    def from_saved_model(cls, path: str | Path, nodata: float | None = None) -> Predictor:
        """Predictor over a SavedModel written by ``landslide_tf.inference.export``.

        Args:
            path: the SavedModel directory (its model card in ``assets/``).
            nodata: a DEM value to treat as missing. A SavedModel exported without one
                takes it: before each call the cells equal to it in the DEM (or in the
                ``dem`` band of a multi-band image) are set to NaN, which the exported
                graph treats as missing, and ``settings.nodata`` is it. The value an
                export baked in cannot be undone, so another value is refused.

        Raises:
            UserError: no model card, or ``nodata`` differs from the one the export baked
                in (checked before the SavedModel is loaded); ``DataError`` (one line naming
                the path) for a damaged model card or SavedModel (a truncated variables
                file, no ``serving_default``).
        """
        import tensorflow as tf

        from landslide_tf.data.preprocess import dem_band_nodata_to_nan

        path = Path(path)
        card, settings = read_model_card(path)
        spec = settings.spec
        dem_band = spec.image_dtype != "uint8" and any(b.name == "dem" for b in spec.image_bands)
        fill = None
        if nodata is not None and (settings.uses_dem or dem_band):
            baked = settings.nodata
            if baked is None:
                settings = settings.replace(nodata=nodata)
                fill = float(nodata)
            elif float(nodata) != baked:
                raise UserError(
                    f"{path} was exported with DEM nodata {baked:g} and cannot take "
                    f"--dem-nodata {float(nodata):g}: export the run again with "
                    f"--dem-nodata {float(nodata):g}, or set those DEM cells to NaN"
                )
        try:
            loaded = tf.saved_model.load(str(path))
            serving = loaded.signatures["serving_default"]
        except (tf.errors.OpError, KeyError, TypeError, ValueError, IndexError) as exc:
            # a damaged variables file (a truncated one: IndexError "Read less bytes than
            # requested"), a damaged graph, no serving signature
            raise DataError(
                f"{path} is a damaged SavedModel ({one_line(exc)}); export the run again"
            ) from None
        names = [s.name for s in input_signature(settings)]

        def fn(image: Any, dem: Any) -> tf.Tensor:
            if fill is not None and dem is not None:
                dem = tf.where(tf.equal(dem, fill), tf.constant(np.nan, dem.dtype), dem)
            if fill is not None and image is not None:
                image = dem_band_nodata_to_nan(image, spec, fill)
            given = {"image": image, "dem": dem}
            return serving(**{name: given[name] for name in names})["probability"]

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
        precision: str | None = INFERENCE_PRECISION,
        tta_transforms: str | None = None,
    ) -> Predictor:
        """Load a run dir, a ``.keras`` file or a SavedModel directory.

        Args:
            path: the model location.
            nodata: DEM nodata value (overrides a run's stored one; NaN is always nodata).
                A SavedModel exported without one takes it; one exported with another
                value refuses it (``from_saved_model``).
            tta: flip averaging on or off (default: the run's ``tta``); a SavedModel keeps
                what it was exported with.
            tta_transforms: ``"flips"`` or ``"dihedral"`` (default: the run's); only with
                flip averaging on. A SavedModel keeps what it was exported with.
            precision: what a Keras model computes in (``load_inference_model``): float32
                by default; ``None`` keeps the precision it was trained in. A SavedModel
                keeps the precision it was exported in.
        """
        path = Path(path)
        if tta_transforms is not None:
            check_transforms(tta_transforms)
        if not path.exists():
            raise UserError(f"model not found: {path}")
        if path.is_dir() and (path / "saved_model.pb").is_file():
            baked = read_model_card(path)[1]  # checked before the SavedModel is loaded
            if tta is not None and bool(tta) != baked.tta:
                raise UserError(
                    f"{path} was exported with flip averaging {'on' if not tta else 'off'}: "
                    f"export the run again with {'--tta' if tta else '--no-tta'}"
                )
            if tta_transforms is not None and (
                not baked.tta or tta_transforms != baked.tta_transforms
            ):
                done = baked.tta_transforms if baked.tta else "none"
                raise UserError(
                    f"{path} was exported with TTA transforms {done}: export the run again "
                    f"with --tta --tta-transforms {tta_transforms}"
                )
            return cls.from_saved_model(path, nodata=nodata)
        settings = load_settings(path)
        if nodata is not None:  # a bad value is refused before the model is loaded
            settings = settings.replace(nodata=float(nodata))
        if tta is not None:
            settings = settings.replace(tta=bool(tta))
        if tta_transforms is not None:
            if not settings.tta:
                raise UserError("--tta-transforms needs flip averaging on: add --tta")
            settings = settings.replace(tta_transforms=tta_transforms)
        model = load_inference_model(path, precision)
        run_dir = path if path.is_dir() else path.parent
        source = f"run {run_dir}" if path.is_dir() else f"model {path}"
        return cls.from_keras(model, settings, source)

    @property
    def threshold(self) -> float:
        """The decision threshold of the model."""
        return self.settings.threshold

    def predict_batch(
        self, images: np.ndarray | None, dems: np.ndarray | None = None
    ) -> np.ndarray:
        """Probabilities for a batch.

        Args:
            images: ``(N, H, W, bands)``: uint8 RGB for Bijie runs, bands in the user's
                units for multi-band runs (None when the model takes no image).
            dems: float32 ``(N, H', W')`` (None when the model takes no DEM).

        Returns:
            float32 ``(N, H, W)``.
        """
        import tensorflow as tf

        images, dems = self._check(images, dems, batched=True)
        image = None if images is None else tf.convert_to_tensor(images)
        dem = None if dems is None else tf.convert_to_tensor(dems, tf.float32)
        return np.asarray(self._fn(image, dem), dtype=np.float32)

    def predict(self, image: np.ndarray | None, dem: np.ndarray | None = None) -> np.ndarray:
        """Probabilities ``(H, W)`` for one image ``(H, W, bands)`` and DEM ``(H', W')``."""
        self._check(image, dem, batched=False)
        images = None if image is None else np.asarray(image)[np.newaxis]
        dems = None if dem is None else np.asarray(dem, np.float32)[np.newaxis]
        return self.predict_batch(images, dems)[0]

    def _check(self, image: Any, dem: Any, batched: bool) -> tuple[Any, Any]:
        """Validate presence, dtype and channels before calling the graph; cast floats."""
        s = self.settings
        rank = 4 if batched else 3
        primary = image if s.uses_image else dem
        if batched and primary is not None and len(primary) == 0:
            raise DataError("empty batch: give at least one image or DEM")
        if s.uses_image:
            if image is None:
                raise UserError(f"this model ({s.modalities}) needs an image")
            image = np.asarray(image)
            n = s.image_channels
            names = ",".join(b.name for b in s.spec.image_bands)
            if image.ndim != rank or image.shape[-1] != n:
                raise DataError(
                    f"image must be (..., H, W, {n}) with the bands {names}"
                    f"{' (RGB)' if names == 'red,green,blue' else ''}, got shape {image.shape}"
                )
            expected = np.dtype(s.spec.image_dtype)
            if np.issubdtype(expected, np.integer) and image.dtype != expected:
                raise DataError(f"image must be {expected} ({names}), got {image.dtype}")
            image = image.astype(expected, copy=False)
        if s.uses_dem:
            if dem is None:
                raise UserError(f"this model ({s.modalities}) needs a DEM (--dem)")
            if np.asarray(dem).ndim != rank - 1:
                raise DataError(f"DEM must be (..., H, W), got shape {np.asarray(dem).shape}")
        if s.uses_image and s.uses_dem:
            check_extents(np.asarray(image).shape[-3:-1], np.asarray(dem).shape[-2:])
        return image, dem


def load_settings(path: str | Path) -> InferenceSettings:
    """The inference settings of a run dir or of a ``.keras`` file (``config.json`` beside it,
    else the defaults with a warning)."""
    from landslide_tf.training.runs import read_config_json

    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(
                f"{path} is neither a run directory (config.json + best.keras) "
                "nor a SavedModel (saved_model.pb)"
            )
        return InferenceSettings.from_dict(read_config_json(path / "config.json"), path)
    if path.suffix != ".keras":
        raise UserError(f"{path}: expected a run directory, a .keras file or a SavedModel")
    beside = path.parent / "config.json"
    if beside.is_file():
        return InferenceSettings.from_dict(read_config_json(beside), path.parent)
    settings = InferenceSettings()
    logger.warning(
        "no config.json beside %s: assuming the defaults (%s)", path, settings.modalities
    )
    return settings
