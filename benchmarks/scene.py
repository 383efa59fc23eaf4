"""Whole-scene prediction: seconds and peak memory for synthetic GeoTIFF scenes of growing size.

Each size runs in a fresh Python process, so the peak resident set size (``ru_maxrss``) is per
size. Reported per size: windows, seconds in ``predict_scene``, the process's peak RSS, the
RSS growth during ``predict_scene`` (peak after minus RSS after loading and warming up the
model) and the tracemalloc peak of Python/NumPy allocations during ``predict_scene``.
Expected: time grows with the area, memory stays flat (windows + one strip of accumulators).

Usage::

    python benchmarks/scene.py [--sizes 1024 2048 4096] [--window 256] [--overlap 0.25]
        [--batch 4] [--model unet] [--base-filters 16] [--depth 4] [--polygons]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# this checkout's landslide_tf before an installed one
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from _children import INTERRUPTED, run_child  # noqa: E402
from _record import Recorder, add_results_args, save  # noqa: E402

from landslide_tf.cli.common import run_cli  # noqa: E402

STRIP = 256


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_scene(folder: Path, size: int, seed: int = 0) -> tuple[Path, Path]:
    """A ``size`` x ``size`` RGB GeoTIFF (1 m) and a DEM GeoTIFF (2 m), written in strips."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    image_path, dem_path = folder / f"scene{size}.tif", folder / f"dem{size}.tif"
    common = {"driver": "GTiff", "crs": "EPSG:32648", "compress": "deflate"}
    with rasterio.open(
        image_path,
        "w",
        height=size,
        width=size,
        count=3,
        dtype="uint8",
        transform=from_origin(500000, 3000000, 1.0, 1.0),
        **common,
    ) as ds:
        for row in range(0, size, STRIP):
            rows = min(STRIP, size - row)
            strip = rng.integers(40, 160, (3, rows, size), dtype=np.uint8)
            yy, xx = np.mgrid[row : row + rows, 0:size]
            blobs = (np.sin(yy / 37.0) * np.cos(xx / 53.0)) > 0.8  # bright "scars"
            strip[:, blobs] = 230
            ds.write(strip, window=Window(0, row, size, rows))
    half = size // 2
    with rasterio.open(
        dem_path,
        "w",
        height=half,
        width=half,
        count=1,
        dtype="float32",
        transform=from_origin(500000, 3000000, 2.0, 2.0),
        nodata=-9999.0,
        **common,
    ) as ds:
        for row in range(0, half, STRIP):
            rows = min(STRIP, half - row)
            yy, xx = np.mgrid[row : row + rows, 0:half]
            dem = 1200 + 80 * np.sin(yy / 60.0) + 0.05 * xx + rng.normal(0, 1, (rows, half))
            ds.write(dem.astype(np.float32)[np.newaxis], window=Window(0, row, half, rows))
    return image_path, dem_path


def make_run(folder: Path, model_name: str, base_filters: int, depth: int) -> Path:
    """An untrained run dir at the paper's 128 px, rgb+dem (speed does not need training)."""
    import keras

    from landslide_tf.models import build_model
    from landslide_tf.training.config import TrainConfig

    keras.utils.set_random_seed(0)
    config = TrainConfig(model=model_name, base_filters=base_filters, depth=depth).resolved()
    model = build_model(
        model_name, input_shape=(128, 128, 4), base_filters=base_filters, depth=depth
    )
    run = folder / "run"
    run.mkdir()
    model.save(run / "best.keras")
    config.save(run / "config.json")
    return run


def child(args: argparse.Namespace) -> None:
    """Measure one scene in this (fresh) process and print one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from landslide_tf.inference.predictor import Predictor
    from landslide_tf.inference.scene import predict_scene

    predictor = Predictor.load(args.run)
    warm = np.zeros((args.batch, args.window, args.window, 3), np.uint8)
    predictor.predict_batch(warm, np.zeros(warm.shape[:3], np.float32))  # trace once
    rss_before = rss_mib()
    peak_before = peak_rss_mib()
    tracemalloc.start()
    start = time.perf_counter()
    out = Path(args.folder) / f"prob{args.size}.tif"
    result = predict_scene(
        predictor,
        args.image,
        out,
        dem=args.dem,
        polygons=Path(args.folder) / f"poly{args.size}.geojson" if args.polygons else None,
        window=args.window,
        overlap=args.overlap,
        batch=args.batch,
    )
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "size": args.size,
                "windows": result.windows,
                "seconds": seconds,
                "rss_after_warmup_mib": rss_before,
                "peak_rss_mib": peak_rss_mib(),
                "scene_rss_growth_mib": max(0.0, peak_rss_mib() - max(peak_before, rss_before)),
                "tracemalloc_peak_mib": traced_peak / 2**20,
                "polygons": result.n_polygons,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run every size in a fresh process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--polygons", action="store_true", help="also trace polygons")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--size", "--run", "--image", "--dem", "--folder"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    add_results_args(parser)
    args = parser.parse_args(argv)
    if args.child:
        args.size = int(args.size)
        child(args)
        return 0
    print(
        f"model {args.model} (base filters {args.base_filters}, depth {args.depth}, 128 px), "
        f"window {args.window}, overlap {args.overlap}, batch {args.batch}, "
        f"{os.cpu_count()} CPU(s)"
    )
    header = (
        f"{'size':>6} {'Mpx':>6} {'windows':>7} {'seconds':>8} {'s/Mpx':>6} "
        f"{'peak RSS MiB':>12} {'scene growth MiB':>16} {'tracemalloc MiB':>15}"
    )
    print(header)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Recorder() as recorder:
        folder = Path(tmp)
        run = make_run(folder, args.model, args.base_filters, args.depth)
        for size in args.sizes:
            image, dem = write_scene(folder, size)
            command = [
                sys.executable,
                __file__,
                "--child",
                *("--size", str(size), "--run", str(run), "--image", str(image)),
                *("--dem", str(dem), "--folder", str(folder)),
                *("--window", str(args.window), "--overlap", str(args.overlap)),
                *("--batch", str(args.batch)),
                *(["--polygons"] if args.polygons else []),
            ]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
            proc = run_child(command, env=env)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(r)
            mpx = size * size / 1e6
            print(
                f"{size:>6} {mpx:>6.1f} {r['windows']:>7} {r['seconds']:>8.1f} "
                f"{r['seconds'] / mpx:>6.2f} {r['peak_rss_mib']:>12.0f} "
                f"{r['scene_rss_growth_mib']:>16.0f} {r['tracemalloc_peak_mib']:>15.1f}",
                flush=True,
            )
            for path in folder.glob(f"*{size}.*"):
                path.unlink()
    figures = {
        "model": args.model,
        "base_filters": args.base_filters,
        "depth": args.depth,
        "window": args.window,
        "overlap": args.overlap,
        "batch": args.batch,
        "polygons": args.polygons,
        "rows": rows,
    }
    save(args, "scene.py", argv, figures, recorder=recorder)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, interrupted=INTERRUPTED))
