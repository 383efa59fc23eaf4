"""First-epoch tiles/s of the input pipeline: the former eager loader against the parallel one.

Usage::

    python benchmarks/data_pipeline.py [--n 120] [--image-size 128] [--batch-size 8] [--turns 3]
        [--real ../shared/data/l4s-rgb-dev] [--limit 0]

Two datasets, same process, same machine: a synthetic set (``--n`` landslide tiles plus
``n // 4`` negatives, RGB + DEM, made in a temporary folder) and the real RGB set
``l4s-rgb-dev`` (skipped with a note where absent). For each, in turns (old, new, old, new...
so a load change on a shared machine hits both alike):

- ``old``: ``load_arrays`` (tile by tile: read, eager TensorFlow preprocessing) then one
  epoch over the in-memory dataset: what ``make_dataset`` did before issue 14;
- ``new``: ``make_dataset`` (parallel decode + traced preprocessing in tf.data) and one epoch;
- ``stream``: ``make_dataset(cache=False)``: one epoch decoded from disk on the fly.

Every figure is a first, uncached epoch: the files are in the OS page cache after the first
turn for both implementations alike, the decoded tiles are not. Prints the median tiles/s of
each, the CPU milliseconds per tile (all threads of the process: the figure a shared machine
disturbs least) and the ratios new / old, with the load average.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "l4s-rgb-dev"


def _epoch(ds) -> int:
    return sum(int(x.shape[0]) for x, _ in ds)


def _old(samples, batch: int, options: dict) -> int:
    import tensorflow as tf

    from landslide_tf.data.pipeline import load_arrays

    x, y = load_arrays(samples, **options)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(batch)
    return _epoch(ds.prefetch(tf.data.AUTOTUNE))


def _new(samples, batch: int, options: dict, cache: bool = True) -> int:
    from landslide_tf.data import make_dataset

    ds = make_dataset(samples, batch_size=batch, shuffle=True, seed=0, cache=cache, **options)
    return _epoch(ds)


def _time(fn, *args, **kwargs) -> tuple[float, float]:
    """(tiles/s wall, CPU ms per tile over all threads of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = fn(*args, **kwargs)
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e3


def bench(name: str, samples, args, options: dict) -> None:
    rates: dict[str, list[float]] = {"old": [], "new": [], "stream": []}
    cpus: dict[str, list[float]] = {"old": [], "new": [], "stream": []}
    _new(samples[: min(16, len(samples))], args.batch_size, options)  # trace once
    for _ in range(args.turns):
        for key, fn, extra in (
            ("old", _old, {}),
            ("new", _new, {}),
            ("stream", _new, {"cache": False}),
        ):
            rate, cpu = _time(fn, samples, args.batch_size, options, **extra)
            rates[key].append(rate)
            cpus[key].append(cpu)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    print(f"{name}: {len(samples)} tiles, {options['modalities']}, {options['image_size']} px")
    for key, label in (
        ("old", "old (eager, tile by tile)"),
        ("new", "new (parallel, in memory)"),
        ("stream", "new, streaming (cache=False)"),
    ):
        turns = " ".join(f"{r:.0f}" for r in rates[key])
        print(
            f"  {label:30s} {med[key]:8.1f} tiles/s, {cpu_med[key]:5.2f} CPU ms/tile "
            f"(turns: {turns})"
        )
    print(
        f"  ratio new / old: {med['new'] / med['old']:.1f}x first epoch tiles/s, "
        f"{cpu_med['old'] / cpu_med['new']:.1f}x less CPU per tile"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=120, help="synthetic landslide tiles")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3, help="timed turns per implementation")
    parser.add_argument("--real", default=str(REAL), help="real RGB set (l4s-rgb-dev)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N real tiles")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # RGBA notes per tile would dominate the output

    import tensorflow as tf

    from landslide_tf.data import find_samples, synthesize

    print(
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
        f"TensorFlow {tf.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = synthesize(os.path.join(tmp, "synth"), n=args.n, seed=0)
        samples = find_samples(root, negatives="on")
        options = dict(image_size=args.image_size, modalities="rgb+dem")
        bench("synthetic", samples, args, options)
    real = Path(args.real)
    if (real / "landslide" / "image").is_dir():
        samples = find_samples(real, modalities="rgb")
        if args.limit:
            samples = samples[: args.limit]
        bench("l4s-rgb-dev", samples, args, dict(image_size=args.image_size, modalities="rgb"))
    else:
        print(f"l4s-rgb-dev: skipped ({real} not found)")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
