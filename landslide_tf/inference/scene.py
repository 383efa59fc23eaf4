"""Whole-scene landslide maps: overlapping model-scale windows with blended seams.

A scene (a GeoTIFF of any size, or a small PNG) is cut into ``window`` x ``window`` pixel
windows that overlap by ``overlap`` (a fraction of the window). Each window is predicted like
a training tile (the predictor resizes it to the training size, normalizes it, runs the
network and resizes the probabilities back), then blended into the scene with a trapezoid
weight: flat (1) in the window's interior and a linear ramp over the overlap towards
neighbouring windows (no ramp on the scene border). The output is the weighted mean of the
overlapping windows, so seams are continuous and a pixel seen by one window only gets that
window's prediction exactly.

Memory is bounded by the window, not the scene: image and DEM are read window by window
(rasterio ``Window`` reads; the DEM through a ``WarpedVRT`` onto the image grid), and the
probabilities are accumulated in a strip of one window height x the scene width and written
out in row strips as soon as no later window touches them. Polygons are traced by GDAL from
the thresholded mask written beside the output (``rasterio.features.shapes`` on the band).

Defaults: ``window=256`` px and ``overlap=0.25``. The network only ever sees
``image_size``-px inputs (128 in the paper), and training tiles of Bijie (61..349 px a side,
median ~140 px in the bundled sample) were resized to that size whole, i.e. shrunk by factors
~0.5..2.7. A 256-px window (factor 2 at 128) lies inside that range at a quarter of the
windows a 128-px window would need; use ``--window 128``..``160`` to match the median tile's
ground resolution more closely, at about 3-4x the compute.

Per-window min-max DEM normalization (``dem_norm="minmax"``, the paper's) sees each window's
own elevation range, so two overlapping windows normalize the same cell differently; the
ramp blends their predictions smoothly over the overlap, and a larger overlap lowers the
visible effect. ``dem_norm="dataset"`` runs are free of it.

rasterio is optional (``pip install ".[geo]"``): PNG scenes work without it (no
georeferencing, no polygons).

Modules: windowing, blending and ``predict_scene`` live here; raster reading and writing in
``landslide_tf.inference.scene_io``; polygon tracing in ``landslide_tf.inference.polygons``. Their public names
are re-exported here (``from landslide_tf.inference.scene import write_polygons`` keeps working).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from landslide_tf.console import interactive_stdout
from landslide_tf.errors import UserError
from landslide_tf.inference.core import check_extents
from landslide_tf.inference.polygons import polygon_area, write_polygons
from landslide_tf.inference.predictor import Predictor
from landslide_tf.inference.preview import ScenePreview
from landslide_tf.inference.scene_io import (
    MAX_WHOLE_DEM_PIXELS,
    RASTER_SUFFIXES,
    _ArraySource,
    _is_raster,
    _RasterDem,
    _RasterImage,
    _Scene,
    _Writer,
    open_scene,
    require_rasterio,
)
from landslide_tf.inference.scene_result import SceneResult  # noqa: F401  (re-exported: defined here before)

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOW",
    "GDAL_CACHE_MB",
    "MAX_WHOLE_DEM_PIXELS",
    "RASTER_SUFFIXES",
    "Predictor",
    "SceneResult",
    # private, re-exported as before the split (tests patch _RasterImage.read)
    "_ArraySource",
    "_RasterDem",
    "_RasterImage",
    "blend_weights",
    "check_extents",
    "open_scene",
    "polygon_area",
    "predict_scene",
    "ramp_weights",
    "require_rasterio",
    "window_starts",
    "write_polygons",
]

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 256
DEFAULT_OVERLAP = 0.25
#: GDAL block cache (MiB) while predicting a scene, unless $GDAL_CACHEMAX is set: GDAL's own
#: default (5 % of RAM) would let the cache, and so the memory, grow with the scene.
GDAL_CACHE_MB = 64


# ----------------------------------------------------------------------------- windows


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Window offsets along one axis: stride ``window * (1 - overlap)``, the last flush.

    >>> window_starts(600, 256, 0.25)
    [0, 192, 344]
    >>> window_starts(100, 256, 0.25)
    [0]
    """
    if length <= window:
        return [0]
    stride = max(1, int(round(window * (1 - overlap))))
    return [*range(0, length - window, stride), length - window]


