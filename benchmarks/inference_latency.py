"""Inference latency (ms per tile) of landslide_tf's models next to keras-unet-collection's.

For each model and batch size, the script builds our network and its peer (see ``_peers``)
at the same widths, wraps ``model(x, training=False)`` in one ``tf.function`` (XLA with
``--jit``), runs ``--warmup`` calls (tracing, compilation), then times ``--repeats`` calls on
one fixed random batch and prints the median milliseconds per tile of both and
``ratio = ours / peer`` (< 1: ours is faster). The paper reports 3-4 ms/image (4-5 ms with
attention) on a Colab T4 GPU; figures from other machines are not comparable with those.

Usage::

    python benchmarks/inference_latency.py                 # the six paper models, batch 1 and 32
    python benchmarks/inference_latency.py --quick         # unet, resunet, unetpp; fewer repeats
    python benchmarks/inference_latency.py --models unetpp --batch-sizes 1 --jit

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


def time_inference(model, batch_size: int, image_size: int, repeats: int, warmup: int, jit: bool):
    """Median milliseconds per tile of one compiled forward pass.

    Args:
        model: a Keras model ``(N, H, W, C) -> (N, H, W, 1)``.
        batch_size: tiles per call.
        image_size: tile side.
        repeats: timed calls.
        warmup: untimed calls first (tracing / XLA compilation).
        jit: ``tf.function(jit_compile=True)``.

    Returns:
        ``(ms_per_tile, seconds_per_call_list)``.
    """
    import numpy as np
    import tensorflow as tf

    channels = model.input_shape[-1]
    x = tf.constant(
        np.random.default_rng(0).random(
            (batch_size, image_size, image_size, channels), dtype=np.float32
        )
    )  # (batch, h, w, c)
    forward = tf.function(lambda t: model(t, training=False), jit_compile=jit)
    for _ in range(warmup):
        forward(x).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(x).numpy()  # .numpy() waits for the result
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times) / batch_size, times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", help=f"default: {' '.join(PAPER_MODELS)}")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None, help="default 1 32")
    p.add_argument("--repeats", type=int, help="timed calls (default 10; --quick 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--base-filters", type=int, default=32)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--channels", type=int, default=4, help="RGB + DEM = 4")
    p.add_argument("--jit", action="store_true", help="XLA (jit_compile=True)")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--no-peers", action="store_true", help="time our models only")
    p.add_argument(
        "--quick", action="store_true", help=f"models {' '.join(QUICK_MODELS)}, 3 repeats"
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    args.models = args.models or list(QUICK_MODELS if args.quick else PAPER_MODELS)
    args.batch_sizes = args.batch_sizes or [1, 32]
    args.repeats = args.repeats or (3 if args.quick else 10)
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
        f"# inference latency, input {shape}, base_filters {args.base_filters}, depth "
        f"{args.depth}, policy {policy}, jit {args.jit}, {args.repeats} timed calls after "
        f"{args.warmup} warm-up; median ms per tile"
    )
    print(f"# command: python benchmarks/inference_latency.py {' '.join(argv or sys.argv[1:])}")
    print("| model | batch | ours ms/tile | peer | peer ms/tile | ours/peer |")
    print("|---|---|---|---|---|---|")
    results, peer_cache, peer_error = [], {}, None
    for name in args.models:
        for batch in args.batch_sizes:
            keras.utils.clear_session(free_memory=True)
            ours = build_model(
                name, input_shape=shape, base_filters=args.base_filters, depth=args.depth
            )
            ours_ms, ours_times = time_inference(
                ours, batch, args.image_size, args.repeats, args.warmup, args.jit
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
                    peer_cache[key] = time_inference(
                        peer, batch, args.image_size, args.repeats, args.warmup, args.jit
                    )
                    del peer
            gc.collect()
            peer_ms = peer_cache.get(key, (None, None))[0]
            ratio = ours_ms / peer_ms if peer_ms else None
            print(
                f"| {name} | {batch} | {ours_ms:.1f} | {label if peer_ms else '-'} | "
                f"{f'{peer_ms:.1f}' if peer_ms else '-'} | "
                f"{f'{ratio:.2f}' if ratio else '-'} |",
                flush=True,
            )
            results.append(
                {
                    "model": name,
                    "batch": batch,
                    "ours_ms_per_tile": ours_ms,
                    "ours_call_s": ours_times,
                    "peer": label if peer_ms else None,
                    "peer_ms_per_tile": peer_ms,
                    "ratio": ratio,
                }
            )
    apply_mixed_precision(False)
    if args.json:
        payload = {
            "machine": machine_description(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "policy": policy,
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
