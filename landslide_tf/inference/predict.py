"""Landslide masks from a trained model: single images and whole scenes (library + CLI).

MODEL may be a run directory, a ``.keras`` file or a SavedModel directory (see
``landslide_tf.inference.predictor``); every kind runs the one inference graph of
``landslide_tf.inference.core``.

Usage::

    python -m landslide_tf.predict MODEL --image a.png [--dem a_dem.png] --out mask.png \\
        [--overlay] [--threshold T] [--probability prob.png]
    python -m landslide_tf.predict MODEL --scene image.tif [--dem dem.tif] --out prob.tif \\
        [--polygons out.geojson] [--window 256] [--overlap 0.25] [--batch 4]

Single images are resized to the training size as a whole (like a training tile); scenes are
cut into overlapping model-scale windows by ``landslide_tf.inference.scene``.

The names that lived here before the split into ``inference`` and ``predictor`` are
re-exported (``from landslide_tf.inference.predict import Predictor`` keeps working).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.cli.common import add_precision_args, run_cli
from landslide_tf.errors import UserError
from landslide_tf.inference.core import (
    MODEL_CARD_JSON,
    MODEL_CARD_MD,
    InferenceSettings,
    check_extents,
    input_signature,
    raw_probability,
)
from landslide_tf.inference.predictor import Predictor, load_keras_model
from landslide_tf.inference.preview import dem_preview
from landslide_tf.inference.scene import predict_scene
from landslide_tf.inference.tta import add_tta_arg

__all__ = [
    "MODEL_CARD_JSON",
    "MODEL_CARD_MD",
    "OVERLAY_COLOR",
    "InferenceSettings",
    "Predictor",
    "build_parser",
    "check_extents",
    "dem_preview",
    "input_signature",
    "load_keras_model",
    "main",
    "make_overlay",
    "overlay_path",
    "predict_image",
    "raw_probability",
    "threshold_mask",
]

logger = logging.getLogger(__name__)

#: Overlay colour (RGB) for landslide pixels.
OVERLAY_COLOR = (255, 0, 0)
#: File types ``--scene`` can write.
SCENE_OUTPUTS = (".tif", ".tiff", ".png", ".npy")


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


def _write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = array[..., ::-1]  # RGB -> BGR for OpenCV
    if not cv2.imwrite(str(path), np.ascontiguousarray(array)):
        raise UserError(f"cannot write {path}")


def check_out_path(path: str | Path, allowed: tuple[str, ...], flag: str = "--out") -> Path:
    """Refuse an output path that is a folder or lacks one of the ``allowed`` extensions."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name ending in {allowed[0]}")
    if path.suffix.lower() not in allowed:
        got = f"ends in {path.suffix!r}" if path.suffix else "has no extension"
        raise UserError(f"{flag} {path} {got}; expected {' or '.join(allowed)}")
    return path


def check_threshold(threshold: float | None) -> None:
    """A decision threshold must lie strictly between 0 and 1 (None: the model's)."""
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise UserError(f"--threshold must be in (0, 1), got {threshold:g}")


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

    check_threshold(threshold)
    check_out_path(out, (".png",))
    if probability is not None:
        check_out_path(probability, (".png",), "--probability")
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


def _band_scene(predictor: Any, args: argparse.Namespace) -> Any:
    """``--scene`` (or ``--image``) for a multi-band model: ``band_scene.predict_band_scene``."""
    from landslide_tf.inference.band_scene import predict_band_scene

    scene = args.scene or args.image
    if scene is None:
        raise UserError("a multi-band model reads its bands from a GeoTIFF: give --scene FILE")
    return predict_band_scene(
        predictor,
        scene,
        args.out,
        dem=args.dem,
        polygons=args.polygons,
        window=args.window,
        overlap=0.25 if args.overlap is None else args.overlap,
        batch=args.batch,
        threshold=args.threshold,
        progress=not args.quiet,
    )


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
    parser.add_argument(
        "--preview", help="--scene: also write a downsampled RGB PNG with landslide outlines"
    )
    parser.add_argument("--window", type=int, default=None, help="--scene: window px (256)")
    parser.add_argument("--overlap", type=float, default=None, help="--scene: overlap (0.25)")
    parser.add_argument("--batch", type=int, default=4, help="--scene: windows per batch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tta_arg(parser)
    add_precision_args(parser, default=None, legacy=False)  # issue 14
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_cli(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.image is None and args.scene is None:
        if args.dem is None:
            raise UserError("give --image (a tile), --scene (a whole scene) or --dem")
    check_threshold(args.threshold)  # everything checked before the model is loaded
    if args.scene is not None:
        check_out_path(args.out, SCENE_OUTPUTS)
    else:
        check_out_path(args.out, (".png",))
        if args.probability is not None:
            check_out_path(args.probability, (".png",), "--probability")
    predictor = Predictor.load(
        args.model, nodata=args.dem_nodata, tta=args.tta, precision=args.precision
    )
    if getattr(predictor, "multiband", False):  # issue 13: bands from a GeoTIFF
        result = _band_scene(predictor, args)
        print(result.format())
        return 0
    if args.scene is not None:
        kwargs = {k: v for k, v in (("window", args.window), ("overlap", args.overlap))}
        result = predict_scene(
            predictor,
            args.scene,
            args.out,
            dem=args.dem,
            polygons=args.polygons,
            preview=args.preview,
            batch=args.batch,
            threshold=args.threshold,
            dem_nodata=args.dem_nodata,
            progress=not args.quiet,
            **{k: v for k, v in kwargs.items() if v is not None},
        )
        print(result.format())
        return 0
    for option in ("polygons", "window", "overlap", "preview"):
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
