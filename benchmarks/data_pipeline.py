"""Throughput of the data pipeline: tiles/s from disk (first epoch) and from the cache.

Usage::

    python benchmarks/data_pipeline.py [--n 120] [--image-size 128] [--batch-size 2]

Generates a synthetic set (``--n`` landslide tiles plus ``n // 4`` negatives) in a temporary
folder unless ``--data`` is given, then times:

- first epoch, cached pipeline: decode + preprocess every tile (``load_sample``) and iterate;
- later epochs of the cached pipeline (shuffle + batch + prefetch from memory);
- the same with ``--augment`` (paired flips/rotations);
- one epoch of the uncached (``cache=False``) generator pipeline, which decodes every pass.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _epoch(ds) -> int:
    count = 0
    for x, _ in ds:
        count += int(x.shape[0])
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=120, help="synthetic landslide tiles")
    parser.add_argument("--data", default=None, help="existing dataset instead of synthetic")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="cached epochs to time")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from landslide_tf.data import find_samples, make_dataset, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            start = time.perf_counter()
            root = synthesize(os.path.join(tmp, "synth"), n=args.n, seed=0)
            took = time.perf_counter() - start
            print(
                f"synthesize: {args.n + args.n // 4} tiles in {took:.2f} s "
                f"({(args.n + args.n // 4) / took:.1f} tiles/s)"
            )
        samples = find_samples(root, negatives="on")
        common = dict(image_size=args.image_size, batch_size=args.batch_size, seed=0)
        print(
            f"{len(samples)} tiles, {args.image_size}x{args.image_size}, rgb+dem, "
            f"batch {args.batch_size}, {tf.config.threading.get_inter_op_parallelism_threads()} "
            f"inter-op threads, {os.cpu_count()} CPUs"
        )
        for augment in (False, True):
            start = time.perf_counter()
            ds = make_dataset(samples, shuffle=True, augment=augment, **common)
            n = _epoch(ds)
            first = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(args.epochs):
                n2 = _epoch(ds)
            cached = (time.perf_counter() - start) / args.epochs
            label = "augment" if augment else "plain  "
            print(
                f"cached pipeline, {label}: first epoch from disk {n / first:8.1f} tiles/s "
                f"({first:.2f} s); cached epochs {n2 / cached:8.1f} tiles/s ({cached:.3f} s)"
            )
        ds = make_dataset(samples, cache=False, **common)
        start = time.perf_counter()
        n = _epoch(ds)
        took = time.perf_counter() - start
        print(f"uncached generator pipeline: {n / took:8.1f} tiles/s per epoch ({took:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