def ramp_weights(length: int, ramp: int, first: bool, last: bool) -> np.ndarray:
    """1-D trapezoid: 1 inside, linear ramp of ``ramp`` px at ends facing other windows.

    The ends on the scene border (``first``/``last``) stay at 1. Weights are > 0 everywhere.

    >>> ramp_weights(6, 2, first=False, last=True).round(2).tolist()
    [0.25, 0.75, 1.0, 1.0, 1.0, 1.0]
    """
    centers = np.arange(length, dtype=np.float64) + 0.5
    weights = np.ones(length, np.float64)
    if ramp > 0:
        if not first:
            weights = np.minimum(weights, centers / ramp)
        if not last:
            weights = np.minimum(weights, (length - centers) / ramp)
    return weights.astype(np.float32)


def blend_weights(
    height: int,
    width: int,
    ramp: int,
    *,
    top: bool,
    bottom: bool,
    left: bool,
    right: bool,
) -> np.ndarray:
    """2-D window weight ``(height, width)``: outer product of two ``ramp_weights``."""
    wy = ramp_weights(height, ramp, top, bottom)
    wx = ramp_weights(width, ramp, left, right)
    return wy[:, np.newaxis] * wx[np.newaxis, :]


# ----------------------------------------------------------------------------- predict


def predict_scene(
    predictor: Predictor,
    image: str | Path | None,
    out: str | Path,
    *,
    dem: str | Path | None = None,
    polygons: str | Path | None = None,
    window: int = DEFAULT_WINDOW,
    overlap: float = DEFAULT_OVERLAP,
    batch: int = 4,
    threshold: float | None = None,
    dem_nodata: float | None = None,
    progress: bool = False,
    preview: str | Path | None = None,
) -> SceneResult:
    """Predict a whole scene with overlapping, blended windows.

    Args:
        predictor: the model (``Predictor.load``).
        image: RGB scene (GeoTIFF, or a PNG that fits in memory); None for DEM-only models.
        out: probability map: ``.tif`` (float32 GeoTIFF with the image's CRS and transform),
            ``.png`` (8-bit, 0..255) or ``.npy``.
        dem: DEM scene (any grid for GeoTIFFs: warped onto the image grid).
        polygons: GeoJSON of landslide polygons (needs rasterio).
        window: window size in scene pixels (each window is resized to the training size).
        overlap: overlap between neighbouring windows, a fraction of ``window`` in [0, 0.9].
        batch: windows per network call.
        threshold: decision threshold for the mask and polygons (default: the model's).
        dem_nodata: DEM nodata value (default: the GeoTIFF's own; NaN always is).
        progress: show a progress bar (``keras.utils.Progbar``) on a terminal or notebook.
        preview: also write this PNG: the scene downsampled to at most 1024 px a side with
            the outlines of the landslide mask (``landslide_tf.inference.preview``).

    Returns:
        A ``SceneResult``.
    """
    settings = predictor.settings
    if window < 8:
        raise UserError(f"--window must be >= 8 px, got {window}")
    if not 0 <= overlap <= 0.9:
        raise UserError(f"--overlap must be in [0, 0.9], got {overlap}")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    if settings.uses_image and image is None:
        raise UserError(f"this model ({settings.modalities}) needs --scene RGB imagery")
    if settings.uses_dem and dem is None:
        raise UserError(f"this model ({settings.modalities}) needs --dem")
    if polygons is not None:
        require_rasterio()
    if preview is not None and Path(preview).suffix.lower() != ".png":
        raise UserError(f"--preview {preview}: expected a .png file")
    threshold = settings.threshold if threshold is None else float(threshold)
    out = Path(out)
    with contextlib.ExitStack() as stack:
        if any(p is not None and _is_raster(p) for p in (image, dem, out)):
            rasterio = require_rasterio()
            cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": GDAL_CACHE_MB}
            stack.enter_context(rasterio.Env(**cache))
        return _predict_scene(
            predictor,
            image,
            out,
            dem,
            polygons,
            window,
            overlap,
            batch,
            threshold,
            dem_nodata,
            progress,
            preview,
        )


