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

Every model takes this one path; the run's input spec says what a window is made of.
Multi-band models (``l4s``, ``folder``) read their bands from a multi-band GeoTIFF (or a PNG
read as a folder of PNG tiles is, for small scenes), found by
band description, by position in the training format's band list or by order
(``landslide_tf.inference.scene_io.band_plan``); a ``dem`` band that a ``folder`` run took
from ``dem/`` comes from ``--dem``; the scene's nodata value becomes NaN (0 after
normalisation). The default window is the typical training tile side when the run recorded it
(``native_size``), else ``DEFAULT_WINDOW``.

Windowing, blending and ``predict_scene`` live here; raster reading and writing in
``landslide_tf.inference.scene_io``; polygon tracing in ``landslide_tf.inference.polygons``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import UserError
from landslide_tf.inference.polygons import write_polygons
from landslide_tf.inference.predict import (
    POLYGON_OUTPUTS,
    OutputSet,
    check_out_path,
    check_outputs_apart,
)
from landslide_tf.inference.predictor import Predictor
from landslide_tf.inference.preview import ScenePreview
from landslide_tf.inference.scene_io import (
    Scene,
    SceneWriter,
    is_raster,
    open_scene,
    require_rasterio,
)

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 256
DEFAULT_OVERLAP = 0.25
#: GDAL block cache (MiB) while predicting a scene, unless $GDAL_CACHEMAX is set: GDAL's own
#: default (5 % of RAM) would let the cache, and so the memory, grow with the scene.
GDAL_CACHE_MB = 64


# ----------------------------------------------------------------------------- result


@dataclasses.dataclass
class SceneResult:
    """What ``predict_scene`` did."""

    out: Path
    polygons: Path | None
    height: int
    width: int
    windows: int
    window: tuple[int, int]
    seconds: float
    threshold: float
    landslide_pixels: int
    n_polygons: int | None
    georeferenced: bool
    preview: Path | None = None  # issue 16: downsampled RGB with outlines

    @classmethod
    def of(cls, out: Path, scene: Any, writer: Any, windows: int, window: tuple[int, int],
           start: float, threshold: float, polygons: Any, n_polygons: int | None,
           preview: Any = None) -> SceneResult:  # fmt: skip
        """The result of a finished run over ``scene`` (timed from ``start``)."""
        return cls(
            out=out,
            polygons=Path(polygons) if polygons is not None else None,
            height=scene.height,
            width=scene.width,
            windows=windows,
            window=window,
            seconds=time.perf_counter() - start,
            threshold=threshold,
            landslide_pixels=writer.landslide_pixels,
            n_polygons=n_polygons,
            georeferenced=scene.crs is not None,
            preview=Path(preview) if preview else None,
        )

    def format(self) -> str:
        """A short human-readable summary."""
        share = 100 * self.landslide_pixels / max(1, self.height * self.width)
        lines = [
            f"wrote {self.out} ({self.height}x{self.width} px, {self.windows} windows of "
            f"{self.window[0]}x{self.window[1]} px, {self.seconds:.1f} s; "
            f"{self.landslide_pixels} landslide px = {share:.2f} % at threshold "
            f"{self.threshold:.3f}{'' if self.georeferenced else '; not georeferenced'})"
        ]
        if self.polygons is not None:
            lines.append(f"wrote {self.polygons} ({self.n_polygons} polygons)")
        if self.preview is not None:
            lines.append(f"wrote {self.preview} (downsampled RGB, landslide outlines)")
        return "\n".join(lines)


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


def check_scene_options(
    *,
    polygons: str | Path | None = None,
    preview: str | Path | None = None,
    window: int | None = None,
    overlap: float = DEFAULT_OVERLAP,
    batch: int = 4,
) -> None:
    """Check the options of a scene prediction that need no model (before it is loaded).

    Raises:
        UserError: ``window`` under 8 px, ``overlap`` outside [0, 0.9], ``batch`` under 1,
            ``polygons`` without rasterio or not a ``.geojson`` file that can be written,
            ``preview`` not a ``.png`` file that can be written.
    """
    if window is not None and window < 8:
        raise UserError(f"--window must be >= 8 px, got {window}")
    if not 0 <= overlap <= 0.9:
        raise UserError(f"--overlap must be in [0, 0.9], got {overlap}")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    if polygons is not None:
        require_rasterio()
        check_out_path(polygons, POLYGON_OUTPUTS, "--polygons")
    if preview is not None:
        check_out_path(preview, (".png",), "--preview")


