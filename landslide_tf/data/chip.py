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
transform, so it lies exactly on the scene.

Everything is checked before anything is written: the options, ``DIR`` (new or empty, in an
existing folder), the label polygons (their GeoJSON structure, in full: rasterio crashes on
malformed coordinates), and every input raster's pixels (a damaged image, mask or DEM stops
with its name). The chips are written into a staging folder beside ``DIR`` (the convention
of ``files.staged_dir``: ``.DIR.*.staging``, carrying ``files.STAGING_MARK``) and moved into
place at the end; what a killed run left there is removed by the next run. A progress line
(``wrote 120/961 chips (10 s)``) goes to ``progress`` at most every ``PROGRESS_EVERY_S``
seconds; by default it is logged as a warning, as ``archive`` logs its progress (the ``data``
command shows warnings only), so a large scene is not silent for minutes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf import files
from landslide_tf.data.folder import require_rasterio
from landslide_tf.errors import DataError, UserError, require_module

logger = logging.getLogger(__name__)

#: Report progress at most every this many seconds while chips are written.
PROGRESS_EVERY_S = 10.0

#: The least number of items at each nesting level of a geometry's ``"coordinates"`` (outer
#: level first; the innermost items are ``[x, y]`` positions), as rasterio burns them.
GEOMETRY_LEVELS: dict[str, tuple[int, ...]] = {
    "Point": (),
    "MultiPoint": (1,),
    "LineString": (2,),
    "MultiLineString": (1, 2),
    "Polygon": (1, 4),
    "MultiPolygon": (1, 1, 4),
}


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
    if labels is not None:
        return _rasterise(ds, labels)
    with _open(mask) as mds, _reading(mask):
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
    with _reading(dem):
        _read_footprint(ds, dem_ds)


def _read_footprint(ds: Any, dem_ds: Any, most: int = 256) -> None:
    """Read the DEM where it lies under the image ``ds``, decimated to at most ``most`` px a
    side (every block is touched): a damaged DEM stops before any chip is written."""
    from rasterio.errors import RasterioError
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    whole = Window(0, 0, dem_ds.width, dem_ds.height)
    try:
        box = transform_bounds(ds.crs, dem_ds.crs, *ds.bounds)
        win = from_bounds(*box, transform=dem_ds.transform)
        col0, row0 = max(0, math.floor(win.col_off)), max(0, math.floor(win.row_off))
        col1 = min(dem_ds.width, math.ceil(win.col_off + win.width))
        row1 = min(dem_ds.height, math.ceil(win.row_off + win.height))
        window = Window(col0, row0, col1 - col0, row1 - row0)
    except (RasterioError, ValueError, ZeroDivisionError):  # a rotated grid: all of it
        window = whole
    if window.width < 1 or window.height < 1:
        window = whole
    shape = (min(int(window.height), most), min(int(window.width), most))
    dem_ds.read(1, window=window, out_shape=shape)


