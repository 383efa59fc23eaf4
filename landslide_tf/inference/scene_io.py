"""Scene rasters for ``landslide_tf.inference.scene``: window-by-window readers and row-strip writers.

``open_scene`` opens an image (and DEM) for window reads with the DEM on the image grid:
rasterio ``Window`` reads for GeoTIFFs (the DEM through a ``WarpedVRT`` onto the image grid),
whole in-memory arrays for small PNGs. ``SceneWriter`` writes the blended probabilities (and the
thresholded mask for polygons) in row strips, so memory is bounded by the window, not the
scene.

rasterio is optional (``pip install ".[geo]"``): PNG scenes work without it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.data.folder import read_png_bands
from landslide_tf.data.nodata import check_dem_nodata
from landslide_tf.data.spec import InputSpec, bijie_spec
from landslide_tf.errors import DataError, UserError, require_module
from landslide_tf.files import (
    atomic_write_bytes,
    encode_image,
    no_space,
    temporary_path,
    write_error,
)
from landslide_tf.inference.settings import check_extents

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


def is_raster(path: str | Path) -> bool:
    return Path(path).suffix.lower() in RASTER_SUFFIXES


# ----------------------------------------------------------------------------- sources


class ArraySource:
    """An in-memory raster (small PNG scenes), read by window."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.height, self.width = array.shape[:2]

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        return self.array[row : row + height, col : col + width]


def band_plan(count: int, descriptions: list[str | None], spec: InputSpec) -> list[Any]:
    """1-based scene band numbers for the spec's image bands (``"dem"`` = from ``--dem``).

    The bands are found by

    1. band descriptions, when the scene names every band the model needs;
    2. position, when the scene has the training format's full band list
       (``spec.source_bands``; Landslide4Sense: 14 bands B1..B12, slope, dem; a folder: its
       image bands, a ``dem`` band taken from ``dem/`` coming from ``--dem``);
    3. order, when the scene has exactly the model's bands, or (no source band list, as for
       RGB imagery) at least as many: the first ones.
    """
    wanted = [b.name for b in spec.image_bands]
    named = {d: i + 1 for i, d in enumerate(descriptions) if d}
    if all(b in named for b in wanted):
        return [named[b] for b in wanted]
    full = list(spec.source_bands)
    external = "dem" in full and full[-1] == "dem" and spec.data_format == "folder"
    in_file = full[:-1] if external else full
    if in_file and count == len(in_file):
        return ["dem" if b == "dem" and external else in_file.index(b) + 1 for b in wanted]
    if count == len(wanted) or (not in_file and count > len(wanted)):
        return list(range(1, len(wanted) + 1))
    expected = (
        f"the {len(in_file)} bands of the training data ({', '.join(in_file)}) or "
        if in_file
        else ""
    )
    raise DataError(
        f"the scene has {count} band(s) but the model needs {', '.join(wanted)}: give a scene "
        f"with those band descriptions, {expected}exactly the model's {len(wanted)} bands in "
        "order"
    )


class PlannedBands:
    """The spec's image bands of a scene, read by window as ``(h, w, bands)``: the bands of
    ``plan`` (``band_plan``) from the source, a ``"dem"`` entry from ``dem`` (a DEM source
    on the scene grid). Subclasses read the source's bands (``source_bands``)."""

    plan: list[Any]
    dem: Any

    @property
    def needs_dem(self) -> bool:
        """Whether a band of the plan comes from ``--dem``."""
        return "dem" in self.plan

    def source_bands(
        self, numbers: list[int], row: int, col: int, height: int, width: int
    ) -> list[np.ndarray]:
        """The source's bands ``numbers`` (1-based) of one window, each ``(h, w)``."""
        raise NotImplementedError

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        numbers = [b for b in self.plan if b != "dem"]
        bands = self.source_bands(numbers, row, col, height, width)
        by_number = dict(zip(numbers, bands, strict=True))
        layers = [
            self.dem.read(row, col, height, width) if b == "dem" else by_number[b]
            for b in self.plan
        ]
        return np.stack(layers, axis=-1)


