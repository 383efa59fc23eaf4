"""XLA (``jit_compile=True``) against plain TensorFlow graphs for training, in turns.

Usage::

    python benchmarks/xla_cpu.py [--model unetpp] [--base-filters 32] [--depth 4] [--batch 8]
        [--precisions float32 bfloat16] [--steps 4] [--rounds 3]

For each precision, builds the model twice (same weights), compiles one with XLA and one
without (Adam, binary cross-entropy, as ``train`` does), warms both up (tracing, XLA
compilation), then times ``--steps`` ``train_on_batch`` calls of each in turns (plain, XLA,
plain, XLA, ...) for ``--rounds`` rounds. Prints the median seconds per step of each and the
ratio plain / XLA (> 1: XLA faster), with the load average. This is the measurement the
``--jit`` default rests on (README performance notes); GPUs were not measured here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import Recorder, add_results_args, save  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unetpp")
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    add_results_args(parser)
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from landslide_tf.models import build_model
    from landslide_tf.training.precision import apply_precision

    load = lambda: " ".join(f"{v:.2f}" for v in os.getloadavg())  # noqa: E731
    print(f"{os.cpu_count()} CPUs, load average {load()}")
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, args.image_size, args.image_size, 3), dtype=np.float32)
    y = (rng.random((args.batch, args.image_size, args.image_size, 1)) > 0.9).astype(np.float32)
    rows = []
    recorder = Recorder().__enter__()
    for precision in args.precisions:
        apply_precision(precision)
        models = {}
        for jit in (False, True):
            keras.utils.set_random_seed(0)
            model = build_model(
                args.model,
                input_shape=(args.image_size, args.image_size, 3),
                base_filters=args.base_filters,
                depth=args.depth,
            )
            model.compile(
                optimizer=keras.optimizers.Adam(1e-3),
                loss="binary_crossentropy",
                jit_compile=jit,
            )
            model.train_on_batch(x, y)  # trace / compile
            model.train_on_batch(x, y)
            models["xla" if jit else "plain"] = model
        times: dict[str, list[float]] = {"plain": [], "xla": []}
        for _ in range(args.rounds):
            for key, model in models.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    model.train_on_batch(x, y)
                times[key].append((time.perf_counter() - start) / args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"{args.model} width {args.base_filters} batch {args.batch} {precision}: "
            f"plain {med['plain']:.2f} s/step, XLA {med['xla']:.2f} s/step, "
            f"ratio plain / XLA {med['plain'] / med['xla']:.2f}x (load {load()})",
            flush=True,
        )
        rows.append(
            {
                "precision": precision,
                "plain_s_per_step": med["plain"],
                "xla_s_per_step": med["xla"],
                "ratio_plain_over_xla": med["plain"] / med["xla"],
            }
        )
    recorder.__exit__(None, None, None)
    apply_precision("float32")
    figures = {
        "model": args.model,
        "base_filters": args.base_filters,
        "depth": args.depth,
        "batch": args.batch,
        "image_size": args.image_size,
        "steps": args.steps,
        "rounds": args.rounds,
        "rows": rows,
    }
    save(args, "xla_cpu.py", argv, figures, recorder=recorder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
