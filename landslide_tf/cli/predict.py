"""``python -m landslide_tf.predict``: landslide maps from a model, for tiles and whole scenes.

Usage::

    python -m landslide_tf.predict MODEL --image a.png [--dem a_dem.png] --out mask.png \\
        [--overlay] [--threshold T] [--probability prob.png]
    python -m landslide_tf.predict MODEL --scene image.tif [--dem dem.tif] --out prob.tif \\
        [--polygons out.geojson] [--preview p.png] [--window 256] [--overlap 0.25] [--batch 4]

MODEL may be a run directory, a ``.keras`` file or a SavedModel directory. The model computes
in float32 unless ``--precision`` asks otherwise. The library side is
``landslide_tf.inference.predict`` (tiles) and ``landslide_tf.inference.scene`` (scenes).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from landslide_tf.cli.common import ArgumentParser, add_precision_arg, add_tta_arg, run_cli
from landslide_tf.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m landslide_tf.predict`` argument parser."""
    parser = ArgumentParser(
        prog="python -m landslide_tf.predict",
        description="Landslide masks for a tile (--image) or a whole scene (--scene).",
    )
    parser.add_argument("model", help="run directory, .keras file or SavedModel directory")
    source = parser.add_mutually_exclusive_group(required=False)
    source.add_argument("--image", help="RGB tile (PNG), resized to the training size whole")
    source.add_argument("--scene", help="whole scene (GeoTIFF, or a small PNG): sliding windows")
    parser.add_argument("--dem", help="DEM (PNG for --image; GeoTIFF or PNG for --scene)")
    parser.add_argument(
        "--out",
        required=True,
        help="--image: mask PNG (0/255); --scene: probability map (.tif, .png or .npy)",
    )
    parser.add_argument("--overlay", action="store_true", help="also write <out>_overlay.png")
    parser.add_argument("--threshold", type=float, help="decision threshold (default: model's)")
    parser.add_argument("--probability", help="--image: also write probabilities as 8-bit PNG")
    parser.add_argument("--dem-nodata", type=float, help="DEM nodata value (NaN always is)")
    parser.add_argument("--polygons", help="--scene: write landslide polygons (GeoJSON)")
    parser.add_argument(
        "--preview", help="--scene: also write a downsampled RGB PNG with landslide outlines"
    )
    parser.add_argument(
        "--window", type=int, default=None, help="--scene: window px (training tile side or 256)"
    )
    parser.add_argument("--overlap", type=float, default=None, help="--scene: overlap (0.25)")
    parser.add_argument("--batch", type=int, default=4, help="--scene: windows per batch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_tta_arg(parser)
    add_precision_arg(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_cli(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """Predict a tile or a scene as the parsed ``args`` say; print what was written."""
    from landslide_tf.console import interactive_stdout
    from landslide_tf.inference.predict import (
        SCENE_OUTPUTS,
        check_out_path,
        check_outputs_apart,
        model_inputs,
        overlay_path,
        predict_image,
    )
    from landslide_tf.inference.predictor import Predictor, read_settings
    from landslide_tf.inference.scene import DEFAULT_OVERLAP, check_scene_options, predict_scene
    from landslide_tf.metrics.thresholds import validate_threshold

    if args.image is None and args.scene is None and args.dem is None:
        raise UserError("give --image (a tile), --scene (a whole scene) or --dem")
    # everything is checked before the model is loaded
    validate_threshold(args.threshold, "--threshold")
    if args.scene is not None:
        check_out_path(args.out, SCENE_OUTPUTS)
        if args.overlay or args.probability is not None:
            raise UserError("--overlay and --probability apply to --image only")
    else:
        check_out_path(args.out, (".png",))
        if args.probability is not None:
            check_out_path(args.probability, (".png",), "--probability")
        for option in ("polygons", "window", "overlap", "preview"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option} applies to --scene only")
    overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    check_scene_options(
        polygons=args.polygons,
        preview=args.preview,
        window=args.window,
        overlap=overlap,
        batch=args.batch,
    )
    check_outputs_apart(
        [*model_inputs(args.model), ("--image", args.image),
         ("--scene", args.scene), ("--dem", args.dem)],
        [("--out", args.out), ("--probability", args.probability),
         ("--overlay", overlay_path(args.out) if args.overlay else None),
         ("--polygons", args.polygons), ("--preview", args.preview)],
    )  # fmt: skip
    settings = read_settings(args.model)  # the inputs it needs, without loading the network
    if settings.uses_image and args.image is None and args.scene is None:
        raise UserError(f"this model ({settings.modalities}) needs --image (a tile) or --scene")
    if settings.uses_dem and args.dem is None:
        raise UserError(f"this model ({settings.modalities}) needs --dem")
    scene = args.scene
    if scene is None and settings.spec.image_dtype != "uint8":
        # float bands are read window by window from a GeoTIFF (or a PNG, as a folder of PNG
        # tiles trained them): such a tile is predicted as a small scene, and --out is its
        # 0/255 mask as for any --image
        if args.image is None:
            raise UserError("this model reads bands from a GeoTIFF or PNG: give --scene FILE")
        if args.overlay or args.probability is not None:
            raise UserError(
                "--overlay and --probability apply to RGB tiles only: for this model's "
                "probabilities give --scene FILE (with --preview for its outlines)"
            )
        scene = args.image
    for flag, path in (("--image", args.image), ("--scene", args.scene), ("--dem", args.dem)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{flag} {path}: no such file")
    predictor = Predictor.load(
        args.model,
        nodata=args.dem_nodata,
        tta=args.tta,
        precision=args.precision,
        tta_transforms=args.tta_transforms,
    )
    if scene is not None:
        result = predict_scene(
            predictor,
            scene,
            args.out,
            dem=args.dem,
            polygons=args.polygons,
            preview=args.preview,
            window=args.window,
            overlap=overlap,
            batch=args.batch,
            threshold=args.threshold,
            dem_nodata=args.dem_nodata,
            progress=not args.quiet and interactive_stdout(),
            mask_png=args.scene is None,
        )
        print(result.format())
        return 0
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
