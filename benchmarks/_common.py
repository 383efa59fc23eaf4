"""Pieces shared by the model benchmarks: arguments, machine line, timing, ours-vs-peer loop.

``train_throughput.py`` and ``inference_latency.py`` are one :class:`Comparison` each, run by
:func:`comparison_main`; ``models.py`` uses the pieces. They import this module with::

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/
    from _common import ...

TensorFlow, Keras and landslide_tf are imported inside the functions that need them, so
``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAPER_MODELS = ("unet", "resunet", "unetpp", "unetpp_spatial", "unetpp_ctx", "unetpp_spatial_ctx")
QUICK_MODELS = ("unet", "resunet", "unetpp")


def machine_description() -> str:
    """One line naming the machine a figure comes from: CPU model and cores, GPUs, TF."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus = tf.config.list_physical_devices("GPU")
    gpu_names = []
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        gpu_names.append(details.get("device_name", gpu.name))
    accel = ", ".join(gpu_names) if gpu_names else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} CPU cores, {accel}; TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}"
    )


def add_model_args(
    parser: argparse.ArgumentParser, *, precision: bool = True, peers: bool = True
) -> None:
    """Add ``--models``, the width and input options, ``--json`` (and, with ``precision``,
    ``--jit`` and ``--mixed-precision``; with ``peers``, ``--no-peers``)."""
    parser.add_argument("--models", nargs="+", help=f"default: {' '.join(PAPER_MODELS)}")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--base-filters", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--channels", type=int, default=4, help="RGB + DEM = 4")
    if precision:
        parser.add_argument("--jit", action="store_true", help="XLA (jit_compile=True)")
        parser.add_argument("--mixed-precision", action="store_true")
    if peers:
        parser.add_argument("--no-peers", action="store_true", help="time our models only")
    parser.add_argument("--json", type=Path, help="also write the results here")


def unknown_models(names: Sequence[str]) -> str | None:
    """The ``error: ...`` line for names missing from the registry, or ``None``."""
    from landslide_tf.models import MODELS

    unknown = [m for m in names if m not in MODELS]
    if not unknown:
        return None
    return f"error: unknown model(s) {', '.join(unknown)}; valid: {', '.join(MODELS)}"


def print_header(script: str, argv: list[str] | None, details: str, columns: Sequence[str]) -> None:
    """Print the machine line, ``details``, the command line and a markdown table header."""
    print(f"# machine: {machine_description()}")
    print(f"# {details}")
    print(f"# command: python benchmarks/{script} {' '.join(argv or sys.argv[1:])}")
    print(f"| {' | '.join(columns)} |")
    print(f"|{'---|' * len(columns)}")


def random_batch(batch: int, shape: Sequence[int]) -> tuple[Any, Any]:
    """One fixed random batch: images ``(batch, *shape)`` in [0, 1) and ~20 % positive masks.

    Returns:
        ``(x, y)``: float32 ``(batch, h, w, c)`` and float32 ``(batch, h, w, 1)``.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = (rng.random((batch, *shape[:2], 1)) > 0.8).astype("float32")
    return x, y


def compile_for_training(model: Any, jit: bool | str = False) -> None:
    """Compile as every benchmark does: Adam(1e-5), binary cross-entropy, ``jit_compile``."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-5),
        loss=keras.losses.BinaryCrossentropy(),
        jit_compile=jit,
    )


def median_seconds(step: Callable[[], Any], steps: int, warmup: int) -> tuple[float, list[float]]:
    """Run ``step`` ``warmup`` times untimed, then time it ``steps`` times.

    ``step`` must return only once the work is done (return numpy, or call ``.numpy()``).

    Returns:
        ``(median_seconds, seconds_per_step)``.
    """
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[str]:
    """Set the mixed-precision policy (``landslide_tf.training.distribute``) for the block; yield its
    name (``"float32"`` when off); restore float32 afterwards."""
    from landslide_tf.training.distribute import apply_mixed_precision

    try:
        yield apply_mixed_precision(mixed) or "float32"
    finally:
        apply_mixed_precision(False)