class RasterImage(PlannedBands):
    """The spec's image bands from a rasterio dataset.

    uint8 imagery stays uint8 (and must be 8-bit); float bands are read as float32 with the
    file's nodata value as NaN.
    """

    def __init__(self, dataset: Any, spec: InputSpec, dem: Any = None) -> None:
        self.ds = dataset
        self.height, self.width = dataset.height, dataset.width
        self.dtype = np.dtype(spec.image_dtype)
        self.plan = band_plan(dataset.count, list(dataset.descriptions), spec)
        self.dem = dem
        if self.dtype == np.uint8 and dataset.dtypes[0] != "uint8":
            raise DataError(
                f"{dataset.name}: scene is {dataset.dtypes[0]}, expected 8-bit RGB "
                "(rescale it, e.g. gdal_translate -ot Byte -scale)"
            )
        self.nodata = None if self.dtype == np.uint8 else dataset.nodata

    def source_bands(
        self, numbers: list[int], row: int, col: int, height: int, width: int
    ) -> list[np.ndarray]:
        from rasterio.windows import Window

        bands = self.ds.read(numbers, window=Window(col, row, width, height))  # (b, h, w)
        bands = bands.astype(self.dtype, copy=False)
        if self.nodata is not None and not math.isnan(self.nodata):
            bands[bands == self.dtype.type(self.nodata)] = np.nan
        return list(bands)


class ArrayBands(PlannedBands):
    """The spec's image bands from an in-memory ``(H, W, C)`` float32 array: a PNG scene of
    a model trained on a folder of PNG tiles."""

    def __init__(self, array: np.ndarray, spec: InputSpec, dem: Any = None) -> None:
        self.array = array
        self.height, self.width = array.shape[:2]
        self.plan = band_plan(array.shape[-1], [], spec)
        self.dem = dem

    def source_bands(
        self, numbers: list[int], row: int, col: int, height: int, width: int
    ) -> list[np.ndarray]:
        window = self.array[row : row + height, col : col + width]
        return [window[..., number - 1] for number in numbers]


class RasterDem:
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
class Scene:
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
    spec: InputSpec | None = None,
) -> Scene:
    """Open an image (and DEM) for window reads, the DEM on the image grid.

    Georeferenced pairs are aligned through their CRS and transforms (the DEM is warped
    bilinearly onto the image grid; cells outside the DEM become nodata). Without
    georeferencing the DEM is assumed to span the image (its aspect ratio must match).

    Raises:
        DataError: unreadable files, disjoint extents, mismatched aspect ratios.
        UserError: a GeoTIFF without rasterio installed; float bands in a PNG; a band the
            model takes from ``--dem`` without one.

    ``spec`` (default: Bijie RGB + DEM) says which bands the image source yields
    (``band_plan``); a DEM is read when given, as the ``dem`` input or as the image band the
    plan takes from it.
    """
    spec = spec if spec is not None else bijie_spec()
    scene = Scene(image=None, dem=None, height=0, width=0)
    try:
        _open_into(scene, image, dem, dem_nodata, spec)
    except BaseException:
        scene.close()
        raise
    return scene


def open_dataset(path: Path) -> Any:
    rasterio = require_rasterio()
    if not path.is_file():
        raise DataError(f"scene file not found: {path}")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _open_into(
    scene: Scene,
    image: str | Path | None,
    dem: str | Path | None,
    dem_nodata: float | None,
    spec: InputSpec,
) -> None:
    image_ds = None
    if image is not None:
        image = Path(image)
        if is_raster(image):
            image_ds = open_dataset(image)
            scene.closers.append(image_ds)
            scene.image = RasterImage(image_ds, spec)
            scene.crs, scene.transform = image_ds.crs, image_ds.transform
        elif spec.image_dtype == "uint8":
            scene.image = ArraySource(_read_png_rgb(image))
        elif image.suffix.lower() == ".png":  # bands as a folder of PNG tiles trained them
            scene.image = ArrayBands(read_png_bands(image), spec)
        else:
            raise UserError(
                f"{image}: this model reads {spec.image_dtype} bands from a GeoTIFF or a "
                f"PNG, not from a {image.suffix or 'plain'} file"
            )
        scene.height, scene.width = scene.image.height, scene.image.width
    needs_dem = getattr(scene.image, "needs_dem", False)
    if needs_dem and dem is None:
        raise UserError("this model uses a DEM from dem/: give the scene's --dem")
    if dem is None or not (spec.uses_dem or needs_dem):
        return
    try:
        _open_dem(scene, image, image_ds, Path(dem), dem_nodata, spec.nodata)
    finally:
        if isinstance(scene.image, PlannedBands):
            scene.image.dem = scene.dem


