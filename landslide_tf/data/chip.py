"""Cut a labelled scene into a training folder (``folder`` format) of georeferenced chips.

::

    python -m landslide_tf.data chip --image scene.tif --mask labels.tif [--dem dem.tif] \\
        --out DIR --size 256 --stride 128 [--min-landslide 0.01] [--negatives 0.2]

The labels are a mask raster (> 0 = landslide; warped onto the image grid with nearest
neighbour when its grid differs) or ``--labels`` polygons (GeoJSON, or a shapefile when
fiona is installed) rasterised onto the image grid. Windows of ``size`` px every ``stride``
px (the last row and column flush with the scene) become chips when at most
``max_nodata`` of their pixels are nodata; chips with a landslide share of at least
``min_landslide`` (and above 0) are kept, chips without landslide pixels are kept as
negatives (``negatives`` per landslide chip, a seeded choice), the rest are skipped.
Every chip keeps the scene's CRS, dtype, nodata and band descriptions, with the window's
transform, so it lies exactly on the scene. The folder is written into a temporary folder
and renamed into place: ``DIR`` must not exist or be empty.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf import files
from landslide_tf.data.folder import require_rasterio
from landslide_tf.errors import DataError, UserError, require_module

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ChipResult:
    """What ``chip_scene`` wrote."""

    out: Path
    landslide: int
    negatives: int
    skipped_nodata: int
    skipped_small: int
    skipped_empty: int = 0

    def format(self) -> str:
        empty = f", {self.skipped_empty} all-zero" if self.skipped_empty else ""
        return (
            f"wrote {self.landslide} landslide and {self.negatives} negative chips to {self.out} "
            f"(skipped {self.skipped_nodata} mostly-nodata{empty} and {self.skipped_small} "
            "chips below --min-landslide)"
        )


def starts(length: int, size: int, stride: int) -> list[int]:
    """Window offsets: every ``stride`` px, the last flush with the end.

    >>> starts(10, 4, 3)
    [0, 3, 6]
    """
    if length <= size:
        return [0]
    out = list(range(0, length - size + 1, stride))
    return out if out[-1] == length - size else [*out, length - size]


def _overlaps(a: Any, b: tuple[float, float, float, float]) -> bool:
    return min(a.right, b[2]) > max(a.left, b[0]) and min(a.top, b[3]) > max(a.bottom, b[1])


def _label_raster(
    ds: Any, mask: Path | None, labels: Path | None, classes: tuple[int, ...] | None = None
) -> np.ndarray:
    """The labels on the image grid as ``(H, W)`` uint8 in {0, 1}.

    A mask with more than one non-zero value (classes) needs ``classes``, the values that are
    landslide; merging them silently could train on the wrong class.
    """
    rasterio = require_rasterio()
    if labels is not None:
        return _rasterise(ds, labels)
    with rasterio.open(mask) as mds:
        same = (mds.height, mds.width) == (ds.height, ds.width) and (
            mds.transform.almost_equals(ds.transform) or mds.crs is None
        )
        if same:
            array = mds.read(1)
            nodata = mds.nodata
        else:
            if mds.crs is None or ds.crs is None:
                raise DataError(
                    f"{mask}: {mds.height}x{mds.width} px without georeferencing does not match "
                    f"the image grid {ds.height}x{ds.width}"
                )
            _require_overlap(ds, mds, mask, "mask")
            from rasterio.enums import Resampling
            from rasterio.vrt import WarpedVRT

            with WarpedVRT(
                mds,
                crs=ds.crs,
                transform=ds.transform,
                width=ds.width,
                height=ds.height,
                resampling=Resampling.nearest,
            ) as vrt:
                array = vrt.read(1)
            nodata = mds.nodata
    if nodata is not None:
        array = np.where(array == nodata, 0, array)
    if np.issubdtype(array.dtype, np.floating):  # NaN (a NaN nodata tag, or untagged) is nodata
        array = np.where(np.isnan(array), 0, array)
    if classes is not None:
        return np.isin(array, classes).astype(np.uint8)
    values = np.unique(array)
    positive = values[values != 0]
    if positive.size > 1 and set(positive.tolist()) != {255}:
        shown = ", ".join(str(v) for v in values[:8]) + (", ..." if values.size > 8 else "")
        listed = ",".join(str(v) for v in positive[:8])
        raise DataError(
            f"{mask}: mask values {{{shown}}}: more than one class; say which values are "
            f"landslide with --mask-classes (e.g. --mask-classes {listed}, or one of them)"
        )
    return (array > 0).astype(np.uint8)


def _check_dem(ds: Any, dem_ds: Any, dem: Path) -> None:
    """Refuse a DEM that cannot be warped onto the image: no CRS (either), or no overlap."""
    if dem_ds.crs is None or ds.crs is None:
        missing = "the DEM" if dem_ds.crs is None else f"the image {ds.name}"
        raise DataError(
            f"{dem}: {missing} has no CRS, so the DEM cannot be placed on the image grid; "
            "assign the CRS (e.g. gdal_edit.py -a_srs) or warp the DEM onto the image grid"
        )
    _require_overlap(ds, dem_ds, dem, "DEM")


def _require_overlap(ds: Any, other: Any, path: Path, what: str) -> None:
    """``DataError`` when raster ``other`` (at ``path``, a ``what``) misses the image ``ds``."""
    from rasterio.warp import transform_bounds

    bounds = transform_bounds(other.crs, ds.crs, *other.bounds)
    if not _overlaps(ds.bounds, bounds):
        raise DataError(
            f"{path}: the {what} (bounds {tuple(round(v, 2) for v in bounds)} in the image "
            f"CRS) does not overlap the image {ds.name} (bounds "
            f"{tuple(round(v, 2) for v in ds.bounds)})"
        )


def _rasterise(ds: Any, labels: Path) -> np.ndarray:
    from rasterio.features import rasterize

    if labels.suffix.lower() in (".geojson", ".json"):
        try:
            data = json.loads(labels.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{labels}: not valid GeoJSON ({exc})") from None
        features = data.get("features", [data]) if isinstance(data, dict) else []
        shapes = [f.get("geometry", f) for f in features if f]
    else:
        fiona = require_module(
            "fiona",
            f"{labels}: shapefiles need fiona (pip install fiona); or convert the labels to "
            "GeoJSON in the image CRS",
        )
        with fiona.open(labels) as src:
            shapes = [dict(f["geometry"]) for f in src]
    shapes = [s for s in shapes if s and s.get("type")]
    if not shapes:
        raise DataError(f"{labels}: no polygon in the label file")
    from rasterio.features import bounds as shape_bounds

    boxes = [shape_bounds(s) for s in shapes]
    if not any(_overlaps(ds.bounds, b) for b in boxes):
        raise DataError(
            f"{labels}: no label polygon overlaps the image {ds.name} (labels must be in the "
            f"image CRS {ds.crs})"
        )
    return rasterize(
        [(s, 1) for s in shapes],
        out_shape=(ds.height, ds.width),
        transform=ds.transform,
        fill=0,
        dtype="uint8",
    )


def chip_scene(
    image: str | Path,
    out: str | Path,
    *,
    mask: str | Path | None = None,
    labels: str | Path | None = None,
    dem: str | Path | None = None,
    size: int = 256,
    stride: int = 128,
    min_landslide: float = 0.0,
    negatives: float = 0.2,
    max_nodata: float = 0.5,
    seed: int = 0,
    skip_empty: bool = False,
    mask_classes: Sequence[int] | None = None,
) -> ChipResult:
    """Cut ``image`` + labels into ``out/images``, ``out/masks`` (+ ``out/dem``).

    Chips whose pixels are 0 in every band (a zero border without a nodata tag) are left out
    with ``skip_empty``; otherwise a warning names their count and the flag. ``mask_classes``:
    the mask values that are landslide (needed when the mask holds more than one class).

    Raises:
        UserError: bad options, a non-empty ``out``.
        DataError: unreadable rasters, labels or a DEM that do not overlap the image, a DEM
            without a CRS.
    """
    rasterio = require_rasterio()
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    image, out = Path(image), Path(out)
    if (mask is None) == (labels is None):
        raise UserError("give the labels as --mask RASTER or --labels POLYGONS (one of them)")
    if size < 8 or stride < 1:
        raise UserError(f"--size {size} --stride {stride}; expected size >= 8, stride >= 1")
    if not 0 <= min_landslide <= 1 or negatives < 0 or not 0 <= max_nodata <= 1:
        raise UserError("--min-landslide and --max-nodata must be in [0, 1], --negatives >= 0")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not empty: give a new --out folder")
    for path in (image, mask, labels, dem):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{path}: no such file")
    with rasterio.open(image) as ds:
        classes = tuple(int(v) for v in mask_classes) if mask_classes else None
        truth = _label_raster(
            ds, Path(mask) if mask else None, Path(labels) if labels else None, classes
        )
        if dem is not None:
            with rasterio.open(dem) as dem_ds:
                _check_dem(ds, dem_ds, Path(dem))
        valid = ds.dataset_mask() > 0  # (H, W): False where every band is nodata
        zero = _all_zero(ds)
        plan = _plan(
            truth, valid, size, stride, min_landslide, negatives, max_nodata, seed, zero, skip_empty
        )
        if plan["empty_kept"]:
            logger.warning(
                "%s: %d of %d chips are 0 in every band (a zero border without a nodata tag?); "
                "pass --skip-empty to leave them out, or set the scene's nodata to 0",
                image,
                plan["empty_kept"],
                len(plan["chips"]),
            )
        dem_ds = rasterio.open(dem) if dem is not None else None
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent.resolve()))
        try:
            for sub in ("images", "masks", *(("dem",) if dem_ds else ())):
                (tmp / sub).mkdir()
            profile = ds.profile | {"driver": "GTiff", "compress": "deflate"}
            for row, col in plan["chips"]:
                win = Window(col, row, min(size, ds.width), min(size, ds.height))
                stem = f"{image.stem}_r{row:05d}_c{col:05d}"
                meta = profile | {
                    "height": win.height,
                    "width": win.width,
                    "transform": window_transform(win, ds.transform),
                }
                for key in ("blockxsize", "blockysize", "tiled"):
                    meta.pop(key, None)
                _write_tif(
                    tmp / "images" / f"{stem}.tif",
                    meta,
                    ds.read(window=win),
                    ds.descriptions,
                )
                chip_mask = truth[row : row + win.height, col : col + win.width]
                mask_meta = meta | {"count": 1, "dtype": "uint8", "nodata": None}
                _write_tif(tmp / "masks" / f"{stem}.tif", mask_meta, chip_mask[np.newaxis])
                if dem_ds is not None:
                    _write_dem(dem_ds, ds, meta, tmp / "dem" / f"{stem}.tif")
            if out.exists():  # an empty folder the user made
                _move_into(tmp, out)
            else:
                tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk: nothing partial is left
            raise
        finally:
            if dem_ds is not None:
                dem_ds.close()
    return ChipResult(
        out, plan["landslide"], plan["negatives"], plan["nodata"], plan["small"], plan["empty"]
    )


def _all_zero(ds: Any) -> np.ndarray:
    """``(H, W)`` True where every band is 0 (read one band at a time)."""
    zero = np.ones((ds.height, ds.width), bool)
    for band in range(1, ds.count + 1):
        zero &= ds.read(band) == 0
    return zero


def _move_into(tmp: Path, out: Path) -> None:
    for child in tmp.iterdir():
        child.rename(out / child.name)
    tmp.rmdir()


def _plan(
    truth: np.ndarray,
    valid: np.ndarray,
    size: int,
    stride: int,
    min_landslide: float,
    negatives: float,
    max_nodata: float,
    seed: int,
    zero: np.ndarray | None = None,
    skip_empty: bool = False,
) -> dict[str, Any]:
    """Which windows become chips, and the counts of the rest."""
    height, width = truth.shape
    positive, negative = [], []
    skipped_nodata = skipped_small = skipped_empty = 0
    empty: set[tuple[int, int]] = set()
    for row in starts(height, size, stride):
        for col in starts(width, size, stride):
            window = (slice(row, row + size), slice(col, col + size))
            if 1.0 - valid[window].mean() > max_nodata:
                skipped_nodata += 1
                continue
            if zero is not None and zero[window].all():
                if skip_empty:
                    skipped_empty += 1
                    continue
                empty.add((row, col))
            share = float(truth[window].mean())
            if share > 0 and share >= min_landslide:
                positive.append((row, col))
            elif share == 0:
                negative.append((row, col))
            else:
                skipped_small += 1
    keep = min(len(negative), int(round(negatives * len(positive))))
    order = np.random.default_rng(seed).permutation(len(negative))[:keep]
    chosen = [negative[i] for i in sorted(order)]
    if not positive:
        raise DataError(
            "no chip holds landslide pixels (check that the labels cover the image, or lower "
            "--min-landslide)"
        )
    return {
        "chips": positive + chosen,
        "landslide": len(positive),
        "negatives": len(chosen),
        "nodata": skipped_nodata,
        "small": skipped_small,
        "empty": skipped_empty,
        "empty_kept": sum(1 for c in positive + chosen if c in empty),
    }


def _write_dem(dem_ds: Any, ds: Any, meta: dict[str, Any], path: Path) -> None:
    """The DEM warped (bilinear) onto the chip's grid, float32, nodata NaN."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with WarpedVRT(
        dem_ds,
        crs=ds.crs,
        transform=meta["transform"],
        width=meta["width"],
        height=meta["height"],
        resampling=Resampling.bilinear,
        nodata=np.nan,
        dtype="float32",
    ) as vrt:
        array = vrt.read(1)
    dem_meta = meta | {"count": 1, "dtype": "float32", "nodata": np.nan}
    _write_tif(path, dem_meta, array[np.newaxis])


def _write_tif(path: Path, meta: dict[str, Any], array: np.ndarray, descriptions: Any = ()) -> None:
    """One GeoTIFF, encoded in memory and written through ``files.atomic_write_bytes``.

    libtiff reports a full disk only on stderr (the file is left short or empty); encoding in
    memory and writing the bytes ourselves turns it into an ``OSError`` naming ``path``.
    """
    from rasterio.io import MemoryFile

    with MemoryFile() as memory:
        with memory.open(**meta) as dst:
            dst.write(array)
            for i, text in enumerate(descriptions or ()):
                if text:
                    dst.set_band_description(i + 1, text)
        data = memory.read()
    files.atomic_write_bytes(path, data)
