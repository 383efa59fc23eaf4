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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - after the sys.path line
    Comparison,
    comparison_main,
    median_seconds,
    random_batch,
)


def time_inference(model: Any, batch_size: int, repeats: int, warmup: int, jit: bool):
    """Median milliseconds per tile of one compiled forward pass.

    Args:
        model: a Keras model ``(N, H, W, C) -> (N, H, W, 1)``.
        batch_size: tiles per call.
        repeats: timed calls.
        warmup: untimed calls first (tracing / XLA compilation).
        jit: ``tf.function(jit_compile=True)``.

    Returns:
        ``(ms_per_tile, seconds_per_call_list)``.
    """
    import tensorflow as tf

    x = tf.constant(random_batch(batch_size, model.input_shape[1:])[0])  # (batch, h, w, c)
    forward = tf.function(lambda t: model(t, training=False), jit_compile=jit)
    # .numpy() waits for the result
    median, times = median_seconds(lambda: forward(x).numpy(), repeats, warmup)
    return 1000.0 * median / batch_size, times


COMPARISON = Comparison(
    script="inference_latency.py",
    description=__doc__.split("\n\n")[0],
    what="inference latency",
    measure=time_inference,
    value="ms/tile",
    summary="median ms per tile",
    unit="ms_per_tile",
    samples="call_s",
    digits=1,
    batch_sizes=(1, 32),
    count="repeats",
    noun="calls",
    count_default=10,
    quick_count=3,
    warmup=2,
)


def main(argv: list[str] | None = None) -> int:
    return comparison_main(COMPARISON, argv)


if __name__ == "__main__":
    raise SystemExit(main())