def metre_pixel_size(crs: Any, transform: Any) -> float | None:
    """The ground size of one scene pixel in metres, or None where it is not known in metres.

    Only a projected CRS has linear units (a geographic one, such as EPSG:4326, is in
    degrees); they are converted to metres (US survey feet too). No CRS: None.
    """
    if crs is None or transform is None or not getattr(crs, "is_projected", False):
        return None
    try:
        _, to_metres = crs.linear_units_factor
    except Exception:  # noqa: BLE001 - rasterio's CRSError: no linear units known
        return None
    size = abs(float(transform.a)) * float(to_metres)
    return size if np.isfinite(size) and size > 0 else None


def terrain_scale_warning(spec: Any, ground: float | None) -> str | None:
    """Why the terrain channels would be wrong on this scene, or None.

    Slope and aspect take the run's ``--pixel-size`` as the ground size of one input pixel;
    a scene window is read on the scene's grid, so the slope is in degrees only when the
    scene's pixels have that size (``ground``, metres; None where it is not known).
    """
    if not spec.derived or spec.pixel_size is None or ground is None:
        return None
    trained = float(spec.pixel_size)
    if abs(ground - trained) <= 0.01 * trained:
        return None
    return (
        f"the scene's pixels are {ground:g} m, the run's terrain channels "
        f"({', '.join(spec.derived)}) were computed for {trained:g} m pixels: slopes will be "
        f"{trained / ground:.3g}x off; resample the scene and DEM to {trained:g} m first "
        f"(gdalwarp -tr {trained:g} {trained:g})"
    )


