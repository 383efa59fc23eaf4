"""Landslide masks from a trained model for tile-like images (the library side of ``predict``).

MODEL may be a run directory, a ``.keras`` file or a SavedModel directory (see
``landslide_tf.inference.predictor``); every kind runs the one inference graph there.
Single images are resized to the training size as a whole (like a training tile); whole
scenes are cut into overlapping model-scale windows by ``landslide_tf.inference.scene``.
The command line is ``landslide_tf.cli.predict``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import UserError
from landslide_tf.files import encode_image
from landslide_tf.inference.predictor import Predictor
from landslide_tf.inference.preview import dem_preview
from landslide_tf.metrics.thresholds import validate_threshold

logger = logging.getLogger(__name__)

#: Overlay colour (RGB) for landslide pixels.
OVERLAY_COLOR = (255, 0, 0)
#: File types a scene prediction can write.
SCENE_OUTPUTS = (".tif", ".tiff", ".png", ".npy")
#: File types of ``--polygons`` (GeoJSON).
POLYGON_OUTPUTS = (".geojson", ".json")


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


def write_png(path: Path, array: np.ndarray) -> None:
    """Write a uint8 gray ``(H, W)`` or RGB ``(H, W, 3)`` PNG atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = array[..., ::-1]  # RGB -> BGR for OpenCV
    encode_image(path, np.ascontiguousarray(array))


def check_out_path(path: str | Path, allowed: tuple[str, ...], flag: str = "--out") -> Path:
    """Refuse an output path that is a folder, lacks one of the ``allowed`` extensions or
    lies under a file (its folders are made when missing: one of them must not be a file)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name ending in {allowed[0]}")
    if path.suffix.lower() not in allowed:
        got = f"ends in {path.suffix!r}" if path.suffix else "has no extension"
        raise UserError(f"{flag} {path} {got}; expected {' or '.join(allowed)}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
            break
    return path


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file: ``os.path.samefile`` where both exist (links, ``..``),
    else equal resolved paths."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        try:
            return os.path.samefile(a, b)
        except OSError:
            pass
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a link loop: compare the paths as given
        return a.absolute() == b.absolute()


def check_outputs_apart(
    inputs: Iterable[tuple[str, str | Path | None]],
    outputs: Iterable[tuple[str, str | Path | None]],
) -> None:
    """Refuse an output that is the same file as an input or as another output.

    Args:
        inputs: ``(flag, path)`` pairs read by the command (None: not given).
        outputs: ``(flag, path)`` pairs it writes (None: not written).

    Raises:
        UserError: one line naming both flags and paths.
    """
    given_inputs = [(flag, Path(p)) for flag, p in inputs if p is not None]
    seen: list[tuple[str, Path]] = []
    for flag, raw in outputs:
        if raw is None:
            continue
        path = Path(raw)
        for other_flag, other in given_inputs:
            if same_file(path, other):
                raise UserError(
                    f"{flag} {path} is the same file as the input {other_flag} {other}: "
                    f"writing it would replace that input; choose another {flag}"
                )
        for other_flag, other in seen:
            if same_file(path, other):
                raise UserError(
                    f"{flag} {path} is the same file as {other_flag} {other}: give each "
                    "output its own path"
                )
        seen.append((flag, path))


def model_inputs(model: str | Path) -> list[tuple[str, Path]]:
    """``("MODEL", path)`` for a model location and, for a directory (a run, a SavedModel),
    every file directly in it (``config.json``, ``best.keras``, ``saved_model.pb``): the
    inputs of ``check_outputs_apart`` that no output may replace."""
    model = Path(model)
    found = [("MODEL", model)]
    if model.is_dir():
        found += [("MODEL", path) for path in sorted(model.iterdir()) if path.is_file()]
    return found


class OutputSet:
    """Outputs of one prediction that stand or fall together.

    Each output is written inside ``with outputs.writing(path):`` (atomically). A file
    already at ``path`` (the user's earlier output) is first kept aside as a hard link beside
    it (``.NAME.PID.old``), so that ``rollback`` after a later failure puts it back instead of
    leaving this run's outputs or nothing; ``commit`` drops the kept copies.
    """

    def __init__(self) -> None:
        self.done: list[tuple[Path, Path | None]] = []

    @contextlib.contextmanager
    def writing(self, path: str | Path) -> Iterator[Path]:
        """Yield ``path`` for the block that writes it; note it once written."""
        path = Path(path)
        kept = None
        if path.is_file():
            kept = path.with_name(f".{path.name}.{os.getpid()}.old")
            try:
                kept.unlink(missing_ok=True)  # a leftover of an earlier process of this id
                os.link(path, kept)
            except OSError:  # no hard links here: the earlier file cannot be kept
                kept = None
        try:
            yield path
        except BaseException:
            if kept is not None:  # the atomic write failed: the earlier file is in place
                kept.unlink(missing_ok=True)
            raise
        self.done.append((path, kept))

    def commit(self) -> None:
        """Every output is written: drop the kept earlier files."""
        for _, kept in self.done:
            if kept is not None:
                kept.unlink(missing_ok=True)
        self.done = []

    def rollback(self) -> None:
        """A later output failed: put the earlier files back, remove this run's others."""
        for path, kept in reversed(self.done):
            try:
                if kept is not None:
                    os.replace(kept, path)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                logger.warning("could not restore %s after a failed prediction", path)
        self.done = []


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
    from landslide_tf.data.nodata import check_dem_nodata

    validate_threshold(threshold, "--threshold")
    check_out_path(out, (".png",))
    if probability is not None:
        check_out_path(probability, (".png",), "--probability")
    check_outputs_apart(
        [("--image", image), ("--dem", dem)],
        [("--out", out), ("--probability", probability),
         ("--overlay", overlay_path(out) if overlay else None)],
    )  # fmt: skip
    settings = predictor.settings
    rgb = read_rgb(image) if settings.uses_image and image is not None else None
    elevation = read_dem(dem) if settings.uses_dem and dem is not None else None
    if elevation is not None:
        check_dem_nodata(elevation, dem, settings.nodata)
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
    written = OutputSet()
    try:
        result = _write_outputs(
            out, prob, mask, threshold, rgb, elevation, image, overlay, probability, written
        )
    except BaseException:
        written.rollback()  # all or nothing: a failed output undoes the others
        raise
    written.commit()
    return result


def _write_outputs(
    out: Path,
    prob: np.ndarray,
    mask: np.ndarray,
    threshold: float,
    rgb: np.ndarray | None,
    elevation: np.ndarray | None,
    image: str | Path | None,
    overlay: bool,
    probability: str | Path | None,
    written: OutputSet,
) -> dict[str, Any]:
    """Write the mask and the extras of ``predict_image``, noting each in ``written``."""
    from landslide_tf.data import read_rgb

    with written.writing(out):
        write_png(out, mask * 255)
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
        shown = np.nan_to_num(prob, nan=0.0)  # no valid DEM cell: nodata, 0 in a PNG
        with written.writing(probability):
            write_png(Path(probability), np.round(shown * 255).astype(np.uint8))
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
        with written.writing(path):
            write_png(path, make_overlay(base, mask))
        result["overlay"] = str(path)
    return result
