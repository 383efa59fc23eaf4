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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import DataError, UserError
from landslide_tf.predict import Predictor, check_extents

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 256
DEFAULT_OVERLAP = 0.25
#: Scene files read with rasterio; anything else (PNG, JPEG) is read whole with OpenCV.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
#: GDAL block cache (MiB) while predicting a scene, unless $GDAL_CACHEMAX is set: GDAL's own
#: default (5 % of RAM) would let the cache, and so the memory, grow with the scene.
GDAL_CACHE_MB = 64
#: A non-georeferenced DEM of a different size than the image is resampled whole: cap it.
MAX_WHOLE_DEM_PIXELS = 4096 * 4096

_NO_RASTERIO = (
    "GeoTIFF scenes and polygons need rasterio, an optional extra: "
    "pip install 'landslide_tf[geo]' (or pip install rasterio)"
)


def require_rasterio() -> Any:
    """Import rasterio or raise a one-line ``UserError`` telling how to install it."""
    try:
        import rasterio
    except ImportError as exc:
        raise UserError(_NO_RASTERIO) from exc
    return rasterio


def _is_raster(path: str | Path) -> bool:
    return Path(path).suffix.lower() in RASTER_SUFFIXES


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


# ----------------------------------------------------------------------------- sources


class _ArraySource:
    """An in-memory raster (small PNG scenes), read by window."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.height, self.width = array.shape[:2]

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return self.array[row : row + height, col : col + width]


class _RasterImage:
    """RGB from a rasterio dataset, read by window: ``(h, w, 3)`` uint8."""

    def __init__(self, dataset: Any) -> None:
        self.ds = dataset
        self.height, self.width = dataset.height, dataset.width
        if dataset.count < 3:
            raise DataError(f"{dataset.name}: scene has {dataset.count} band(s), expected RGB (3)")
        if dataset.dtypes[0] != "uint8":
            raise DataError(
                f"{dataset.name}: scene is {dataset.dtypes[0]}, expected 8-bit RGB "
                "(rescale it, e.g. gdal_translate -ot Byte -scale)"
            )

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        from rasterio.windows import Window

        bands = self.ds.read([1, 2, 3], window=Window(col, row, width, height))  # (3, h, w)
        return np.moveaxis(bands, 0, -1)


class _RasterDem:
    """A DEM band (or a WarpedVRT of it) read by window, nodata -> NaN: ``(h, w)`` float32."""

    def __init__(self, dataset: Any, nodata: float | None) -> None:
        self.ds = dataset
        self.nodata = nodata

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        from rasterio.windows import Window

        dem = self.ds.read(1, window=Window(col, row, width, height)).astype(np.float32)
        if self.nodata is not None and not math.isnan(self.nodata):
            dem[dem == self.nodata] = np.nan
        return dem


def _read_png_rgb(path: Path) -> np.ndarray:
    from landslide_tf.data import read_rgb

    return read_rgb(path)


def _read_png_dem(path: Path) -> np.ndarray:
    from landslide_tf.data import read_dem

    return read_dem(path)


def _resample_whole(dem: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resample of a whole (small) DEM array onto ``(height, width)``."""
    import cv2

    if dem.shape == (height, width):
        return dem
    if dem.size > MAX_WHOLE_DEM_PIXELS:
        raise DataError(
            f"DEM {dem.shape[0]}x{dem.shape[1]} px without georeferencing does not match the "
            f"image grid {height}x{width}: georeference both or resample the DEM first"
        )
    return cv2.resize(dem, (width, height), interpolation=cv2.INTER_LINEAR)


def _coverage(image_bounds: Any, dem_bounds: tuple[float, ...]) -> float:
    """Share of the image extent covered by the DEM extent (both in the image CRS)."""
    left = max(image_bounds.left, dem_bounds[0])
    bottom = max(image_bounds.bottom, dem_bounds[1])
    right = min(image_bounds.right, dem_bounds[2])
    top = min(image_bounds.top, dem_bounds[3])
    area = (image_bounds.right - image_bounds.left) * (image_bounds.top - image_bounds.bottom)
    inter = max(0.0, right - left) * max(0.0, top - bottom)
    return inter / area if area > 0 else 0.0


@dataclasses.dataclass
class _Scene:
    """Opened inputs: image and DEM sources on one grid, plus georeferencing."""

    image: Any
    dem: Any
    height: int
    width: int
    crs: Any = None
    transform: Any = None
    closers: list[Any] = dataclasses.field(default_factory=list)

    def close(self) -> None:
        for item in reversed(self.closers):
            item.close()


def open_scene(
    image: str | Path | None,
    dem: str | Path | None,
    *,
    dem_nodata: float | None = None,
) -> _Scene:
    """Open an image (and DEM) for window reads, the DEM on the image grid.

    Georeferenced pairs are aligned through their CRS and transforms (the DEM is warped
    bilinearly onto the image grid; cells outside the DEM become nodata). Without
    georeferencing the DEM is assumed to span the image (its aspect ratio must match).

    Raises:
        DataError: unreadable files, disjoint extents, mismatched aspect ratios.
        UserError: a GeoTIFF without rasterio installed.
    """
    scene = _Scene(image=None, dem=None, height=0, width=0)
    try:
        _open_into(scene, image, dem, dem_nodata)
    except BaseException:
        scene.close()
        raise
    return scene