def predict_scene(
    predictor: Predictor,
    image: str | Path | None,
    out: str | Path,
    *,
    dem: str | Path | None = None,
    polygons: str | Path | None = None,
    window: int | None = None,
    overlap: float = DEFAULT_OVERLAP,
    batch: int = 4,
    threshold: float | None = None,
    dem_nodata: float | None = None,
    progress: bool = False,
    preview: str | Path | None = None,
    mask_png: bool = False,
) -> SceneResult:
    """Predict a whole scene with overlapping, blended windows (any model).

    Every option and output path is checked before anything is read; the outputs are
    written together at the end (``out`` last), and a failure leaves none of them, with the
    files they would have replaced in place.

    Args:
        predictor: the model (``Predictor.load``).
        image: the scene imagery: RGB (GeoTIFF, or a PNG that fits in memory) or, for
            multi-band models, a multi-band GeoTIFF (or a PNG); None for DEM-only models.
        out: probability map: ``.tif`` (float32 GeoTIFF with the image's CRS and transform),
            ``.png`` (8-bit, 0..255) or ``.npy``.
        dem: DEM scene (any grid for GeoTIFFs: warped onto the image grid); for a
            ``folder`` run whose ``dem`` band came from ``dem/``, that band.
        polygons: GeoJSON of landslide polygons (needs rasterio).
        window: window size in scene pixels (each window is resized to the training size);
            default: the training tile side if recorded, else ``DEFAULT_WINDOW``.
        overlap: overlap between neighbouring windows, a fraction of ``window`` in [0, 0.9].
        batch: windows per network call.
        threshold: decision threshold for the mask and polygons (default: the model's).
        dem_nodata: DEM nodata value (default: the GeoTIFF's own, else the run's; NaN
            always is).
        progress: show a progress bar (``keras.utils.Progbar``); the caller decides whether
            its output is interactive.
        preview: also write this PNG: the scene downsampled to at most 1024 px a side with
            the outlines of the landslide mask (``landslide_tf.inference.preview``).
        mask_png: write ``out`` (a ``.png``) as the landslide mask, 255 where the
            probability is at least ``threshold``, else 0 (``predict --image`` of a
            multi-band model), instead of the probabilities.

    Returns:
        A ``SceneResult``.
    """
    settings = predictor.settings
    check_scene_options(
        polygons=polygons, preview=preview, window=window, overlap=overlap, batch=batch
    )
    window = int(window) if window is not None else settings.spec.native_size or DEFAULT_WINDOW
    if window < 8:
        raise UserError(f"--window must be >= 8 px, got {window}")
    if settings.uses_image and image is None:
        raise UserError(f"this model ({settings.modalities}) needs --scene imagery")
    if settings.uses_dem and dem is None:
        raise UserError(f"this model ({settings.modalities}) needs --dem")
    if mask_png and Path(out).suffix.lower() != ".png":
        raise UserError(f"--out {out}: a landslide mask is written as a .png file")
    check_outputs_apart(
        [("--scene", image), ("--dem", dem)],
        [("--out", out), ("--polygons", polygons), ("--preview", preview)],
    )
    threshold = settings.threshold if threshold is None else float(threshold)
    out = Path(out)
    with contextlib.ExitStack() as stack:
        if any(p is not None and is_raster(p) for p in (image, dem, out)):
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
            mask_png,
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
    mask_png: bool = False,
) -> SceneResult:
    settings = predictor.settings
    start = time.perf_counter()
    scene = open_scene(
        image if settings.uses_image else None,
        dem,
        dem_nodata=dem_nodata,
        spec=settings.spec,
    )
    warning = terrain_scale_warning(settings.spec, metre_pixel_size(scene.crs, scene.transform))
    if warning is not None:
        logger.warning("%s", warning)
    writer: SceneWriter | None = None
    # all or nothing: the map is finished under a temporary name, the extras are written
    # (an earlier file at their path kept aside), then the map is moved onto `out`
    extras = OutputSet()
    try:
        writer = SceneWriter(out, scene, threshold, polygons is not None, mask_png=mask_png)
        picture = ScenePreview(scene.height, scene.width, threshold) if preview else None
        sink = picture.tap(writer) if picture is not None else writer
        windows, win = _run_windows(predictor, scene, sink, window, overlap, batch, progress)
        writer.finish()
        n_polygons = None
        if polygons is not None:
            with extras.writing(polygons):
                n_polygons = _polygons(writer, scene, Path(polygons), out)
        if picture is not None:
            pixel = metre_pixel_size(scene.crs, scene.transform)  # no scale bar in degrees
            with extras.writing(preview):
                picture.save(preview, picture.background(scene, settings.uses_image), pixel)
        writer.commit()
    except BaseException:
        extras.rollback()
        raise
    finally:
        scene.close()
        if writer is not None:
            writer.cleanup()
    extras.commit()
    return SceneResult.of(
        out, scene, writer, windows, win, start, threshold, polygons, n_polygons, preview
    )


def _polygons(writer: SceneWriter, scene: Scene, path: Path, out: Path) -> int:
    from affine import Affine

    if writer.mask_path is not None:
        import rasterio

        with rasterio.open(writer.mask_path) as ds:
            return write_polygons(rasterio.band(ds, 1), ds.transform, ds.crs, path, str(out))
    transform = scene.transform if scene.transform is not None else Affine.identity()
    return write_polygons(writer.mask_array, transform, scene.crs, path, str(out))


def _run_windows(
    predictor: Predictor,
    scene: Scene,
    writer: SceneWriter,
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
    if progress:
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
                finite = np.isfinite(prob)
                if not finite.any():
                    # no valid DEM cell (NaN, or the nodata value): nothing to predict
                    # from, left as nodata (weight 0)
                    no_dem += 1
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
                # only finite probabilities count: a NaN cell would blank the neighbours'
                weight = np.where(finite, weight, 0.0).astype(np.float32)
                acc[:, col : col + win_w] += weight * np.where(finite, prob, 0.0)
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
