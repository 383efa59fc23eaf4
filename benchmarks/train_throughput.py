"""Training throughput (tiles/s) of landslide_tf's models next to keras-unet-collection's.

For each model and batch size, the script builds our network and its peer (see ``_peers``)
at the same widths, compiles both the same way (Adam, binary cross-entropy, float32 unless
``--mixed-precision``, XLA with ``--jit``), runs ``--warmup`` steps (tracing, compilation),
then times ``--steps`` ``train_on_batch`` calls on one fixed random batch. It prints the
median tiles/s of both and ``ratio = ours / peer`` (> 1: ours trains faster).

Usage::

    python benchmarks/train_throughput.py                 # the six paper models, batch 2 and 16
    python benchmarks/train_throughput.py --quick         # unet, resunet, unetpp; fewer steps
    python benchmarks/train_throughput.py --models unet --batch-sizes 2 8 --jit --json out.json

Figures depend on the machine: the header line names it; quote it with any number.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PAPER_MODELS = ("unet", "resunet", "unetpp", "unetpp_spatial", "unetpp_ctx", "unetpp_spatial_ctx")
QUICK_MODELS = ("unet", "resunet", "unetpp")


def time_training(model, batch_size: int, image_size: int, steps: int, warmup: int, jit: bool):
    """Median tiles/s of ``train_on_batch`` on one random batch.

    Args:
        model: an uncompiled Keras model ``(N, H, W, C) -> (N, H, W, 1)`` probabilities.
        batch_size: tiles per step.
        image_size: tile side.
        steps: timed steps.
        warmup: untimed steps first (tracing / XLA compilation).
        jit: compile with ``jit_compile=True``.

    Returns:
        ``(tiles_per_s, seconds_per_step_list)``.
    """
    import keras
    import numpy as np

    channels = model.input_shape[-1]
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, image_size, image_size, channels), dtype=np.float32)
    y = (rng.random((batch_size, image_size, image_size, 1)) > 0.8).astype("float32")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-5),
        loss=keras.losses.BinaryCrossentropy(),
        jit_compile=jit,
    )
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)  # returns the loss as numpy: the step has finished
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times), times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", help=f"default: {' '.join(PAPER_MODELS)}")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default 2 16")
    p.add_argument("--steps", type=int, help="timed steps (default 5; --quick 2)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--base-filters", type=int, default=32)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--channels", type=int, default=4, help="RGB + DEM = 4")
    p.add_argument("--jit", action="store_true", help="XLA (jit_compile=True)")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--no-peers", action="store_true", help="time our models only")
    p.add_argument(
        "--quick", action="store_true", help=f"models {' '.join(QUICK_MODELS)}, 2 timed steps"
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    args.models = args.models or list(QUICK_MODELS if args.quick else PAPER_MODELS)
    args.batch_sizes = args.batch_sizes or [2, 16]
    args.steps = args.steps or (2 if args.quick else 5)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    from _peers import PeerUnavailable, build_peer, machine_description, peer_label

    from landslide_tf.distribute import apply_mixed_precision
    from landslide_tf.models import MODELS, build_model

    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}")
        return 2
    policy = apply_mixed_precision(args.mixed_precision) or "float32"
    shape = (args.image_size, args.image_size, args.channels)
    print(f"# machine: {machine_description()}")
    print(
        f"# training throughput, input {shape}, base_filters {args.base_filters}, depth "
        f"{args.depth}, policy {policy}, jit {args.jit}, {args.steps} timed steps after "
        f"{args.warmup} warm-up; median tiles/s"
    )
    print(f"# command: python benchmarks/train_throughput.py {' '.join(argv or sys.argv[1:])}")
    header = "| model | batch | ours tiles/s | peer | peer tiles/s | ours/peer |"
    print(header)
    print("|---|---|---|---|---|---|")
    results, peer_cache, peer_error = [], {}, None
    for name in args.models:
        for batch in args.batch_sizes:
            keras.utils.clear_session(free_memory=True)
            ours = build_model(
                name, input_shape=shape, base_filters=args.base_filters, depth=args.depth
            )
            ours_rate, ours_times = time_training(
                ours, batch, args.image_size, args.steps, args.warmup, args.jit
            )
            del ours
            label = peer_label(name)
            key = (label, batch)
            if not args.no_peers and peer_error is None and key not in peer_cache:
                keras.utils.clear_session(free_memory=True)
                try:
                    peer = build_peer(name, shape, args.base_filters, args.depth)
                except PeerUnavailable as exc:
                    peer_error = str(exc)
                    print(f"# peers skipped: {peer_error}")
                else:
                    peer_cache[key] = time_training(
                        peer, batch, args.image_size, args.steps, args.warmup, args.jit
                    )
                    del peer
            gc.collect()
            peer_rate = peer_cache.get(key, (None, None))[0]
            ratio = ours_rate / peer_rate if peer_rate else None
            print(
                f"| {name} | {batch} | {ours_rate:.2f} | {label if peer_rate else '-'} | "
                f"{f'{peer_rate:.2f}' if peer_rate else '-'} | "
                f"{f'{ratio:.2f}' if ratio else '-'} |",
                flush=True,
            )
            results.append(
                {
                    "model": name,
                    "batch": batch,
                    "ours_tiles_per_s": ours_rate,
                    "ours_step_s": ours_times,
                    "peer": label if peer_rate else None,
                    "peer_tiles_per_s": peer_rate,
                    "ratio": ratio,
                }
            )
    apply_mixed_precision(False)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine_description(),
                    "args": vars(args) | {"json": str(args.json)},
                    "policy": policy,
                    "results": results,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
