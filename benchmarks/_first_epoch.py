"""One first (uncached) epoch of ``make_dataset`` in this fresh process; prints one JSON line.

Run by ``benchmarks/data_pipeline.py --baseline-src`` once per turn and implementation, with
``--src`` naming the source tree to import ``landslide_tf`` from: the current checkout or a
checkout of an older commit (``git worktree add /tmp/before COMMIT``). A fresh process per
turn is what a user's ``train`` sees: nothing traced, nothing decoded yet. Only the dataset
build and one pass over it are timed (not the imports).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", required=True, help="source tree holding landslide_tf/")
    parser.add_argument("--data", required=True, help="Bijie-layout dataset folder")
    parser.add_argument("--modalities", default="rgb")
    parser.add_argument("--negatives", default="off")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--cache", type=int, default=1, help="1: in memory (default), 0: stream")
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.src))
    logging.disable(logging.WARNING)

    import landslide_tf
    from landslide_tf.data import find_samples

    try:  # this tree: the one pipeline takes an InputSpec
        from landslide_tf.data.pipeline import make_dataset
        from landslide_tf.data.spec import bijie_spec

        inputs = {"spec": bijie_spec(args.image_size, args.modalities)}
    except ImportError:  # a release before the InputSpec (compared with --baseline)
        from landslide_tf.data import make_dataset

        inputs = {"image_size": args.image_size, "modalities": args.modalities}

    if not os.path.abspath(landslide_tf.__file__).startswith(os.path.abspath(args.src)):
        raise SystemExit(f"imported {landslide_tf.__file__}, not from {args.src}")
    samples = find_samples(args.data, modalities=args.modalities, negatives=args.negatives)
    if args.limit:
        samples = samples[: args.limit]
    start, cpu = time.perf_counter(), time.process_time()
    ds = make_dataset(
        samples,
        **inputs,
        batch_size=args.batch_size,
        shuffle=True,
        seed=0,
        cache=bool(args.cache),
    )
    n = sum(int(x.shape[0]) for x, _ in ds)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"tiles": n, "tiles_per_s": n / wall, "cpu_ms_per_tile": cpu / n * 1e3}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
