"""Size, FLOPs and CPU throughput of the six paper models, next to keras-unet-collection.

For each model at the given width (default: base_filters 32, depth 4, 128x128x4 tiles) it
prints the parameter count, the FLOPs of one forward pass on one tile, and train and inference
throughput in tiles/s; and, in the same run, the same figures for keras-unet-collection's
``unet_2d`` / ``r2_unet_2d`` / ``unet_plus_2d`` at equal widths (see ``_peers.py``), with
``ours / peer`` ratios (> 1: ours is faster; FLOPs and params: ours relative to the peer).

FLOPs are counted on the graph: the model's forward pass is traced for a batch of one tile,
frozen, and ``tf.compat.v1.profiler`` sums the registered ``float_operation`` statistics
(a multiply-add = 2 FLOPs; convolutions, transposed convolutions, matmuls and element-wise
ops). Training: median seconds of ``train_on_batch`` (Adam, binary cross-entropy) on one random
batch after warm-up; inference: median of ``predict_on_batch``.

Usage::

    python benchmarks/models.py                   # six paper models + peers
    python benchmarks/models.py --quick           # 2 timed steps, batch 2
    python benchmarks/models.py --models unet unetpp --no-peers --json out.json
    python benchmarks/models.py --models unet unetpp --encoders resnet18 --steps 0  # record 'encoders'

``--encoders`` measures each model with each keras-hub encoder (random weights, no download;
depth 5 unless ``--depth`` is given) instead of the peers.

Figures depend on the machine: the header line names it; quote it with any number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - after the sys.path line
    PAPER_MODELS,
    add_model_args,
    compile_for_training,
    median_seconds,
    ours_and_peers,
    print_header,
    random_batch,
    unknown_models,
    write_json,
)
from _record import Recorder, add_results_args, save  # noqa: E402

#: Registry name -> the paper's model (README tables).
PAPER_NAMES = {
    "unet": "1. U-Net",
    "resunet": "2. ResUNet",
    "unetpp": "3. U-Net++",
    "unetpp_spatial": "4. U-Net++ + spatial attention",
    "unetpp_ctx": "5. U-Net++ + contextual attention",
    "unetpp_spatial_ctx": "6. U-Net++ + spatial + contextual",
}


def count_flops(model: Any) -> int:
    """FLOPs of one forward pass on one tile, from the frozen TF graph (profiler count)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=None, cmd="op", options=opts)
    return int(info.total_float_ops)


def time_model(model: Any, batch: int, steps: int, warmup: int) -> tuple[float, float]:
    """Median training and inference tiles/s on one random batch."""
    x, y = random_batch(batch, model.input_shape[1:])
    # jit "auto": Keras' default here (XLA on a GPU, not on a CPU-only machine)
    compile_for_training(model, jit="auto")
    # both return numpy: the step has finished
    infer = median_seconds(lambda: model.predict_on_batch(x), steps, warmup)[0]
    train = median_seconds(lambda: model.train_on_batch(x, y), steps, warmup)[0]
    return batch / train, batch / infer


def measure(model: Any, batch: int, steps: int, warmup: int) -> dict[str, float]:
    """Params, GFLOPs per tile and (unless ``steps == 0``) train/inference tiles/s."""
    train, infer = time_model(model, batch, steps, warmup) if steps > 0 else (None, None)
    return {
        "params": model.count_params(),
        "gflops": count_flops(model) / 1e9,
        "train_tiles_s": train,
        "infer_tiles_s": infer,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(p, precision=False)
    p.add_argument("--batch", type=int, help="tiles per step (default 4; --quick 2)")
    p.add_argument("--steps", type=int, help="timed steps (default 5; --quick 2; 0: size only)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="2 timed steps at batch 2")
    p.add_argument("--encoders", nargs="+", help="also/only: models with these encoders")
    add_results_args(p)
    args = p.parse_args(argv)
    if args.encoders and "--depth" not in (argv if argv is not None else sys.argv):
        args.depth = 5  # every backbone stage (strides 2..32)
    if args.encoders and not args.name:  # the README's encoder table, not its six-model one
        args.name = "encoders"
    args.models = args.models or list(PAPER_MODELS)
    args.batch = args.batch or (2 if args.quick else 4)
    if args.steps is None:
        args.steps = 2 if args.quick else 5
    return args


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(ours: float | None, peer: float | None) -> str:
    return "-" if not ours or not peer else f"{ours / peer:.2f}"


def _fmt(row: dict[str, Any], peer: dict[str, Any] | None) -> str:
    ours = (
        f"{row['params']:,} | {row['gflops']:.2f} | {_rate(row['train_tiles_s'])} | "
        f"{_rate(row['infer_tiles_s'])}"
    )
    if peer is None:
        return f"{ours} | - | - | - | - | -"
    return (
        f"{ours} | {peer['label']} | {row['params'] / peer['params']:.3f} | "
        f"{row['gflops'] / peer['gflops']:.3f} | "
        f"{_ratio(row['train_tiles_s'], peer['train_tiles_s'])} | "
        f"{_ratio(row['infer_tiles_s'], peer['infer_tiles_s'])}"
    )


def _encoder_rows(args: Any, shape: tuple, width: dict, results: dict[str, Any]) -> None:
    """One row per model x encoder (random-initialised backbone, nothing downloaded)."""
    import keras

    from landslide_tf.models import build_model

    for name in args.models:
        for encoder in args.encoders:
            keras.utils.clear_session(free_memory=True)
            model = build_model(
                name, input_shape=shape, encoder=encoder, encoder_weights="none", **width
            )
            row = measure(model, args.batch, args.steps, args.warmup)
            print(f"| {name} + {encoder} | {_fmt(row, None)} |", flush=True)
            results[f"{name}+{encoder}"] = {**row, "peer": None}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    error = unknown_models(args.models)
    if error:
        print(error)
        return 2
    shape = (args.image_size, args.image_size, args.channels)
    width = {"base_filters": args.base_filters, "depth": args.depth}
    print_header(
        "models.py",
        argv,
        f"input {shape}, {width}, batch {args.batch}, median of {args.steps} timed steps "
        f"after {args.warmup} warm-up; GFLOPs per tile (forward, profiler count)",
        [
            "model",
            "params",
            "GFLOPs/tile",
            "train tiles/s",
            "infer tiles/s",
            "peer",
            "params ratio",
            "FLOPs ratio",
            "train ratio",
            "infer ratio",
        ],
    )
    results: dict[str, Any] = {}
    with Recorder() as recorder:
        if args.encoders:
            _encoder_rows(args, shape, width, results)
        else:
            rows = ours_and_peers(
                args,
                [args.batch],
                lambda model, batch: measure(model, batch, args.steps, args.warmup),
            )
            for name, _, row, label, peer in rows:
                peer = {"label": label, **peer} if peer else None
                print(f"| {name} | {_fmt(row, peer)} |", flush=True)
                results[name] = {**row, "peer": peer}
    write_json(args.json, args, results=results)
    figures = {
        "input": list(shape),
        "base_filters": args.base_filters,
        "depth": args.depth,
        "batch": args.batch,
        "steps": args.steps,
        "models": [
            {"model": key, "paper_name": PAPER_NAMES.get(key, ""), **row}
            for key, row in results.items()
        ],
    }
    save(args, "models.py", argv, figures, recorder=recorder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