def ours_and_peers(
    args: argparse.Namespace,
    batch_sizes: Sequence[int],
    measure: Callable[[Any, int], Any],
) -> Iterator[tuple[str, int, Any, str, Any]]:
    """Measure each of ``args.models`` and its keras-unet-collection peer at each batch size.

    Every model is built in a fresh Keras session at ``args``' input size and width; a peer is
    measured once per (peer, batch size) and reused for the models that share it. When
    keras-unet-collection is missing, one ``# peers skipped: ...`` line is printed and peers
    are ``None`` from then on (so is a model's peer with ``--no-peers``).

    Args:
        args: With ``models``, ``image_size``, ``channels``, ``base_filters``, ``depth``,
            ``no_peers``.
        batch_sizes: Batch sizes to measure each model at.
        measure: ``measure(model, batch_size) -> result`` (the model is not kept).

    Yields:
        ``(model name, batch size, our result, peer label, peer result or None)``.
    """
    import keras
    from _peers import PeerUnavailable, build_peer, peer_label

    from landslide_tf.models import build_model

    shape = (args.image_size, args.image_size, args.channels)
    width = {"base_filters": args.base_filters, "depth": args.depth}
    cache: dict[tuple[str, int], Any] = {}
    peer_error = None
    for name in args.models:
        for batch in batch_sizes:
            keras.utils.clear_session(free_memory=True)
            ours = measure(build_model(name, input_shape=shape, **width), batch)
            label = peer_label(name)
            key = (label, batch)
            if not args.no_peers and peer_error is None and key not in cache and label != "-":
                keras.utils.clear_session(free_memory=True)
                try:
                    peer_model = build_peer(name, shape, args.base_filters, args.depth)
                except PeerUnavailable as exc:
                    peer_error = str(exc)
                    print(f"# peers skipped: {peer_error}")
                else:
                    cache[key] = measure(peer_model, batch)
                    del peer_model
            gc.collect()
            yield name, batch, ours, label, cache.get(key)


def compare_rows(
    args: argparse.Namespace,
    batch_sizes: Sequence[int],
    measure: Callable[[Any, int], tuple[float, list[float]]],
    unit: str,
    samples: str,
    digits: int,
) -> list[dict[str, Any]]:
    """Print one ``| model | batch | ours | peer | peer value | ours/peer |`` row per model
    and batch size (see :func:`ours_and_peers`) and return the rows as records.

    Args:
        args: As :func:`ours_and_peers`.
        batch_sizes: Batch sizes.
        measure: ``measure(model, batch) -> (value, seconds per timed step)``.
        unit: Record key suffix of the value (``tiles_per_s``, ``ms_per_tile``).
        samples: Record key suffix of the timings (``step_s``, ``call_s``).
        digits: Decimals of the printed values.

    Returns:
        ``{"model", "batch", "ours_<unit>", "ours_<samples>", "peer", "peer_<unit>",
        "ratio"}`` per row; ``ratio = ours / peer`` (``None`` without a peer).
    """
    results = []
    for name, batch, (ours, times), label, peer in ours_and_peers(args, batch_sizes, measure):
        peer_value = peer[0] if peer else None
        ratio = ours / peer_value if peer_value else None
        print(
            f"| {name} | {batch} | {ours:.{digits}f} | {label if peer_value else '-'} | "
            f"{f'{peer_value:.{digits}f}' if peer_value else '-'} | "
            f"{f'{ratio:.2f}' if ratio else '-'} |",
            flush=True,
        )
        results.append(
            {
                "model": name,
                "batch": batch,
                f"ours_{unit}": ours,
                f"ours_{samples}": times,
                "peer": label if peer_value else None,
                f"peer_{unit}": peer_value,
                "ratio": ratio,
            }
        )
    return results


def write_json(path: Path | None, args: argparse.Namespace, **payload: Any) -> None:
    """Write ``{"machine", "args", **payload}`` as JSON to ``path`` (nothing if ``None``)."""
    if path is None:
        return
    from landslide_tf.files import atomic_write_text

    data = {"machine": machine_description(), "args": vars(args), **payload}
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