def _open_dataset(path: Path) -> Any:
    rasterio = require_rasterio()
    if not path.is_file():
        raise DataError(f"scene file not found: {path}")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _open_into(
    scene: _Scene, image: str | Path | None, dem: str | Path | None, dem_nodata: float | None
) -> None:
    image_ds = dem_ds = None
    if image is not None:
        image = Path(image)
        if _is_raster(image):
            image_ds = _open_dataset(image)
            scene.closers.append(image_ds)
            scene.image = _RasterImage(image_ds)
            scene.crs, scene.transform = image_ds.crs, image_ds.transform
        else:
            scene.image = _ArraySource(_read_png_rgb(image))
        scene.height, scene.width = scene.image.height, scene.image.width
    if dem is None:
        return
    dem = Path(dem)
    if _is_raster(dem):
        dem_ds = _open_dataset(dem)
        scene.closers.append(dem_ds)
        nodata = dem_nodata if dem_nodata is not None else dem_ds.nodata
        if image is None:  # DEM-only model: the DEM grid is the scene grid
            scene.dem = _RasterDem(dem_ds, nodata)
            scene.height, scene.width = dem_ds.height, dem_ds.width
            scene.crs, scene.transform = dem_ds.crs, dem_ds.transform
            return
        if image_ds is not None and image_ds.crs is not None and dem_ds.crs is not None:
            scene.dem = _warped_dem(scene, image_ds, dem_ds, nodata, dem)
            scene.closers.append(scene.dem.ds)
            return
        if (dem_ds.height, dem_ds.width) == (scene.height, scene.width):
            scene.dem = _RasterDem(dem_ds, nodata)
            return
        check_extents((scene.height, scene.width), (dem_ds.height, dem_ds.width))
        if dem_ds.width * dem_ds.height > MAX_WHOLE_DEM_PIXELS:
            raise DataError(
                f"{dem}: {dem_ds.height}x{dem_ds.width} px without georeferencing does not "
                f"match the image grid {scene.height}x{scene.width}"
            )
        array = dem_ds.read(1).astype(np.float32)
    else:
        array = _read_png_dem(dem).astype(np.float32)
        nodata = dem_nodata
        if image is None:
            scene.height, scene.width = array.shape
    if nodata is not None and not math.isnan(nodata):
        array[array == nodata] = np.nan
    check_extents((scene.height, scene.width), array.shape)
    scene.dem = _ArraySource(_resample_whole(array, scene.height, scene.width))


