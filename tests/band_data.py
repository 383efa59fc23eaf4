"""Tiny multi-band datasets for the format tests: Landslide4Sense h5 and a GeoTIFF folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def blob_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A 0/1 mask with one random ellipse (never empty)."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
    ry, rx = rng.integers(size // 8, size // 3, 2)
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)


def l4s_image(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """``(H, W, 14)`` float: reflectance-like B1..B12 (brighter on the slide), slope, DEM."""
    size = mask.shape[0]
    bands = rng.normal(0.3, 0.05, (size, size, 14))
    bands[..., :12] += 0.4 * mask[..., None]
    bands[..., 12] = 20 + 10 * mask + rng.normal(0, 1, (size, size))  # slope, degrees
    bands[..., 13] = 1500 + 50 * np.arange(size)[:, None] / size  # DEM, metres
    return bands.astype(np.float64)


def make_l4s(
    root: Path, counts=(("TrainData", 4), ("ValidData", 2), ("TestData", 2)), size=128, seed=0
) -> Path:
    """The official layout with the real key names ('img' (H, W, 14), 'mask' (H, W))."""
    import h5py

    rng = np.random.default_rng(seed)
    number = 1
    for split, n in counts:
        (root / split / "img").mkdir(parents=True)
        (root / split / "mask").mkdir(parents=True)
        for _ in range(n):
            mask = blob_mask(rng, size)
            with h5py.File(root / split / "img" / f"image_{number}.h5", "w") as f:
                f.create_dataset("img", data=l4s_image(rng, mask))
            with h5py.File(root / split / "mask" / f"mask_{number}.h5", "w") as f:
                f.create_dataset("mask", data=mask)
            number += 1
    return root


def write_tif(
    path: Path,
    array: np.ndarray,
    *,
    transform=None,
    crs="EPSG:32645",
    nodata=None,
    descriptions=None,
) -> Path:
    """Write ``(H, W, C)`` or ``(H, W)`` as a GeoTIFF."""
    import rasterio
    from rasterio.transform import from_origin

    array = array if array.ndim == 3 else array[..., None]
    transform = transform or from_origin(500000.0, 3000000.0, 10.0, 10.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=array.shape[0],
        width=array.shape[1],
        count=array.shape[2],
        dtype=array.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(np.moveaxis(array, -1, 0))
        for i, text in enumerate(descriptions or []):
            ds.set_band_description(i + 1, text)
    return path


def make_geotiff_folder(root: Path, n=10, size=48, bands=4, seed=0, dem=True) -> Path:
    """images/ (uint16, nodata 0 in one corner) + masks/ (+ dem/) GeoTIFFs on one grid each."""
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    for i in range(n):
        mask = blob_mask(rng, size)
        image = rng.integers(200, 400, (size, size, bands)) + 800 * mask[..., None].astype(np.int64)
        image = image.astype(np.uint16)
        image[:3, :3] = 0  # nodata
        transform = from_origin(500000.0 + 1000 * i, 3000000.0, 10.0, 10.0)
        write_tif(root / "images" / f"t{i:02d}.tif", image, transform=transform, nodata=0)
        write_tif(root / "masks" / f"t{i:02d}.tif", mask, transform=transform)
        if dem:
            elevation = (1000 + 5 * np.arange(size)[:, None] + 0 * mask).astype(np.float32)
            write_tif(root / "dem" / f"t{i:02d}.tif", elevation, transform=transform)
    return root
