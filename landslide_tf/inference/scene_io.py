"""Scene rasters for ``landslide_tf.inference.scene``: window-by-window readers and row-strip writers.

``open_scene`` opens an image (and DEM) for window reads with the DEM on the image grid:
rasterio ``Window`` reads for GeoTIFFs (the DEM through a ``WarpedVRT`` onto the image grid),
whole in-memory arrays for small PNGs. ``_Writer`` writes the blended probabilities (and the
thresholded mask for polygons) in row strips, so memory is bounded by the window, not the
scene.

rasterio is optional (``pip install ".[geo]"``): PNG scenes work without it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import DataError, UserError, require_module
from landslide_tf.inference.core import check_extents

# The name these messages (e.g. partial DEM coverage) logged under before the split.
logger = logging.getLogger("landslide_tf.inference.scene")

#: Scene files read with rasterio; anything else (PNG, JPEG) is read whole with OpenCV.
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
#: A non-georeferenced DEM of a different size than the image is resampled whole: cap it.
MAX_WHOLE_DEM_PIXELS = 4096 * 4096

_NO_RASTERIO = (
    "GeoTIFF scenes and polygons need rasterio, an optional extra: "
    "pip install 'landslide_tf[geo]' (or pip install rasterio)"
)


def require_rasterio() -> Any:
    """Import rasterio or raise a one-line ``UserError`` telling how to install it."""
    return require_module("rasterio", _NO_RASTERIO)


def _is_raster(path: str | Path) -> bool:
    return Path(path).suffix.lower() in RASTER_SUFFIXES


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
            self.prob_ds = rasterio.open(out, "w", dtype="float32", nodata=np.nan, **profile)
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

            prob = np.nan_to_num(self.prob_array, nan=0.0)  # PNG has no nodata
            if not cv2.imwrite(str(self.out), np.round(prob * 255).astype(np.uint8)):
                raise UserError(f"cannot write {self.out}")

    def cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
