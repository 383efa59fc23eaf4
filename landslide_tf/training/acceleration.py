"""Accelerator settings chosen per device: ``steps_per_execution`` and the XLA default.

``steps_per_execution`` (``--steps-per-execution``, ``0`` = auto): Keras runs that many
training steps per call into the compiled graph. A small U-Net at batch 2 finishes a step
on a modern GPU or a TPU in about a millisecond, less than the host's per-step dispatch, so
the device idles between steps; running several steps per call removes that gap. ``auto``:

- CPU only: ``1`` (a step takes ~0.1-1 s here; the dispatch cost is noise);
- GPU or TPU with a global batch of at most ``SMALL_BATCH`` tiles: ``min(MAX_STEPS,
  steps per epoch)``;
- larger batches: ``1``.

The choice and its reason go to ``config.json`` (``steps_per_execution_used``,
``steps_per_execution_reason``). Callbacks that act per batch then see every ``n``-th batch;
per-epoch logging, checkpoints and the NaN guard at epoch end are unchanged.

XLA (``--jit``) stays off by default: measured on the development CPU it was no faster (see
``docs/readme_performance.md``, ``benchmarks/xla_cpu.py``); GPUs were not measured.
"""

from __future__ import annotations

import math
from typing import Any

from landslide_tf.training.precision import Hardware

#: Largest global batch for which ``auto`` runs several steps per execution on accelerators.
SMALL_BATCH = 16
#: Most steps per execution chosen by ``auto``.
MAX_STEPS = 32


def choose_steps_per_execution(
    hw: Hardware, global_batch: int, steps_per_epoch: int
) -> tuple[int, str]:
    """The ``auto`` rule: ``(steps_per_execution, reason)``.

    >>> choose_steps_per_execution(Hardware(gpus=((8, 0),)), 2, 100)[0]
    32
    """
    if not (hw.tpu or hw.gpus):
        return 1, "CPU only: a step takes far longer than its dispatch"
    device = "TPU" if hw.tpu else "GPU"
    if global_batch > SMALL_BATCH:
        return 1, f"{device}, global batch {global_batch} > {SMALL_BATCH}"
    steps = max(1, min(MAX_STEPS, int(steps_per_epoch)))
    return steps, (
        f"{device}, global batch {global_batch} <= {SMALL_BATCH}: {steps} steps per call "
        "hide the per-step dispatch"
    )


def run_steps_per_execution(config: Any, global_batch: int, n_train: int) -> dict[str, Any]:
    """``steps_per_execution_used`` and its reason for ``config.json``."""
    steps_per_epoch = max(1, math.ceil(n_train / max(1, global_batch)))
    if config.steps_per_execution and config.steps_per_execution > 0:
        used = int(config.steps_per_execution)
        reason = f"--steps-per-execution {used} given"
    else:
        from landslide_tf.training.precision import detect_hardware

        used, reason = choose_steps_per_execution(
            detect_hardware(config.strategy), global_batch, steps_per_epoch
        )
    return {"steps_per_execution_used": used, "steps_per_execution_reason": reason}