def _warped_dem(
    scene: _Scene, image_ds: Any, dem_ds: Any, nodata: float | None, path: Path
) -> _RasterDem:
    """A WarpedVRT of the DEM on the image grid, checking the extents first."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import transform_bounds

    dem_bounds = transform_bounds(dem_ds.crs, image_ds.crs, *dem_ds.bounds)
    covered = _coverage(image_ds.bounds, dem_bounds)
    if covered <= 0:
        raise DataError(
            f"DEM {path} (bounds {tuple(round(b, 3) for b in dem_bounds)} in the image CRS) "
            f"does not overlap the image (bounds {tuple(round(b, 3) for b in image_ds.bounds)})"
        )
    if covered < 0.999:
        logger.warning(
            "DEM %s covers %.1f %% of the image extent; uncovered cells are nodata",
            path,
            100 * covered,
        )
    vrt = WarpedVRT(
        dem_ds,
        crs=image_ds.crs,
        transform=image_ds.transform,
        width=image_ds.width,
        height=image_ds.height,
        resampling=Resampling.bilinear,
        src_nodata=nodata,
        nodata=np.nan,
        dtype="float32",
    )
    return _RasterDem(vrt, None)


# ----------------------------------------------------------------------------- writers


class _Writer:
    """Row-strip sink for probabilities (and the thresholded mask for polygons)."""

    def __init__(self, out: Path, scene: _Scene, threshold: float, polygons: bool) -> None:
        self.out = out
        self.threshold = threshold
        self.landslide_pixels = 0
        self.geo = _is_raster(out)
        self.mask_path: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.mask_array: np.ndarray | None = None
        out.parent.mkdir(parents=True, exist_ok=True)
        if self.geo:
            rasterio = require_rasterio()
            profile = {
                "driver": "GTiff",
                "height": scene.height,
                "width": scene.width,
                "count": 1,
                "crs": scene.crs,
                "transform": scene.transform,
                "compress": "deflate",
                "BIGTIFF": "IF_SAFER",
            }
            self.prob_ds = rasterio.open(out, "w", dtype="float32", **profile)
            self.mask_ds = None
            if polygons:
                self._tmp = tempfile.TemporaryDirectory(dir=out.parent, prefix=".mask-")
                self.mask_path = Path(self._tmp.name) / "mask.tif"
                self.mask_ds = rasterio.open(self.mask_path, "w", dtype="uint8", **profile)
        else:
            if out.suffix.lower() not in (".png", ".npy"):
                raise UserError(f"{out}: scene outputs are .tif (GeoTIFF), .png or .npy")
            self.prob_array = np.zeros((scene.height, scene.width), np.float32)
            if polygons:
                self.mask_array = np.zeros((scene.height, scene.width), np.uint8)

    def write(self, row: int, prob: np.ndarray) -> None:
        """Write final probability rows ``(rows, width)`` starting at scene row ``row``."""
        mask = (prob >= self.threshold).astype(np.uint8)
        self.landslide_pixels += int(mask.sum())
        if self.geo:
            from rasterio.windows import Window

            window = Window(0, row, prob.shape[1], prob.shape[0])
            self.prob_ds.write(prob[np.newaxis], window=window)
            if self.mask_ds is not None:
                self.mask_ds.write(mask[np.newaxis], window=window)
        else:
            self.prob_array[row : row + prob.shape[0]] = prob
            if self.mask_array is not None:
                self.mask_array[row : row + prob.shape[0]] = mask

    def close(self) -> None:
        """Flush files (PNG: 8-bit probabilities 0..255; .npy: float32)."""
        if self.geo:
            self.prob_ds.close()
            if self.mask_ds is not None:
                self.mask_ds.close()
        elif self.out.suffix.lower() == ".npy":
            np.save(self.out, self.prob_array)
        else:
            import cv2

            if not cv2.imwrite(str(self.out), np.round(self.prob_array * 255).astype(np.uint8)):
                raise UserError(f"cannot write {self.out}")

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


# ----------------------------------------------------------------------------- polygons


def _ring_area(ring: list[Any]) -> float:
    """Signed shoelace area of a closed ring of ``(x, y)`` points."""
    xy = np.asarray(ring, np.float64)
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * float(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))


def polygon_area(coordinates: list[list[Any]]) -> float:
    """Area of a GeoJSON polygon (exterior minus holes), in squared coordinate units."""
    exterior, *holes = coordinates
    return abs(_ring_area(exterior)) - sum(abs(_ring_area(h)) for h in holes)


def _shapes(source: Any, transform: Any) -> Iterator[tuple[dict[str, Any], float]]:
    from rasterio import features

    yield from features.shapes(source, mask=source, connectivity=8, transform=transform)


def write_polygons(
    mask: Any,
    transform: Any,
    crs: Any,
    path: str | Path,
    source: str = "",
) -> int:
    """Trace landslide polygons from a binary mask and write them as GeoJSON.

    Args:
        mask: ``(H, W)`` uint8 array or a rasterio band (``rasterio.band(ds, 1)``; GDAL then
            streams it, so it need not fit in memory).
        transform: pixel -> CRS affine transform (identity: pixel coordinates).
        crs: the CRS (or None).
        path: GeoJSON file to write.
        source: recorded as the collection's ``source``.

    Returns:
        The number of polygons. Each feature has ``id``, ``area`` (CRS units squared; pixels
        when not georeferenced) and ``area_px``.
    """
    require_rasterio()
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    features = []
    for geometry, _ in _shapes(mask, transform):
        coords = [[list(point) for point in ring] for ring in geometry["coordinates"]]
        area = polygon_area(coords)
        features.append(
            {
                "type": "Feature",
                "id": len(features),
                "geometry": {"type": "Polygon", "coordinates": coords},
                "properties": {
                    "id": len(features),
                    "area": area,
                    "area_px": int(round(area / pixel_area)) if pixel_area else None,
                },
            }
        )
    units = "pixels"
    if crs is not None:
        units = f"{crs.linear_units or 'CRS unit'}^2"
    collection: dict[str, Any] = {
        "type": "FeatureCollection",
        "source": source,
        "area_units": units,
        "features": features,
    }
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": crs.to_string()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(collection) + "\n")
    return len(features)


# ----------------------------------------------------------------------------- predict


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
        return "\n".join(lines)


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
        progress: show a progress bar (``keras.utils.Progbar``).

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
        windows, win = _run_windows(predictor, scene, writer, window, overlap, batch, progress)
        writer.close()
        n_polygons = None
        if polygons is not None:
            n_polygons = _polygons(writer, scene, Path(polygons), out)
    finally:
        scene.close()
        if writer is not None:
            writer.cleanup()
    return SceneResult(
        out=out,
        polygons=Path(polygons) if polygons is not None else None,
        height=scene.height,
        width=scene.width,
        windows=windows,
        window=win,
        seconds=time.perf_counter() - start,
        threshold=threshold,
        landslide_pixels=writer.landslide_pixels,
        n_polygons=n_polygons,
        georeferenced=scene.crs is not None,
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
    for i, row in enumerate(rows):
        if row > top:  # rows above `row` get no more windows: final
            shift = row - top
            writer.write(top, acc[:shift] / wsum[:shift])
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
    writer.write(top, acc[: height - top] / wsum[: height - top])
    return total, (win_h, win_w)
