"""Ours vs keras-unet-collection with alternating calls: ratios that survive a shared machine.

``train_throughput.py`` and ``inference_latency.py`` time our model, then its peer; when other
processes share the CPU, a load change between the two skews the ratio (on the project's
shared 2-core box we saw ratios move by 1.6x between runs). Here each model and its peer are
built side by side, warmed up, and then called in turns (ours, peer, ours, peer, ...), so a
load spike hits both alike. Printed per model: the median inference ms per tile (one
``tf.function`` forward) and training tiles/s (``train_on_batch``, Adam, binary
cross-entropy) of both, and the ratio of the medians (inference: ours / peer, < 1 = ours
faster; training: ours / peer, > 1 = ours faster).

Usage::

    python benchmarks/interleaved.py                          # unet, resunet, unetpp; batch 2
    python benchmarks/interleaved.py --models unetpp_ctx --batch 8 --rounds 10
    python benchmarks/interleaved.py --models unetpp_spatial --against unetpp   # attention cost
    python benchmarks/interleaved.py --models unetpp --against reference-unetpp --batch 8
    python benchmarks/interleaved.py --models unet --encoder resnet18 --depth 5 \
        --base-filters 16 --channels 3 --against sm-unet --batch 8   # segmentation_models

Figures depend on the machine: the header line names it; quote it with any number.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - after the sys.path line
    QUICK_MODELS,
    add_model_args,
    compile_for_training,
    print_header,
    random_batch,
    unknown_models,
    write_json,
)
from _record import Recorder, add_results_args, save  # noqa: E402


def alternate(steps: dict[str, Any], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Call every step ``warmup`` times, then ``rounds`` times in turns; seconds per call."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {key: [] for key in steps}
    for _ in range(rounds):
        for key, step in steps.items():
            start = time.perf_counter()
            step()  # returns numpy: the call has finished
            times[key].append(time.perf_counter() - start)
    return times


def compare(ours: Any, peer: Any, batch: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median inference ms/tile and training tiles/s of two models called in turns."""
    import tensorflow as tf

    x, y = random_batch(batch, ours.input_shape[1:])
    xt = tf.constant(x)  # (batch, h, w, c)
    forward = {
        key: tf.function(lambda t, m=model: m(t, training=False))
        for key, model in (("ours", ours), ("peer", peer))
    }
    infer = alternate(
        {key: (lambda f=f: f(xt).numpy()) for key, f in forward.items()}, rounds, warmup
    )
    for model in (ours, peer):
        compile_for_training(model)
    train = alternate(
        {
            key: (lambda m=model: m.train_on_batch(x, y))
            for key, model in (("ours", ours), ("peer", peer))
        },
        rounds,
        warmup,
    )
    row = {}
    for key in ("ours", "peer"):
        row[f"{key}_ms_per_tile"] = 1000.0 * statistics.median(infer[key]) / batch
        row[f"{key}_train_tiles_per_s"] = batch / statistics.median(train[key])
    row["infer_ratio"] = row["ours_ms_per_tile"] / row["peer_ms_per_tile"]
    row["train_ratio"] = row["ours_train_tiles_per_s"] / row["peer_train_tiles_per_s"]
    return row


#: ``--against`` value for the plain-Keras nested U-Net++ of ``_unetpp_reference``.
REFERENCE = "reference-unetpp"
#: ``--against`` value for segmentation_models' Keras ``Unet`` with ``--encoder``'s backbone.
SM_UNET = "sm-unet"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_args(p, precision=False, peers=False)
    p.add_argument("--batch", type=int, default=2, help="tiles per call (default 2)")
    p.add_argument("--rounds", type=int, default=5, help="timed calls of each (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls of each first")
    p.add_argument(
        "--against",
        help="compare with this model of ours instead of the keras-unet-collection peer, or "
        f"with '{REFERENCE}' (a plain-Keras U-Net++ with the nested skips, _unetpp_reference)"
        f" or '{SM_UNET}' (segmentation_models' Unet with --encoder's backbone)",
    )
    p.add_argument("--encoder", help="our models with this encoder (random init)")
    add_results_args(p)
    args = p.parse_args(argv)
    args.models = args.models or list(QUICK_MODELS)
    reference = args.against == REFERENCE
    sm_unet = args.against == SM_UNET
    if sm_unet and not args.encoder:
        print(f"error: --against {SM_UNET} needs --encoder (resnet18, resnet50, efficientnet_b0)")
        return 2
    against = [] if not args.against or reference or sm_unet else [args.against]
    error = unknown_models([*args.models, *against])
    if error:
        print(error)
        return 2
    import keras
    from _peers import PeerUnavailable, build_peer, build_sm_unet, peer_label
    from _unetpp_reference import build_reference_unetpp

    from landslide_tf.models import build_model

    shape = (args.image_size, args.image_size, args.channels)
    width = {"base_filters": args.base_filters, "depth": args.depth}
    if args.encoder:
        width.update(encoder=args.encoder, encoder_weights="none")
    print_header(
        "interleaved.py",
        argv,
        f"ours and {args.against or 'peer'} called in turns, input {shape}, base_filters {args.base_filters}, "
        f"depth {args.depth}, batch {args.batch}, {args.rounds} rounds after {args.warmup} "
        "warm-up; medians",
        [
            "model",
            "peer",
            "ours ms/tile",
            "peer ms/tile",
            "infer ours/peer",
            "ours train tiles/s",
            "peer train tiles/s",
            "train ours/peer",
        ],
    )
    results = {}
    with Recorder() as recorder:
        for name in args.models:
            keras.utils.clear_session(free_memory=True)
            ours = build_model(name, input_shape=shape, **width)
            label = args.against or peer_label(name)
            try:
                peer = (
                    build_reference_unetpp(shape, args.base_filters, args.depth)
                    if reference
                    else build_sm_unet(args.encoder, shape)
                    if sm_unet
                    else build_model(args.against, input_shape=shape, **width)
                    if args.against
                    else build_peer(name, shape, args.base_filters, args.depth)
                )
            except (KeyError, PeerUnavailable) as exc:
                print(f"error: {exc}")
                return 2
            row = compare(ours, peer, args.batch, args.rounds, args.warmup)
            print(
                f"| {name} | {label} | {row['ours_ms_per_tile']:.1f} | "
                f"{row['peer_ms_per_tile']:.1f} | {row['infer_ratio']:.2f} | "
                f"{row['ours_train_tiles_per_s']:.2f} | {row['peer_train_tiles_per_s']:.2f} | "
                f"{row['train_ratio']:.2f} |",
                flush=True,
            )
            results[name] = {"peer": label, **row}
    write_json(args.json, args, results=results)
    figures = {
        "input": list(shape),
        "base_filters": args.base_filters,
        "depth": args.depth,
        "encoder": args.encoder,
        "batch": args.batch,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "against": args.against,
        "rows": [{"model": name, **row} for name, row in results.items()],
    }
    save(args, "interleaved.py", argv, figures, recorder=recorder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
