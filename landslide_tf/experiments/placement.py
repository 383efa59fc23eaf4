"""Where the parallel runs of ``experiments --jobs N`` go: GPUs, shared GPUs or CPU slots.

Decided without importing TensorFlow (the parent process only spawns the runs):

- no GPU: ``N`` CPU processes, the cores shared among them (``configure_threads``);
- ``N <= GPUs``: one GPU per run (``CUDA_VISIBLE_DEVICES`` names one card per process);
- ``N > GPUs``: runs share the GPUs round-robin (slot ``k`` -> GPU ``k % GPUs``); every run
  on a shared card gets GPU memory growth (``TF_FORCE_GPU_ALLOW_GROWTH=true``), since
  TensorFlow otherwise reserves almost all of a card's memory for the first process on it.
  A small U-Net at batch 2 uses a fraction of a modern GPU, so several fit on one.
"""

from __future__ import annotations

import dataclasses
import os

#: TensorFlow reads this before it initialises the GPU: allocate memory as needed.
GROWTH_ENV = "TF_FORCE_GPU_ALLOW_GROWTH"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One of the ``N`` parallel places: a GPU id (``None`` = CPU) and whether it is shared."""

    index: int
    gpu: str | None
    shared: bool

    def describe(self) -> str:
        if self.gpu is None:
            return f"slot {self.index}"
        return f"GPU {self.gpu}" + (" (shared, memory growth)" if self.shared else "")

    def apply(self, environ: dict | None = None) -> None:
        """Set the process environment for this slot (call before TensorFlow is imported)."""
        environ = os.environ if environ is None else environ
        if self.gpu is None:
            return
        environ["CUDA_VISIBLE_DEVICES"] = self.gpu
        if self.shared:
            environ[GROWTH_ENV] = "true"


def plan_slots(jobs: int, gpus: list[str]) -> list[Slot]:
    """The ``jobs`` slots for the visible ``gpus`` (ids as in ``CUDA_VISIBLE_DEVICES``)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if not gpus:
        return [Slot(k, None, False) for k in range(jobs)]
    per_gpu = {g: sum(1 for k in range(jobs) if gpus[k % len(gpus)] == g) for g in gpus}
    return [Slot(k, gpus[k % len(gpus)], per_gpu[gpus[k % len(gpus)]] > 1) for k in range(jobs)]