@dataclass(frozen=True)
class Comparison:
    """What one ours-vs-peer timing script measures and how it names it.

    Attributes:
        script: File name under ``benchmarks/`` (for the command line it prints).
        description: ``--help`` description.
        what: Heading of the details line (``training throughput``).
        measure: ``measure(model, batch, count, warmup, jit) -> (value, seconds per call)``.
        value: Column label of the value (``tiles/s``).
        summary: How the value is summarised, for the details line (``median tiles/s``).
        unit: Record key suffix of the value (``tiles_per_s``).
        samples: Record key suffix of the timings (``step_s``).
        digits: Decimals of the printed values.
        batch_sizes: Default batch sizes.
        count: Option name of the timed-call count (``steps``) ...
        noun: ... and what is timed (``steps``, ``calls``).
        count_default: Default count ...
        quick_count: ... and the one with ``--quick``.
        warmup: Default untimed calls first.
    """

    script: str
    description: str
    what: str
    measure: Callable[[Any, int, int, int, bool], tuple[float, list[float]]]
    value: str
    summary: str
    unit: str
    samples: str
    digits: int
    batch_sizes: tuple[int, ...]
    count: str
    noun: str
    count_default: int
    quick_count: int
    warmup: int


def parse_comparison_args(spec: Comparison, argv: list[str] | None) -> argparse.Namespace:
    """The command line of a :class:`Comparison` script."""
    p = argparse.ArgumentParser(description=spec.description)
    add_model_args(p)
    batches = " ".join(map(str, spec.batch_sizes))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None, help=f"default {batches}")
    p.add_argument(
        f"--{spec.count}",
        type=int,
        help=f"timed {spec.noun} (default {spec.count_default}; --quick {spec.quick_count})",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=spec.warmup,
        help=f"untimed {spec.noun} first (default {spec.warmup})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"models {' '.join(QUICK_MODELS)}, {spec.quick_count} timed {spec.noun}",
    )
    from _record import add_results_args

    add_results_args(p)
    args = p.parse_args(argv)
    args.models = args.models or list(QUICK_MODELS if args.quick else PAPER_MODELS)
    args.batch_sizes = args.batch_sizes or list(spec.batch_sizes)
    count = getattr(args, spec.count) or (spec.quick_count if args.quick else spec.count_default)
    setattr(args, spec.count, count)
    return args


def comparison_main(spec: Comparison, argv: list[str] | None = None) -> int:
    """Run a :class:`Comparison` script: header, one row per model and batch, JSON.

    Returns:
        0, or 2 (with an ``error: ...`` line) for unknown model names.
    """
    args = parse_comparison_args(spec, argv)
    error = unknown_models(args.models)
    if error:
        print(error)
        return 2
    from _record import Recorder, save

    count = getattr(args, spec.count)
    shape = (args.image_size, args.image_size, args.channels)
    with precision_policy(args.mixed_precision) as policy, Recorder() as recorder:
        print_header(
            spec.script,
            argv,
            f"{spec.what}, input {shape}, base_filters {args.base_filters}, depth "
            f"{args.depth}, policy {policy}, jit {args.jit}, {count} timed {spec.noun} after "
            f"{args.warmup} warm-up; {spec.summary}",
            ["model", "batch", f"ours {spec.value}", "peer", f"peer {spec.value}", "ours/peer"],
        )
        results = compare_rows(
            args,
            args.batch_sizes,
            lambda model, batch: spec.measure(model, batch, count, args.warmup, args.jit),
            unit=spec.unit,
            samples=spec.samples,
            digits=spec.digits,
        )
    write_json(args.json, args, policy=policy, results=results)
    figures = {
        "input": list(shape),
        "base_filters": args.base_filters,
        "depth": args.depth,
        "policy": policy,
        "jit": args.jit,
        spec.count: count,
        "warmup": args.warmup,
        "unit": spec.unit,
        "rows": results,
    }
    save(args, spec.script, argv, figures, recorder=recorder)
    return 0