def _predict_scene(
    predictor: Predictor,
    image: str | Path | None,
    out: Path,
    dem: str | Path | None,
    polygons: str | Path | None,
    window: int,
    overlap: float,
    batch: int,
    threshold: float,
    dem_nodata: float | None,
    progress: bool,
    preview: str | Path | None = None,
) -> SceneResult:
    settings = predictor.settings
    start = time.perf_counter()
    scene = open_scene(
        image if settings.uses_image else None,
        dem if settings.uses_dem else None,
        dem_nodata=dem_nodata,
    )
    writer: _Writer | None = None
    try:
        writer = _Writer(out, scene, threshold, polygons is not None)
        picture = ScenePreview(scene.height, scene.width, threshold) if preview else None
        sink = picture.tap(writer) if picture is not None else writer
        windows, win = _run_windows(predictor, scene, sink, window, overlap, batch, progress)
        writer.close()
        if picture is not None:
            picture.save(preview, picture.background(scene, settings.uses_image))
        n_polygons = None
        if polygons is not None:
            n_polygons = _polygons(writer, scene, Path(polygons), out)
    finally:
        scene.close()
        if writer is not None:
            writer.cleanup()
    return SceneResult.of(
        out, scene, writer, windows, win, start, threshold, polygons, n_polygons, preview
    )


def _polygons(writer: _Writer, scene: _Scene, path: Path, out: Path) -> int:
    from affine import Affine

    if writer.mask_path is not None:
        import rasterio

        with rasterio.open(writer.mask_path) as ds:
            return write_polygons(rasterio.band(ds, 1), ds.transform, ds.crs, path, str(out))
    transform = scene.transform if scene.transform is not None else Affine.identity()
    return write_polygons(writer.mask_array, transform, scene.crs, path, str(out))


def _run_windows(
    predictor: Predictor,
    scene: _Scene,
    writer: _Writer,
    window: int,
    overlap: float,
    batch: int,
    progress: bool,
) -> tuple[int, tuple[int, int]]:
    """Predict every window, blend into a one-window-high strip, flush final rows."""
    height, width = scene.height, scene.width
    win_h, win_w = min(window, height), min(window, width)
    rows = window_starts(height, win_h, overlap)
    cols = window_starts(width, win_w, overlap)
    ramp = window - max(1, int(round(window * (1 - overlap))))
    total = len(rows) * len(cols)
    bar = None
    if progress and interactive_stdout():  # no escape codes in redirected output and log files
        import keras

        bar = keras.utils.Progbar(total, unit_name="window")
    logger.info(
        "scene %dx%d px: %d x %d windows of %dx%d px, overlap %.2f",
        height,
        width,
        len(rows),
        len(cols),
        win_h,
        win_w,
        overlap,
    )
    # accumulators for scene rows [top, top + win_h): weighted probability sum and weights
    acc = np.zeros((win_h, width), np.float32)
    wsum = np.zeros((win_h, width), np.float32)
    top = 0
    done = 0
    no_dem = 0
    for i, row in enumerate(rows):
        if row > top:  # rows above `row` get no more windows: final
            shift = row - top
            writer.write(top, _blend(acc[:shift], wsum[:shift]))
            acc = np.concatenate([acc[shift:], np.zeros((shift, width), np.float32)])
            wsum = np.concatenate([wsum[shift:], np.zeros((shift, width), np.float32)])
            top = row
        for k in range(0, len(cols), batch):
            chunk = cols[k : k + batch]
            images = dems = None
            if scene.image is not None and predictor.settings.uses_image:
                images = np.stack([scene.image.read(row, c, win_h, win_w) for c in chunk])
            if scene.dem is not None and predictor.settings.uses_dem:
                dems = np.stack([scene.dem.read(row, c, win_h, win_w) for c in chunk])
            probs = predictor.predict_batch(images, dems)  # (b, win_h, win_w)
            for j, (col, prob) in enumerate(zip(chunk, probs, strict=True)):
                if dems is not None and not np.isfinite(dems[j]).any():
                    no_dem += 1  # nothing to predict from: left as nodata (weight 0)
                    continue
                weight = blend_weights(
                    win_h,
                    win_w,
                    ramp,
                    top=i == 0,
                    bottom=i == len(rows) - 1,
                    left=k + j == 0,
                    right=k + j == len(cols) - 1,
                )
                acc[:, col : col + win_w] += weight * prob
                wsum[:, col : col + win_w] += weight
            done += len(chunk)
            if bar is not None:
                bar.update(done)
    writer.write(top, _blend(acc[: height - top], wsum[: height - top]))
    if no_dem:
        logger.warning(
            "%d of %d windows have no valid DEM cell (all nodata): written as nodata (NaN in "
            ".tif/.npy, 0 in .png) where no other window covers them",
            no_dem,
            total,
        )
    return total, (win_h, win_w)


def _blend(acc: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    """Weighted mean probability; NaN (nodata) where no window contributed."""
    out = np.full(acc.shape, np.nan, np.float32)
    np.divide(acc, wsum, out=out, where=wsum > 0)
    return out
