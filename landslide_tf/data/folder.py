"""Reading a folder of labelled rasters: ``images/`` + ``masks/`` (+ optional ``dem/``).

::

    <root>/images/<stem>.tif|.tiff|.png   any band count (the same in every image)
    <root>/masks/<stem>.tif|.png          one band (or colour: any channel), > 0 = landslide
    <root>/dem/<stem>.tif|.png            optional elevation, appended as the band "dem"

Images, masks and DEMs are paired by file stem. GeoTIFFs are read with rasterio (the
``geo`` extra): each raster's nodata value becomes NaN (ignored by the statistics, 0 after
normalisation; in a mask it is background); every image must have the same band count and
CRS, a mask must share its image's grid (size and transform) and a georeferenced DEM its
image's CRS and extent (its pixel size may differ). Band names are the GeoTIFF band
descriptions when every band has a distinct one, else ``1``..``N``. GIS side-car files
(``.tfw``, ``.aux.xml``, ``.prj``, ...) and ``Thumbs.db``/``desktop.ini`` are skipped.
``python -m landslide_tf.data chip`` writes this layout from a labelled scene.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.data.bijie import IGNORED_FILES
from landslide_tf.data.sample import Sample
from landslide_tf.errors import DataError, require_module

logger = logging.getLogger(__name__)

IMAGES, MASKS, DEM = "images", "masks", "dem"
SUFFIXES = (".tif", ".tiff", ".png")
GEO_SUFFIXES = (".tif", ".tiff")
#: GIS side-car files next to a raster, skipped when listing a folder: world files, the
#: projection, GDAL metadata (``.aux.xml``), overviews and masks.
SIDE_CAR_SUFFIXES = frozenset(".tfw .tifw .tiffw .pgw .pngw .wld .prj .xml .aux .ovr .msk".split())


def expected_layout(root: str | Path) -> str:
    """One line describing the layout (for error messages)."""
    return (
        f"expected {root}/images/<stem>.tif (or .png) and {root}/masks/<stem>.tif with the "
        "same stems (optional dem/<stem>.tif)"
    )


def detect(root: Path) -> bool:
    """Whether ``root`` looks like an ``images/`` + ``masks/`` folder."""
    return (root / IMAGES).is_dir() and (root / MASKS).is_dir()


def is_ignored(path: Path) -> bool:
    """Whether a file is not a tile: hidden, an OS file (``Thumbs.db``) or a GIS side-car."""
    name = path.name.lower()
    return name.startswith(".") or name in IGNORED_FILES or path.suffix.lower() in SIDE_CAR_SUFFIXES


def _files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if is_ignored(path) or path.is_dir():
            continue
        if path.suffix.lower() not in SUFFIXES:
            raise DataError(f"{path}: not a GeoTIFF or PNG; {expected_layout(folder.parent)}")
        if path.stem in files:
            raise DataError(f"{path}: two files with the stem {path.stem} in {folder}")
        files[path.stem] = path
    return files


def _is_geo(path: Path) -> bool:
    return path.suffix.lower() in GEO_SUFFIXES


def require_rasterio() -> Any:
    """Import rasterio or raise a one-line ``UserError`` telling how to install it."""
    return require_module(
        "rasterio",
        "GeoTIFF folders need rasterio, an optional extra: "
        "pip install 'landslide_tf[geo]' (or pip install rasterio)",
    )


def _open(path: Path) -> Any:
    rasterio = require_rasterio()
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"{path}: not a readable raster ({exc})") from None


def _header(path: Path) -> dict[str, Any]:
    """Band count, size, CRS, transform and descriptions of a raster (pixels not read)."""
    if _is_geo(path):
        with _open(path) as ds:
            return {
                "count": ds.count,
                "shape": (ds.height, ds.width),
                "crs": ds.crs.to_string() if ds.crs else None,
                "transform": tuple(ds.transform)[:6]
                if ds.crs or not ds.transform.is_identity
                else None,
                "descriptions": list(ds.descriptions),
            }
    array = _read_png(path)
    return {
        "count": 1 if array.ndim == 2 else array.shape[-1],
        "shape": array.shape[:2],
        "crs": None,
        "transform": None,
        "descriptions": [],
    }


def footprint(path: str | Path) -> tuple[str, tuple[float, float, float, float]] | None:
    """``(crs, (left, bottom, right, top))`` of a georeferenced GeoTIFF, else None."""
    path = Path(path)
    if not _is_geo(path):
        return None
    return _footprint(_header(path))


def _footprint(head: dict[str, Any]) -> tuple[str, tuple[float, float, float, float]] | None:
    if head["crs"] is None or head["transform"] is None:
        return None
    a, b, c, d, e, f = head["transform"]
    h, w = head["shape"]
    xs = [c, c + a * w, c + b * h, c + a * w + b * h]
    ys = [f, f + d * w, f + e * h, f + d * w + e * h]
    return head["crs"], (min(xs), min(ys), max(xs), max(ys))


def _check_dem_grid(dem: Path, image: Path, head: dict[str, Any]) -> None:
    """Refuse a georeferenced DEM in another CRS or extent than its georeferenced image.

    A DEM of another pixel size over the same extent is fine (it is resampled onto the image
    grid when read); bounds may differ by up to one image pixel.
    """
    ours = _footprint(head)
    theirs = _footprint(_header(dem)) if ours is not None and _is_geo(dem) else None
    if ours is None or theirs is None:
        return
    if theirs[0] != ours[0]:
        raise DataError(
            f"{dem}: DEM CRS {theirs[0]} but its image {image} has {ours[0]}; reproject the "
            "DEM onto the image grid"
        )
    a, b, _, d, e, _ = head["transform"]
    pixel = max(abs(a), abs(b), abs(d), abs(e))
    if not np.allclose(theirs[1], ours[1], rtol=0, atol=pixel):
        shown = [tuple(round(v, 3) for v in bounds) for bounds in (theirs[1], ours[1])]
        raise DataError(
            f"{dem}: DEM bounds {shown[0]} differ from its image {image} ({shown[1]}) by more "
            "than a pixel; crop and resample the DEM onto the image grid"
        )


def _read_png(path: Path) -> np.ndarray:
    import cv2

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise DataError(f"{path}: not a readable PNG")
    if array.ndim == 3 and array.shape[-1] in (3, 4):  # OpenCV reads BGR(A)
        array = array[..., [2, 1, 0, *range(3, array.shape[-1])]]
    return array


def find_folder_samples(root: str | Path) -> tuple[list[Sample], list[str]]:
    """List the tiles of an ``images/`` + ``masks/`` folder and name its bands.

    Returns:
        ``(samples sorted by stem, band names)``; the names end with ``dem`` when ``dem/``
        exists.

    Raises:
        DataError: missing layout, an image without its mask (or DEM), images that disagree in
            band count or CRS, a mask on another grid than its image, a DEM in another CRS or
            extent than its image.
    """
    root = Path(root)
    if not detect(root):
        raise DataError(f"{root}: not an images/ + masks/ folder; {expected_layout(root)}")
    images, masks = _files(root / IMAGES), _files(root / MASKS)
    dems = _files(root / DEM) if (root / DEM).is_dir() else None
    if not images:
        raise DataError(f"{root / IMAGES}: no image; {expected_layout(root)}")
    samples = []
    first: dict[str, Any] | None = None
    first_path: Path | None = None
    for stem, image in images.items():
        mask = masks.get(stem)
        if mask is None:
            raise DataError(f"{image}: no mask for {stem}; expected {root / MASKS}/{stem}.tif")
        dem = None
        if dems is not None:
            dem = dems.get(stem)
            if dem is None:
                raise DataError(f"{image}: no DEM for {stem}; expected {root / DEM}/{stem}.tif")
        head = _header(image)
        if first is None:
            first, first_path = head, image
        elif head["count"] != first["count"]:
            raise DataError(
                f"{image}: {head['count']} band(s) but {first_path.name} has {first['count']}; "
                "every image of the folder needs the same bands"
            )
        elif head["crs"] != first["crs"]:
            raise DataError(
                f"{image}: CRS {head['crs']} but {first_path.name} has {first['crs']}; "
                "reproject the images to one CRS"
            )
        mhead = _header(mask)
        if mhead["shape"] != head["shape"] or (
            mhead["transform"] is not None
            and head["transform"] is not None
            and not np.allclose(mhead["transform"], head["transform"], rtol=0, atol=1e-9)
        ):
            raise DataError(
                f"{mask}: mask grid ({mhead['shape'][0]}x{mhead['shape'][1]} px, transform "
                f"{mhead['transform']}) differs from its image {image.name} "
                f"({head['shape'][0]}x{head['shape'][1]} px, transform {head['transform']}); "
                "rasterise the labels onto the image grid"
            )
        if dem is not None:
            _check_dem_grid(dem, image, head)
        samples.append(Sample(stem, image, dem=dem, mask=mask))
    names = band_names(first)
    if dems is not None:
        names.append("dem")
    return samples, names


def band_names(header: dict[str, Any]) -> list[str]:
    """Descriptions when every band has a distinct one (not ``dem``), else ``1``..``N``."""
    desc = [d for d in header["descriptions"] if d]
    if len(desc) == header["count"] and len(set(desc)) == len(desc) and "dem" not in desc:
        return list(desc)
    return [str(i + 1) for i in range(header["count"])]


def _read_raster(path: Path) -> np.ndarray:
    """``(H, W, C)`` float32, nodata -> NaN; ``DataError`` naming the file when it is damaged."""
    if _is_geo(path):
        rasterio = require_rasterio()
        with _open(path) as ds:
            try:
                array = ds.read().astype(np.float32)  # (C, H, W)
            except rasterio.errors.RasterioError as exc:
                detail = exc.__cause__ or exc
                raise DataError(
                    f"{path}: damaged GeoTIFF, its pixels cannot be read ({detail}); "
                    "re-export or re-download it"
                ) from None
            nodata = ds.nodata
        if nodata is not None and not np.isnan(nodata):
            array[array == np.float32(nodata)] = np.nan
        return np.moveaxis(array, 0, -1)
    return read_png_bands(path)


def read_png_bands(path: str | Path) -> np.ndarray:
    """A PNG's channels as bands, ``(H, W, C)`` float32, as training on a folder reads them:
    RGB order (an alpha channel stays the last band), 16-bit values kept.

    Raises:
        DataError: not a readable PNG.
    """
    array = _read_png(Path(path)).astype(np.float32)
    return array[..., np.newaxis] if array.ndim == 2 else array


def read_folder_image(sample: Sample) -> np.ndarray:
    """Image bands (+ the DEM as the last band) ``(H, W, C)`` float32 in the file's units.

    Args:
        sample: the tile.
    """
    image = _read_raster(Path(sample.image))
    if sample.dem is None:
        return image
    dem = _read_raster(Path(sample.dem))[..., :1]
    if dem.shape[:2] != image.shape[:2]:
        import cv2

        dem = cv2.resize(dem[..., 0], image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        dem = dem[..., np.newaxis]
    return np.concatenate([image, dem], axis=-1)


def read_folder_mask(path: str | Path) -> np.ndarray:
    """A mask raster as ``(H, W)`` uint8 in {0, 1}: > 0 is landslide, nodata is background.

    A colour mask counts a pixel > 0 in any of its first three channels (an alpha channel is
    ignored: the fourth, or the second of grey + alpha), as the Bijie mask reader does.
    """
    array = _read_raster(Path(path))  # (H, W, C)
    colour = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]  # grey + alpha: grey
    return (np.nan_to_num(colour, nan=0.0).max(axis=-1) > 0).astype(np.uint8)
