"""A study's outputs: what ``run_study`` produced and the tables, figures and README it writes.

``core.run_study`` trains the runs and builds a ``StudyOutcome``; the writers here turn it into
``table1/2/3``, ``runs.csv``, figures 4-6, ``environment.json`` and ``README.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import shlex
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from landslide_tf.experiments import figures, tables
from landslide_tf.experiments.reference import loss_label, model_label
from landslide_tf.experiments.runs import RunResult
from landslide_tf.experiments.study import Study
from landslide_tf.files import atomic_write_text

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class StudyOutcome:
    """What ``run_study`` produced.

    Attributes:
        study: the study as run (CLI overrides applied).
        out: the output folder.
        results: one result per run (stage 1 then stage 3).
        selected: stage 2: ``{base: loss}`` (``None`` where every run of the base failed).
        attention_loss: the loss the attention variants were trained with.
        attention_loss_note: why that loss (selected, or the paper's fallback).
        split_sizes: ``{"train": n, "val": n, "test": n}``.
        figures: ``{file name: "ok" or the error}``.
        gradcam_energy: mean inside-mask CAM energy share per model label.
        wall_s: wall time of this invocation.
        synthetic: the dataset is the synthetic one (tables and README say so).
    """

    study: Study
    out: Path
    results: list[RunResult]
    selected: dict[str, str | None]
    attention_loss: str | None
    attention_loss_note: str
    split_sizes: dict[str, int]
    figures: dict[str, str]
    gradcam_energy: dict[str, float]
    wall_s: float
    synthetic: bool = False  # issue 16: synthetic-data note

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if not r.ok]

    def final_models(self) -> list[tuple[str, str | None]]:
        """The Table 3 rows: each base with its selected loss, then the attention models."""
        rows = [(b, self.selected.get(b)) for b in self.study.bases]
        rows += [(m, self.attention_loss) for m in self.study.attention_models]
        return rows


SYNTHETIC_NOTE = (
    "> **Synthetic data.** These runs used the synthetic Bijie-like dataset (the default when "
    "no `--data` is given), which exists to make the pipeline runnable anywhere: the paper's "
    "figures and the differences beside ours say nothing about real Bijie imagery."
)


def write_tables(outcome: StudyOutcome) -> None:
    """Write ``table1``, ``table2`` and ``table3`` (``.md`` and ``.csv``) into ``out``."""
    study, results = outcome.study, outcome.results
    note = SYNTHETIC_NOTE + "\n\n" if outcome.synthetic else ""
    md, rows = tables.table1(results, study.bases, study.losses, outcome.selected,
                             study.select_on, study.seeds)  # fmt: skip
    tables.write_table(outcome.out, "table1", note + md, rows)
    bases = [(b, outcome.selected.get(b)) for b in study.bases]
    md, rows = tables.table3(results, bases, study.seeds,
                             title="Table 2: the base models with their selected loss")  # fmt: skip
    tables.write_table(outcome.out, "table2", note + md, rows)
    md, rows = tables.table3(results, outcome.final_models(), study.seeds)
    tables.write_table(outcome.out, "table3", note + md, rows)


def write_runs_csv(outcome: StudyOutcome) -> None:
    """``runs.csv``: every run with its status, wall time, metrics or error."""
    fields = ["run", "model", "loss", "seed", "stage", "status", "wall_s", "miou", "val_miou",
              "auc", "precision", "recall", "f1", "accuracy", "threshold", "threshold_source",
              "error", "run_dir"]  # fmt: skip
    rows = []
    for r in outcome.results:
        row = {"run": r.name, "model": r.model, "loss": r.loss, "seed": r.seed,
               "stage": r.stage, "status": r.status, "wall_s": r.wall_s,
               "val_miou": r.val_miou, "error": r.error, "run_dir": r.run_dir,
               "threshold_source": r.threshold_source if r.ok else None}  # fmt: skip
        row.update({k: r.metrics.get(k) for k in fields if k in r.metrics})
        rows.append({k: "" if v is None else v for k, v in row.items()})
    atomic_write_text(outcome.out / "runs.csv", tables.csv_string(fields, rows))


def _final_runs(outcome: StudyOutcome) -> list[RunResult]:
    runs = []
    for model, loss in outcome.final_models():
        ok = [r for r in outcome.results if r.model == model and r.loss == loss and r.ok]
        if ok:
            runs.append(min(ok, key=lambda r: r.seed))
    return runs


def write_figures(outcome: StudyOutcome, n: int = 4) -> None:
    """Figures 4-6 of the final models; a failing figure is logged and noted, not raised.

    A figure not drawn by this call (skipped or failed) is removed: an earlier invocation's
    file would show other runs under this README.
    """
    _draw_figures(outcome, n)
    for name in FIGURE_FILES:
        if outcome.figures.get(name) != "ok":
            (outcome.out / name).unlink(missing_ok=True)


#: The study's figure files (``write_figures``).
FIGURE_FILES = ("fig4_loss_curves.png", "fig5_predictions.png", "fig6_gradcam.png")


def _draw_figures(outcome: StudyOutcome, n: int) -> None:
    runs = _final_runs(outcome)
    out = outcome.out
    if not runs:
        for name in ("fig4_loss_curves.png", "fig5_predictions.png", "fig6_gradcam.png"):
            outcome.figures[name] = "skipped: no finished final model"
        return
    try:
        figures.plot_study_loss_curves(runs, out / "fig4_loss_curves.png")
        outcome.figures["fig4_loss_curves.png"] = "ok"
    except Exception as exc:  # noqa: BLE001 - keep the other outputs
        logger.warning("fig4 failed: %r", exc)
        outcome.figures["fig4_loss_curves.png"] = f"failed: {exc!r}"
    try:
        x, y, stems, spec = figures.load_test_tiles(runs[0], n)
        probs, cams, energy = figures.predict_and_explain(runs, x, y)
    except Exception as exc:  # noqa: BLE001
        logger.warning("predictions for figures 5/6 failed: %r", exc)
        outcome.figures["fig5_predictions.png"] = f"failed: {exc!r}"
        outcome.figures["fig6_gradcam.png"] = f"failed: {exc!r}"
        return
    try:
        figures.plot_study_predictions(x, y, stems, spec, probs,
                                       out / "fig5_predictions.png")  # fmt: skip
        outcome.figures["fig5_predictions.png"] = "ok"
    except Exception as exc:  # noqa: BLE001
        logger.warning("fig5 failed: %r", exc)
        outcome.figures["fig5_predictions.png"] = f"failed: {exc!r}"
    try:
        if not cams:
            raise RuntimeError("GradCAM failed for every model (see the log)")
        figures.plot_study_gradcam(x, y, stems, spec, cams, energy,
                                   out / "fig6_gradcam.png")  # fmt: skip
        outcome.figures["fig6_gradcam.png"] = "ok"
        outcome.gradcam_energy = figures.mean_energy(energy)
    except Exception as exc:  # noqa: BLE001
        logger.warning("fig6 failed: %r", exc)
        outcome.figures["fig6_gradcam.png"] = f"failed: {exc!r}"


def environment() -> dict[str, Any]:
    """TensorFlow/Keras versions, Python, platform, CPU count and the TF devices."""
    import keras
    import tensorflow as tf

    devices = []
    for device in tf.config.list_physical_devices():
        name = device.name
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            name += f" ({details.get('device_name', 'GPU')})"
        devices.append(name)
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "devices": devices,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _fmt_s(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f}"


def write_readme(outcome: StudyOutcome, root: Path, command: str | None, started: datetime) -> None:
    """``README.md``: environment, protocol, split, selection, per-run wall time, outputs."""
    study, out = outcome.study, outcome.out
    env = environment()
    atomic_write_text(out / "environment.json", json.dumps(env, indent=2) + "\n")
    cmd = command or " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        f"# Study `{study.name}`: results",
        "",
        study.description,
        "",
        *([SYNTHETIC_NOTE, ""] if outcome.synthetic else []),
        f"- Command: `{cmd}`",
        f"- Study definition: {study.source} (as run, overrides applied: `study.json`)",
        f"- Started {started.isoformat(timespec='seconds')}; this invocation took "
        f"{outcome.wall_s:.0f} s ({outcome.wall_s / 60:.1f} min).",
        "",
        "## Environment",
        "",
        f"- TensorFlow {env['tensorflow']}, Keras {env['keras']}, Python {env['python']}",
        f"- Platform: {env['platform']}, {env['cpu_count']} CPU cores",
        f"- Devices: {', '.join(env['devices'])}",
        "",
        "## Protocol",
        "",
        "- Stage 1: "
        + ", ".join(model_label(b) for b in study.bases)
        + " x "
        + ", ".join(loss_label(loss) for loss in study.losses)
        + ".",
        f"- Stage 2: per base, the loss with the best mean mIoU on the **{study.select_on}** "
        "split"
        + (
            " (what the paper did)."
            if study.select_on == "test"
            else " (the paper selected on the test split)."
        ),
        "- Stage 3: "
        + (
            ", ".join(model_label(m) for m in study.attention_models)
            + f" with {loss_label(outcome.attention_loss or '')} "
            if study.attention_models
            else "none "
        )
        + f"({outcome.attention_loss_note}).",
        f"- Seeds: {', '.join(str(s) for s in study.seed_list)} (every run repeated "
        f"{study.seeds}x; tables show mean ± sample std where n > 1).",
        "- Training settings shared by every run: "
        + ", ".join(f"{k}={v}" for k, v in sorted(study.train.items()) if k != "seed")
        + ".",
        "",
        "## Split",
        "",
        f"- Dataset: {root}",
        f"- One split for every run, seed {study.split_seed}, fractions "
        f"{'/'.join(str(f) for f in study.split_fractions)}: train "
        f"{outcome.split_sizes['train']}, val {outcome.split_sizes['val']}, test "
        f"{outcome.split_sizes['test']} tiles; stems in `split/train.txt`, `split/val.txt`, "
        "`split/test.txt`.",
        "",
        "## Stage-2 selection",
        "",
        f"| base | selected loss | mean {study.select_on} mIoU |",
        "| --- | --- | --- |",
    ]
    for base in study.bases:
        loss = outcome.selected.get(base)
        scores = [r.score(study.select_on) for r in outcome.results
                  if r.model == base and r.loss == loss and r.stage == 1]  # fmt: skip
        mean, _, _ = tables.mean_std(s for s in scores if s is not None)
        lines.append(f"| {model_label(base)} | {loss_label(loss) if loss else 'none'} | "
                     f"{'' if mean is None else f'{mean:.3f}'} |")  # fmt: skip
    lines += [
        "",
        "## Runs",
        "",
        "Status `trained` = trained by this invocation, `rescored` = trained earlier and "
        "scored again by this invocation (other scoring options), `cached` = finished earlier "
        "with the same config (the wall time of both is the training's, from then), "
        "`failed` = see `runs/<run>/error.txt`.",
        "",
        "| run | stage | status | wall time (s) | test mIoU | val mIoU | error |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in outcome.results:
        miou = r.metrics.get("miou")
        lines.append(
            f"| {r.name} | {r.stage} | {r.status} | {_fmt_s(r.wall_s)} | "
            f"{'' if miou is None else f'{miou:.3f}'} | "
            f"{'' if r.val_miou is None else f'{r.val_miou:.3f}'} | {r.error or ''} |"
        )
    walls = [r.wall_s for r in outcome.results if r.wall_s is not None]
    lines += [
        "",
        f"Sum of run wall times: {sum(walls):.0f} s over {len(walls)} runs.",
        "",
        "## Outputs",
        "",
        "- `table1.md` / `.csv`: mIoU per base x loss, paper's Table 1 and the difference.",
        "- `table2.md` / `.csv`: the bases with their selected loss, all metrics.",
        "- `table3.md` / `.csv`: the six final models, all metrics, paper's Table 3 and the "
        "difference.",
        "- `runs.csv`: every run; `runs.log.jsonl`: every outcome of every invocation.",
    ]
    for name, status in outcome.figures.items():
        lines.append(f"- `{name}`: {status}")
    if outcome.gradcam_energy:
        lines += ["", "Mean share of GradCAM energy inside the true mask (fig 6 tiles):", ""]
        for label, share in outcome.gradcam_energy.items():
            lines.append(f"- {label}: {'n/a' if math.isnan(share) else f'{share:.2f}'}")
    atomic_write_text(out / "README.md", "\n".join(lines) + "\n")
