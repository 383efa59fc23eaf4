"""Landslide polygons as GeoJSON, traced by GDAL from a binary mask (needs rasterio)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.files import atomic_write_text
from landslide_tf.inference.scene_io import require_rasterio


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
    atomic_write_text(path, json.dumps(collection) + "\n")
    return len(features)
