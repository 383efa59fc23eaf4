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

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - after the sys.path line
    Comparison,
    comparison_main,
    compile_for_training,
    median_seconds,
    random_batch,
)


def time_training(model: Any, batch_size: int, steps: int, warmup: int, jit: bool):
    """Median tiles/s of ``train_on_batch`` on one random batch.

    Args:
        model: an uncompiled Keras model ``(N, H, W, C) -> (N, H, W, 1)`` probabilities.
        batch_size: tiles per step.
        steps: timed steps.
        warmup: untimed steps first (tracing / XLA compilation).
        jit: compile with ``jit_compile=True``.

    Returns:
        ``(tiles_per_s, seconds_per_step_list)``.
    """
    x, y = random_batch(batch_size, model.input_shape[1:])
    compile_for_training(model, jit)
    # train_on_batch returns the loss as numpy: the step has finished
    median, times = median_seconds(lambda: model.train_on_batch(x, y), steps, warmup)
    return batch_size / median, times


COMPARISON = Comparison(
    script="train_throughput.py",
    description=__doc__.split("\n\n")[0],
    what="training throughput",
    measure=time_training,
    value="tiles/s",
    summary="median tiles/s",
    unit="tiles_per_s",
    samples="step_s",
    digits=2,
    batch_sizes=(2, 16),
    count="steps",
    noun="steps",
    count_default=5,
    quick_count=2,
    warmup=1,
)


def main(argv: list[str] | None = None) -> int:
    return comparison_main(COMPARISON, argv)


if __name__ == "__main__":
    raise SystemExit(main())