def _open(path: Path) -> Any:
    """``rasterio.open(path)``; ``DataError`` naming ``path`` when it is not a readable raster."""
    rasterio = require_rasterio()
    with _reading(path):
        return rasterio.open(path)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn rasterio's errors inside the block (a truncated or damaged file: "Read failed. See
    previous exception for details.") into one ``DataError`` naming ``path`` and the reason."""
    from rasterio.errors import RasterioError

    try:
        yield
    except RasterioError as exc:
        reasons, seen = [], exc
        while seen is not None and len(reasons) < 8:
            reasons.append(" ".join(str(seen).split()) or type(seen).__name__)
            seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
        raise DataError(
            f"{path}: unreadable raster ({reasons[-1]}); is it truncated or damaged? "
            "re-export or re-download it"
        ) from None


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
    from rasterio.errors import RasterioError
    from rasterio.features import rasterize

    if labels.suffix.lower() in (".geojson", ".json"):
        try:
            data = json.loads(labels.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise DataError(f"{labels}: not valid GeoJSON ({exc})") from None
    else:
        fiona = require_module(
            "fiona",
            f"{labels}: shapefiles need fiona (pip install fiona); or convert the labels to "
            "GeoJSON in the image CRS",
        )
        with fiona.open(labels) as src:
            data = {"features": [{"geometry": f["geometry"]} for f in src]}
    shapes = _label_geometries(data, labels)
    if not shapes:
        raise DataError(f"{labels}: no polygon in the label file")
    if not any(_overlaps(ds.bounds, _bounds(s)) for s in shapes):
        raise DataError(
            f"{labels}: no label polygon overlaps the image {ds.name} (labels must be in the "
            f"image CRS {ds.crs})"
        )
    try:
        return rasterize(
            [(s, 1) for s in shapes],
            out_shape=(ds.height, ds.width),
            transform=ds.transform,
            fill=0,
            dtype="uint8",
        )
    except (TypeError, IndexError, ValueError, RasterioError) as exc:
        raise DataError(f"{labels}: the label geometries cannot be rasterised ({exc})") from None


def _label_geometries(data: Any, labels: Path) -> list[Mapping[str, Any]]:
    """The geometries of a GeoJSON FeatureCollection, Feature or geometry (features without a
    geometry are left out), each checked in full by ``geometry_problem``.

    Raises:
        DataError: naming ``labels`` and the feature index, for anything else.
    """
    if not isinstance(data, Mapping):
        raise DataError(
            f"{labels}: the GeoJSON is {_kind(data)}; expected an object (a FeatureCollection, "
            "a Feature or a geometry)"
        )
    if "features" in data:
        features = data["features"]
        if not isinstance(features, list):
            raise DataError(
                f'{labels}: "features" is {_kind(features)}; expected a list of features'
            )
        items = [(f"feature {i}", f) for i, f in enumerate(features)]
    else:
        items = [("feature 0" if data.get("type") == "Feature" else "the geometry", data)]
    shapes = []
    for where, feature in items:
        if not isinstance(feature, Mapping):
            raise DataError(f"{labels}: {where} is {_kind(feature)}; expected a GeoJSON object")
        geometry = feature
        if "geometry" in feature or feature.get("type") == "Feature":
            geometry = feature.get("geometry")
            if geometry is None:  # a feature without a location: nothing to burn
                continue
        problem = geometry_problem(geometry)
        if problem:
            raise DataError(f"{labels}: {where}: {problem}")
        shapes.append(geometry)
    return shapes


def geometry_problem(geometry: Any) -> str | None:
    """Why ``geometry`` is not a GeoJSON geometry that rasterio can burn, or ``None``.

    Checked in full before rasterio sees it: malformed coordinates crash rasterio (a string
    segfaults ``rasterio.features.bounds``; a short position raises ``IndexError``).

    >>> geometry_problem({"type": "Point", "coordinates": [1.0, 2.0]}) is None
    True
    >>> geometry_problem({"type": "Polygon", "coordinates": []})
    'geometry (Polygon): coordinates has 0 items; expected at least 1'
    """
    known = ", ".join([*GEOMETRY_LEVELS, "GeometryCollection"])
    stack = [("geometry", geometry)]
    while stack:  # a GeometryCollection nests: no recursion on what the file says
        name, geom = stack.pop()
        if not isinstance(geom, Mapping):
            return f'{name} is {_kind(geom)}; expected an object with "type" and "coordinates"'
        kind = geom.get("type")
        if kind == "GeometryCollection":
            parts = geom.get("geometries")
            if not isinstance(parts, list) or not parts:
                return f'{name}: "geometries" is {_kind(parts)}; expected a non-empty list'
            stack.extend(
                (f"{name}.geometries[{j}]", g) for j, g in reversed(list(enumerate(parts)))
            )
            continue
        if not isinstance(kind, str) or kind not in GEOMETRY_LEVELS:
            return f'{name} "type" is {_kind(kind)}; expected one of {known}'
        if "coordinates" not in geom:
            return f'{name} ({kind}) has no "coordinates"'
        problem = _coordinates_problem(geom["coordinates"], GEOMETRY_LEVELS[kind], "coordinates")
        if problem:
            return f"{name} ({kind}): {problem}"
    return None


def _coordinates_problem(value: Any, least: tuple[int, ...], name: str) -> str | None:
    """What is wrong with ``value``: lists nested ``len(least)`` deep (each level at least
    ``least[i]`` long) around ``[x, y]`` positions of finite numbers; ``None`` if nothing."""
    if not least:
        if isinstance(value, (list, tuple)) and len(value) >= 2 and all(map(_finite, value)):
            return None
        return f"{name} is {_kind(value)}; expected an [x, y] position of finite numbers"
    if not isinstance(value, (list, tuple)):
        return f"{name} is {_kind(value)}; expected a list"
    if len(value) < least[0]:
        return f"{name} has {len(value)} items; expected at least {least[0]}"
    for j, item in enumerate(value):
        problem = _coordinates_problem(item, least[1:], f"{name}[{j}]")
        if problem:
            return problem
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _kind(value: Any) -> str:
    """What a JSON value is, in words (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}" if value else "an empty list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _bounds(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a geometry that ``geometry_problem`` accepted (its
    positions, not a ``"bbox"`` member the file may state wrongly)."""
    xs, ys = [], []
    stack: list[Any] = [geometry]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            collection = item.get("type") == "GeometryCollection"
            stack.extend(item["geometries"] if collection else [item["coordinates"]])
        elif item and isinstance(item[0], (list, tuple)):
            stack.extend(item)
        else:
            xs.append(item[0])
            ys.append(item[1])
    return min(xs), min(ys), max(xs), max(ys)


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
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> ChipResult:
    """Cut ``image`` + labels into ``out/images``, ``out/masks`` (+ ``out/dem``).

    Chips whose pixels are 0 in every band (a zero border without a nodata tag) are left out
    with ``skip_empty``; otherwise a warning names their count and the flag. ``mask_classes``:
    the mask values that are landslide (needed when the mask holds more than one class).
    ``progress`` is called with a ``progress_line`` at most every ``progress_every_s``
    seconds while chips are written (default: a warning of this module's logger).

    Raises:
        UserError: bad options, a non-empty ``out``, ``out`` in a folder that does not exist.
        DataError: unreadable rasters, malformed label polygons, labels or a DEM that do not
            overlap the image, a DEM without a CRS.
    """
    require_rasterio()  # a one-line UserError when it is missing
    image, out = Path(image), Path(out)
    if (mask is None) == (labels is None):
        raise UserError("give the labels as --mask RASTER or --labels POLYGONS (one of them)")
    if size < 8 or stride < 1:
        raise UserError(f"--size {size} --stride {stride}; expected size >= 8, stride >= 1")
    if not 0 <= min_landslide <= 1 or not 0 <= max_nodata <= 1:
        raise UserError("--min-landslide and --max-nodata must be in [0, 1]")
    if not math.isfinite(negatives) or negatives < 0:
        raise UserError(f"--negatives {negatives}; expected a finite number >= 0")
    _check_out(out)
    for path in (image, mask, labels, dem):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{path}: no such file")
    dem = Path(dem) if dem is not None else None
    with _open(image) as ds:
        classes = tuple(int(v) for v in mask_classes) if mask_classes else None
        truth = _label_raster(
            ds, Path(mask) if mask else None, Path(labels) if labels else None, classes
        )
        if dem is not None:
            with _open(dem) as dem_ds:
                _check_dem(ds, dem_ds, dem)
        with _reading(image):
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
        files.remove_stale_staging(out.parent, out.name)  # what a killed earlier run left
        with contextlib.ExitStack() as stack:
            dem_ds = stack.enter_context(_open(dem)) if dem is not None else None
            stage = stack.enter_context(_staging(out))
            report = progress or _log_progress
            chips = plan["chips"]
            _write_chips(
                ds, dem_ds, dem, truth, chips, stage, image, size, report, progress_every_s
            )
    return ChipResult(
        out, plan["landslide"], plan["negatives"], plan["nodata"], plan["small"], plan["empty"]
    )


def progress_line(done: int, total: int, elapsed_s: float) -> str:
    """The progress line of ``chip_scene``.

    >>> progress_line(120, 961, 10.4)
    'wrote 120/961 chips (10 s)'
    """
    return f"wrote {done}/{total} chips ({elapsed_s:.0f} s)"


def _log_progress(line: str) -> None:
    logger.warning("%s", line)  # the data command shows warnings only


def _write_chips(
    ds: Any,
    dem_ds: Any,
    dem: Path | None,
    truth: np.ndarray,
    chips: Sequence[tuple[int, int]],
    stage: Path,
    image: Path,
    size: int,
    progress: Callable[[str], None],
    every_s: float,
) -> None:
    """Write the ``chips`` (window offsets ``(row, col)``) of ``ds``, its labels ``truth`` and
    the DEM ``dem_ds`` (read from ``dem``; or none) into ``stage``; ``progress`` gets a line at
    most every ``every_s`` seconds."""
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    for sub in ("images", "masks", *(("dem",) if dem_ds is not None else ())):
        (stage / sub).mkdir()
    profile = ds.profile | {"driver": "GTiff", "compress": "deflate"}
    start = last = time.monotonic()
    for done, (row, col) in enumerate(chips, 1):
        win = Window(col, row, min(size, ds.width), min(size, ds.height))
        stem = f"{image.stem}_r{row:05d}_c{col:05d}"
        meta = profile | {
            "height": win.height,
            "width": win.width,
            "transform": window_transform(win, ds.transform),
        }
        for key in ("blockxsize", "blockysize", "tiled"):
            meta.pop(key, None)
        with _reading(image):
            pixels = ds.read(window=win)  # (bands, h, w)
        _write_tif(stage / "images" / f"{stem}.tif", meta, pixels, ds.descriptions)
        chip_mask = truth[row : row + win.height, col : col + win.width]
        mask_meta = meta | {"count": 1, "dtype": "uint8", "nodata": None}
        _write_tif(stage / "masks" / f"{stem}.tif", mask_meta, chip_mask[np.newaxis])
        if dem_ds is not None and dem is not None:
            _write_dem(dem_ds, ds, meta, stage / "dem" / f"{stem}.tif", dem)
        now = time.monotonic()
        if now - last >= every_s:
            progress(progress_line(done, len(chips), now - start))
            last = now


def _check_out(out: Path) -> None:
    """``UserError`` unless ``out`` may be written: new or empty, in an existing folder."""
    parent = out.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise UserError(f"--out {out}: {parent} {what}; give --out in an existing folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not empty: give a new --out folder")


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A new staging folder beside ``out``; on success its contents become ``out``.

    The folder is ``files.new_staging_dir``'s, as ``files.staged_dir`` makes it, so
    ``files.remove_stale_staging`` clears what a killed run left. ``staged_dir`` itself
    would replace an empty ``out`` the user made (moved aside and deleted: its owner,
    permissions or mount point lost); here the chips are moved into it instead. On failure
    the staging folder is removed and ``out`` is untouched.
    """
    stage = files.new_staging_dir(out)  # errors name --out, not the temporary folder
    try:
        yield stage
        (stage / files.STAGING_MARK).unlink()
        if out.exists():  # an empty folder the user made
            _move_into(stage, out)
        else:
            stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # a full disk: nothing partial is left
        raise


def _all_zero(ds: Any) -> np.ndarray:
    """``(H, W)`` True where every band is 0 (read one band at a time: every pixel of the
    image is read here, so a damaged image stops before anything is written)."""
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
    wanted = negatives * len(positive)  # inf for a huge --negatives: keep them all
    keep = len(negative) if wanted >= len(negative) else int(round(wanted))
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


def _write_dem(dem_ds: Any, ds: Any, meta: dict[str, Any], path: Path, dem: Path) -> None:
    """The DEM (at ``dem``) warped (bilinear) onto the chip's grid, float32, nodata NaN."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with (
        _reading(dem),
        WarpedVRT(
            dem_ds,
            crs=ds.crs,
            transform=meta["transform"],
            width=meta["width"],
            height=meta["height"],
            resampling=Resampling.bilinear,
            nodata=np.nan,
            dtype="float32",
        ) as vrt,
    ):
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
