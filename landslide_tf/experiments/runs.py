"""One study run: what to train (``RunSpec``) and what came out (``RunResult``).

No TensorFlow here: the table and selection logic works on these records alone.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from landslide_tf.metrics.thresholds import read_threshold

#: File the study writes into each run dir: wall time, status and the requested config.
RECORD_FILE = "experiment.json"
ERROR_FILE = "error.txt"


def run_name(model: str, loss: str, seed: int) -> str:
    """Run folder name, for example ``unetpp-dice-s42``."""
    return f"{model}-{loss}-s{seed}"


@dataclasses.dataclass
class RunSpec:
    """One training run of the study.

    Attributes:
        model: registry model name.
        loss: loss name.
        seed: run seed.
        stage: 1 (base x loss grid) or 3 (attention variants).
        config: the full ``TrainConfig`` as a dict (``run_dir`` included).
    """

    model: str
    loss: str
    seed: int
    stage: int
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return run_name(self.model, self.loss, self.seed)

    @property
    def run_dir(self) -> Path:
        return Path(self.config["run_dir"])


@dataclasses.dataclass
class RunResult:
    """The outcome of one run.

    Attributes:
        name: run folder name.
        model, loss, seed, stage: as in ``RunSpec``.
        status: ``"trained"`` (epochs trained by this invocation), ``"rescored"`` (trained
            earlier, scored again by this invocation: other scoring options, or a run stopped
            before it was scored), ``"cached"`` (finished earlier, same config) or
            ``"failed"``.
        metrics: test metrics (``miou``, ``auc``, ``precision``, ``recall``, ``f1``,
            ``accuracy``, ...); empty when failed.
        val_miou: validation mIoU of the kept checkpoint, when known.
        wall_s: training wall time in seconds (of the invocation that trained it; a
            ``rescored`` run keeps it where it was recorded).
        error: one-line error for failed runs.
        run_dir: the run folder.
        threshold_source: ``"tuned"`` when the test metrics are at the run's
            validation-tuned threshold (``threshold.json``), else ``"config"``
            (``config.threshold``, 0.5 unless set); the value is ``metrics["threshold"]``.
    """

    name: str
    model: str
    loss: str
    seed: int
    stage: int
    status: str
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    val_miou: float | None = None
    wall_s: float | None = None
    error: str | None = None
    run_dir: str = ""
    threshold_source: str = "config"

    @property
    def ok(self) -> bool:
        return self.status in ("trained", "rescored", "cached")

    def score(self, split: str, metric: str = "miou") -> float | None:
        """The selection score: a test metric, or the validation mIoU for ``split="val"``."""
        if not self.ok:
            return None
        if split == "val":
            return self.val_miou
        value = self.metrics.get(metric)
        return None if value is None else float(value)

    @classmethod
    def from_spec(cls, spec: RunSpec, status: str, **kwargs: Any) -> RunResult:
        if "metrics" in kwargs and "threshold_source" not in kwargs:
            kwargs["threshold_source"] = threshold_source(spec.run_dir, kwargs["metrics"])
        return cls(
            name=spec.name,
            model=spec.model,
            loss=spec.loss,
            seed=spec.seed,
            stage=spec.stage,
            status=status,
            run_dir=str(spec.run_dir),
            **kwargs,
        )


def read_val_miou(run_dir: Path) -> float | None:
    """Validation mIoU of the kept checkpoint: metrics.json, state.json or history.csv."""
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        for key in ("val", "validation"):
            if isinstance(metrics.get(key), dict) and "miou" in metrics[key]:
                return float(metrics[key]["miou"])
        if "val_miou" in metrics:
            return float(metrics["val_miou"])
    state_path = run_dir / "state.json"
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("monitor") == "val_miou" and state.get("best_value") is not None:
            return float(state["best_value"])
    history = run_dir / "history.csv"
    if history.is_file():
        with history.open(newline="") as fh:
            values = [float(r["val_miou"]) for r in csv.DictReader(fh) if r.get("val_miou")]
        if values:
            return max(values)
    return None


def read_test_metrics(run_dir: Path) -> dict[str, float]:
    """Test metrics from ``metrics.json`` (the top level or its ``test`` entry)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if isinstance(metrics.get("test"), dict):
        metrics = metrics["test"]
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def threshold_source(run_dir: Path, metrics: dict[str, Any]) -> str:
    """``"tuned"`` when ``metrics`` were scored at the run's tuned threshold, else ``"config"``."""
    tuned = read_threshold(run_dir)  # a damaged file: one DataError line
    value = metrics.get("threshold")
    if tuned is not None and value is not None and abs(float(value) - tuned) < 1e-9:
        return "tuned"
    return "config"