def _open_dem(
    scene: Scene,
    image: Path | None,
    image_ds: Any,
    dem: Path,
    dem_nodata: float | None,
    run_nodata: float | None = None,
) -> None:
    """Open ``dem`` onto the scene grid, its nodata value as NaN.

    The nodata value is ``dem_nodata``, else the GeoTIFF's tag, else ``run_nodata`` (the
    run's ``dem_nodata``); a NaN tag names no other value, so the run's applies too.
    """
    if is_raster(dem):
        dem_ds = open_dataset(dem)
        scene.closers.append(dem_ds)
        nodata = dem_nodata if dem_nodata is not None else dem_ds.nodata
        if run_nodata is not None and (nodata is None or math.isnan(nodata)):
            nodata = run_nodata
        if nodata is None:  # no flag, tag or run value: refuse a spike
            check_dem_nodata(_overview(dem_ds), dem, None)
        if image is None:  # DEM-only model: the DEM grid is the scene grid
            scene.dem = RasterDem(dem_ds, nodata)
            scene.height, scene.width = dem_ds.height, dem_ds.width
            scene.crs, scene.transform = dem_ds.crs, dem_ds.transform
            return
        if image_ds is not None and image_ds.crs is not None and dem_ds.crs is not None:
            scene.dem = warped_dem(scene, image_ds, dem_ds, nodata, dem)
            scene.closers.append(scene.dem.ds)
            return
        if (dem_ds.height, dem_ds.width) == (scene.height, scene.width):
            scene.dem = RasterDem(dem_ds, nodata)
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
        nodata = dem_nodata if dem_nodata is not None else run_nodata
        check_dem_nodata(array, dem, nodata)
        if image is None:
            scene.height, scene.width = array.shape
    if nodata is not None and not math.isnan(nodata):
        array[array == nodata] = np.nan
    check_extents((scene.height, scene.width), array.shape)
    scene.dem = ArraySource(_resample_whole(array, scene.height, scene.width))


def _overview(dem_ds: Any, side: int = 1024) -> np.ndarray:
    """The DEM's first band read at most ``side`` px a side (nearest: values kept)."""
    from rasterio.enums import Resampling

    shape = (min(dem_ds.height, side), min(dem_ds.width, side))
    return dem_ds.read(1, out_shape=shape, resampling=Resampling.nearest).astype(np.float32)


def warped_dem(
    scene: Scene, image_ds: Any, dem_ds: Any, nodata: float | None, path: Path
) -> RasterDem:
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
    return RasterDem(vrt, None)


# ----------------------------------------------------------------------------- writers


