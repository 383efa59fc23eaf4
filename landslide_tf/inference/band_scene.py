"""Whole-scene maps for multi-band models: the run's bands read from a multi-band GeoTIFF.

``predict --scene`` calls ``predict_band_scene`` for multi-band models; windows, blending and
writing are ``landslide_tf.inference.scene``'s. The bands are found in the scene by

1. band descriptions, when the scene names every band the model needs;
2. position, when the scene has the training format's full band list (Landslide4Sense: 14
   bands B1..B12, slope, dem; a folder: its image bands);
3. order, when the scene has exactly the model's bands.

A ``dem`` band that a ``folder`` run took from ``dem/`` comes from ``--dem`` (warped onto
the scene grid). The scene's nodata value becomes NaN (0 after normalisation).
Default window: the typical training tile side (``native_size``), so windows keep the
training resolution.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import DataError, UserError
from landslide_tf.inference.band_inference import BandPredictor, BandSettings
from landslide_tf.inference.scene import DEFAULT_OVERLAP, DEFAULT_WINDOW, _polygons, _run_windows
from landslide_tf.inference.scene_io import (
    _open_dataset,
    _Scene,
    _warped_dem,
    _Writer,
    require_rasterio,
)
from landslide_tf.inference.scene_result import SceneResult


def band_plan(count: int, descriptions: list[str | None], settings: BandSettings) -> list[Any]:
    """1-based scene band numbers for the model's bands (``"dem"`` = from ``--dem``)."""
    wanted = list(settings.bands)
    named = {d: i + 1 for i, d in enumerate(descriptions) if d}
    if all(b in named for b in wanted):
        return [named[b] for b in wanted]
    full = list(settings.available_bands)
    external = settings.data_format == "folder" and "dem" in full and full[-1] == "dem"
    in_file = full[:-1] if external else full
    if count == len(in_file):
        return ["dem" if b == "dem" and external else in_file.index(b) + 1 for b in wanted]
    if count == len(wanted):
        return list(range(1, count + 1))
    raise DataError(
        f"the scene has {count} band(s) but the model needs {', '.join(wanted)}: give a scene "
        f"with those band descriptions, the {len(in_file)} bands of the training data "
        f"({', '.join(in_file)}) or exactly the model's {len(wanted)} bands in order"
    )


class _BandSource:
    """The model's bands (+ a warped DEM) read by window: ``(h, w, C)`` float32."""

    def __init__(self, ds: Any, plan: list[Any], dem: Any) -> None:
        self.ds, self.plan, self.dem = ds, plan, dem
        self.height, self.width = ds.height, ds.width
        self.nodata = ds.nodata

    def read(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        from rasterio.windows import Window

        numbers = [b for b in self.plan if b != "dem"]
        bands = self.ds.read(numbers, window=Window(col, row, width, height)).astype(np.float32)
        if self.nodata is not None and not math.isnan(self.nodata):
            bands[bands == np.float32(self.nodata)] = np.nan
        by_number = dict(zip(numbers, bands, strict=True))
        layers = [
            self.dem.read(row, col, height, width) if b == "dem" else by_number[b]
            for b in self.plan
        ]
        return np.stack(layers, axis=-1)


def predict_band_scene(
    predictor: BandPredictor,
    image: str | Path,
    out: str | Path,
    *,
    dem: str | Path | None = None,
    polygons: str | Path | None = None,
    window: int | None = None,
    overlap: float = DEFAULT_OVERLAP,
    batch: int = 4,
    threshold: float | None = None,
    progress: bool = False,
) -> SceneResult:
    """Predict a multi-band GeoTIFF scene with overlapping, blended windows.

    Args:
        predictor: a multi-band model (``Predictor.load`` of a multi-band run or export).
        image: the multi-band GeoTIFF.
        out: ``.tif`` (float32 probabilities, georeferenced), ``.png`` or ``.npy``.
        dem: elevation GeoTIFF for a ``folder`` run whose ``dem`` band came from ``dem/``.
        polygons: GeoJSON of landslide polygons.
        window: window side in scene pixels (default: the training tile side).
        overlap, batch, threshold, progress: as in ``landslide_tf.inference.scene.predict_scene``.
    """
    settings = predictor.settings
    window = window or settings.native_size or DEFAULT_WINDOW
    if window < 8:
        raise UserError(f"--window must be >= 8 px, got {window}")
    if not 0 <= overlap <= 0.9:
        raise UserError(f"--overlap must be in [0, 0.9], got {overlap}")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    rasterio = require_rasterio()
    threshold = settings.threshold if threshold is None else float(threshold)
    out = Path(out)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_CACHEMAX=64))
        ds = stack.enter_context(_open_dataset(Path(image)))
        plan = band_plan(ds.count, list(ds.descriptions), settings)
        scene = _Scene(None, None, ds.height, ds.width, ds.crs, ds.transform)
        dem_source = None
        if "dem" in plan:
            if dem is None:
                raise UserError("this model uses a DEM from dem/: give the scene's --dem")
            dem_ds = stack.enter_context(_open_dataset(Path(dem)))
            dem_source = _warped_dem(scene, ds, dem_ds, dem_ds.nodata, Path(dem))
            stack.callback(dem_source.ds.close)
        scene.image = _BandSource(ds, plan, dem_source)
        writer = _Writer(out, scene, threshold, polygons is not None)
        stack.callback(writer.cleanup)
        windows, win = _run_windows(predictor, scene, writer, window, overlap, batch, progress)
        writer.close()
        n_polygons = _polygons(writer, scene, Path(polygons), out) if polygons else None
    return SceneResult.of(out, scene, writer, windows, win, start, threshold, polygons, n_polygons)