class SceneWriter:
    """Row-strip sink for probabilities (and the thresholded mask for polygons).

    A GeoTIFF is written strip by strip to a temporary name beside ``out``; ``finish``
    checks that it reads back and ``commit`` then moves it onto ``out`` (``close`` does
    both), so other outputs can be written in between and a failure of theirs leaves ``out``
    as it was. A failed or short write (a full disk) removes the temporary file and raises
    ``OSError`` naming ``out``; so does ``cleanup`` after any failure. PNG and ``.npy``
    outputs are encoded in memory and written atomically (``landslide_tf.files``) by
    ``commit``. With ``mask_png`` a PNG ``out`` is the 0/255 landslide mask instead of the
    8-bit probabilities.
    """

    def __init__(
        self,
        out: Path,
        scene: Scene,
        threshold: float,
        polygons: bool,
        *,
        mask_png: bool = False,
    ) -> None:
        self.out = out
        self.mask_png = mask_png
        self.encoded: bytes | None = None  # a finished .npy
        self.picture: np.ndarray | None = None  # a finished PNG
        self.tmp: Path | None = None
        self.prob_ds: Any = None
        self.mask_ds: Any = None
        self.threshold = threshold
        self.landslide_pixels = 0
        self.geo = is_raster(out)
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
            self.tmp = temporary_path(out)
            try:
                self.prob_ds = rasterio.open(
                    self.tmp, "w", dtype="float32", nodata=np.nan, **profile
                )
                if polygons:
                    self._tmp = tempfile.TemporaryDirectory(dir=out.parent, prefix=".mask-")
                    self.mask_path = Path(self._tmp.name) / "mask.tif"
                    self.mask_ds = rasterio.open(self.mask_path, "w", dtype="uint8", **profile)
            except Exception as exc:
                self.cleanup()  # nothing of this writer is left behind
                raise write_error(exc, out) from exc
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
            try:
                self.prob_ds.write(prob[np.newaxis], window=window)
            except Exception as exc:
                raise write_error(exc, self.out) from exc
            if self.mask_ds is not None:
                self.mask_ds.write(mask[np.newaxis], window=window)
        else:
            self.prob_array[row : row + prob.shape[0]] = prob
            if self.mask_array is not None:
                self.mask_array[row : row + prob.shape[0]] = mask

    def finish(self) -> None:
        """Complete the output without moving it onto ``out`` yet: a GeoTIFF is closed and
        read back (so is the mask for polygons); PNG (8-bit probabilities 0..255, or the
        0/255 mask) and ``.npy`` (float32) are encoded in memory."""
        if self.geo:
            try:
                ds, self.prob_ds = self.prob_ds, None
                ds.close()
                if self.mask_ds is not None:
                    ds, self.mask_ds = self.mask_ds, None
                    ds.close()
                    check_tiff(self.mask_path, self.out)
                check_tiff(self.tmp, self.out)
            except OSError:
                raise
            except Exception as exc:
                raise write_error(exc, self.out) from exc
        elif self.out.suffix.lower() == ".npy":
            buffer = io.BytesIO()
            np.save(buffer, self.prob_array)
            self.encoded = buffer.getvalue()
        elif self.mask_png:  # NaN (nodata) is no landslide
            with np.errstate(invalid="ignore"):
                self.picture = (self.prob_array >= self.threshold).astype(np.uint8) * 255
        else:
            prob = np.nan_to_num(self.prob_array, nan=0.0)  # PNG has no nodata
            self.picture = np.round(prob * 255).astype(np.uint8)

    def commit(self) -> None:
        """Move the finished output onto ``out`` (PNG and ``.npy``: write it atomically)."""
        if self.geo:
            os.replace(self.tmp, self.out)
            self.tmp = None
        elif self.encoded is not None:
            data, self.encoded = self.encoded, None
            atomic_write_bytes(self.out, data)
        else:
            picture, self.picture = self.picture, None
            encode_image(self.out, picture)

    def close(self) -> None:
        """``finish``, then ``commit``: the output is in place."""
        self.finish()
        self.commit()

    def cleanup(self) -> None:
        """Close what is open and remove the temporary files (after a failure: everything
        this writer started)."""
        for ds in (self.prob_ds, self.mask_ds):
            if ds is not None:
                try:
                    ds.close()
                except Exception:  # noqa: BLE001 - already failing; the file goes anyway
                    logger.debug("closing a failed GeoTIFF", exc_info=True)
        self.prob_ds = self.mask_ds = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def check_tiff(path: Path | None, out: Path) -> None:
    """Read a written GeoTIFF back (its first and last rows): libtiff reports a full disk
    by logging, so a file that does not read back completely is an ``OSError`` for ``out``."""
    import rasterio
    from rasterio.windows import Window

    if path is None or not path.is_file() or path.stat().st_size == 0:
        raise no_space(out, "the file could not be written completely")
    try:
        with rasterio.open(path) as ds:
            for row in {0, ds.height - 1}:
                ds.read(1, window=Window(0, row, ds.width, 1))
    except Exception as exc:
        raise no_space(
            out, f"the file could not be written completely ({' '.join(str(exc).split())})"
        ) from exc
