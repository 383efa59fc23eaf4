"""Stage-2 selection and the study's tables (pure Python, works on ``RunResult`` records).

Every table puts the paper's figure and ``ours - paper`` next to our value. With several
seeds a value is ``mean ± std`` (sample standard deviation, ``n - 1``) over the seeds that
finished; ``(n=k)`` marks a cell where fewer seeds than asked for finished.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from landslide_tf.experiments.reference import (
    METRIC_LABELS,
    METRICS,
    PAPER_TABLE1,
    PAPER_TABLE3,
    loss_label,
    model_label,
)
from landslide_tf.experiments.runs import RunResult
from landslide_tf.files import atomic_write_text

EXTRA_METRICS = ("iou_background", "iou_landslide")


def mean_std(values: Iterable[float]) -> tuple[float | None, float | None, int]:
    """Mean, sample std (``None`` for fewer than two values) and count of finite values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None, None, 0
    std = statistics.stdev(vals) if len(vals) > 1 else None
    return statistics.fmean(vals), std, len(vals)


def format_mean_std(values: Sequence[float], digits: int = 3, expected: int | None = None) -> str:
    """Format values as ``0.612`` (one), ``0.612 ± 0.010`` (several) or ``failed`` (none).

    Args:
        values: the per-seed values.
        digits: decimals.
        expected: the number of seeds asked for; fewer finite values add ``(n=k)``.

    >>> format_mean_std([0.6]), format_mean_std([0.6, 0.62]), format_mean_std([])
    ('0.600', '0.610 ± 0.014', 'failed')
    """
    mean, std, n = mean_std(values)
    if mean is None:
        return "failed"
    text = f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"
    if expected is not None and n < expected:
        text += f" (n={n})"
    return text


def _metric_cell(values: Sequence[float | None], seeds: int | None) -> str:
    """``format_mean_std`` of the finished runs' ``values`` of one metric; ``n/a`` where runs
    finished but none has the metric (AUC of a test split with one class is null)."""
    if values and all(v is None or not math.isfinite(float(v)) for v in values):
        return "n/a"
    return format_mean_std(values, expected=seeds)


def _fmt_diff(ours: float | None, paper: float | None, digits: int = 3) -> str:
    if ours is None or paper is None:
        return ""
    return f"{ours - paper:+.{digits}f}"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def threshold_text(runs: Iterable[RunResult]) -> str:
    """The decision threshold(s) the finished runs' test metrics used, and whence.

    ``0.50`` (one value), ``0.41–0.47`` (seeds differ), with ``tuned on val`` when the
    runs used their validation-tuned ``threshold.json`` (``k of n`` when only some did).
    """
    ok = [r for r in runs if r.ok and r.metrics.get("threshold") is not None]
    if not ok:
        return ""
    values = sorted({round(float(r.metrics["threshold"]), 3) for r in ok})
    text = f"{values[0]:.2f}" if len(values) == 1 else f"{values[0]:.2f}–{values[-1]:.2f}"
    tuned = sum(r.threshold_source == "tuned" for r in ok)
    if tuned:
        text += " tuned on val" + ("" if tuned == len(ok) else f" ({tuned} of {len(ok)})")
    return text


def group_results(results: Iterable[RunResult], model: str, loss: str) -> list[RunResult]:
    """All runs (every seed) of one model/loss pair."""
    return [r for r in results if r.model == model and r.loss == loss]


def select_best_losses(
    results: Sequence[RunResult],
    bases: Sequence[str],
    losses: Sequence[str],
    split: str = "test",
    metric: str = "miou",
) -> dict[str, str | None]:
    """Stage 2: per base, the loss with the highest mean score over its finished seeds.

    Args:
        results: stage-1 run results.
        bases: base model names.
        losses: candidate losses; ties go to the earlier one in this order.
        split: ``"test"`` (the paper's choice: test mIoU) or ``"val"`` (validation mIoU).
        metric: the test metric used when ``split="test"``.

    Returns:
        ``{base: loss}``, ``None`` for a base none of whose runs finished.
    """
    chosen: dict[str, str | None] = {}
    for base in bases:
        best, best_score = None, -math.inf
        for loss in losses:
            scores = [r.score(split, metric) for r in group_results(results, base, loss)]
            mean, _, n = mean_std(s for s in scores if s is not None)
            if n and mean > best_score:
                best, best_score = loss, mean
        chosen[base] = best
    return chosen


def table1(
    results: Sequence[RunResult],
    bases: Sequence[str],
    losses: Sequence[str],
    selected: dict[str, str | None],
    select_on: str,
    seeds: int,
) -> tuple[str, list[dict[str, Any]]]:
    """Table 1: test mIoU per base and loss, with the paper's and the difference.

    Returns:
        ``(markdown, csv_rows)``; one CSV row per base/loss.
    """
    rows: list[dict[str, Any]] = []
    header = ["Model"]
    for loss in losses:
        header += [loss_label(loss), "paper", "Δ"]
    header.append("selected")
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    for base in bases:
        cells = [model_label(base)]
        for loss in losses:
            runs = group_results(results, base, loss)
            values = [r.metrics.get("miou") for r in runs if r.ok]
            mean, std, n = mean_std(values)
            val_mean, _, _ = mean_std(r.val_miou for r in runs if r.ok)
            paper = PAPER_TABLE1.get(base, {}).get(loss)
            text = _metric_cell(values, seeds)
            if any(r.ok and r.threshold_source == "tuned" for r in runs):
                text += " †"
            if selected.get(base) == loss:
                text = f"**{text}**"
            cells += [text, _fmt(paper), _fmt_diff(mean, paper)]
            rows.append(
                {
                    "model": base,
                    "loss": loss,
                    "n": n,
                    "n_failed": sum(not r.ok for r in runs),
                    "miou_mean": mean,
                    "miou_std": std,
                    "val_miou_mean": val_mean,
                    "paper_miou": paper,
                    "diff": None if mean is None or paper is None else mean - paper,
                    "selected": selected.get(base) == loss,
                    "select_on": select_on,
                    "threshold": threshold_text(runs),
                }
            )
        cells.append(loss_label(selected[base]) if selected.get(base) else "none")
        lines.append(_md_row(cells))
    intro = (
        "# Table 1: mIoU by base model and loss\n\n"
        "Test-split mIoU (mean of background and landslide IoU), ours next to the paper's "
        "Table 1; Δ = ours − paper. "
        + _seed_note(seeds)
        + f"\nStage-2 selection on the **{select_on}** split"
        + (" (as in the paper)" if select_on == "test" else " (the paper selected on test)")
        + "; the selected loss per base is in bold. "
        + _threshold_note(results)
        + "\n\n"
    )
    return intro + "\n".join(lines) + "\n", rows


def table3(
    results: Sequence[RunResult],
    models: Sequence[tuple[str, str | None]],
    seeds: int,
    title: str = "Table 3: all metrics of the final models",
) -> tuple[str, list[dict[str, Any]]]:
    """Tables 2 and 3: every metric per (model, loss), with the paper's and the difference.

    Args:
        results: all run results.
        models: ``(model, loss)`` rows in order; ``loss=None`` marks a model with no
            selected loss (all its stage-1 runs failed).
        seeds: the number of seeds asked for.
        title: markdown title.

    Returns:
        ``(markdown, csv_rows)``.
    """
    header = ["Model", "Loss", "n"]
    for m in METRICS:
        header += [METRIC_LABELS[m], "paper", "Δ"]
    header += [METRIC_LABELS[m] for m in EXTRA_METRICS]
    header.append("Threshold")
    lines = [_md_row(header), _md_row(["---"] * len(header))]
    rows: list[dict[str, Any]] = []
    for model, loss in models:
        runs = group_results(results, model, loss) if loss else []
        ok = [r for r in runs if r.ok]
        paper = PAPER_TABLE3.get(model, {})
        loss_text = loss_label(loss) if loss else "none"
        if loss and paper.get("loss") and paper["loss"] != loss:
            loss_text += f" (paper: {loss_label(str(paper['loss']))})"
        cells = [model_label(model), loss_text, str(len(ok))]
        row: dict[str, Any] = {
            "model": model,
            "loss": loss,
            "paper_loss": paper.get("loss"),
            "n": len(ok),
            "n_failed": len(runs) - len(ok),
        }
        for m in (*METRICS, *EXTRA_METRICS):
            values = [r.metrics.get(m) for r in ok]
            mean, std, _ = mean_std(values)
            row[f"{m}_mean"], row[f"{m}_std"] = mean, std
            text = _metric_cell(values, seeds) if runs else "not run"
            if m in METRICS:
                ref = paper.get(m)
                ref = float(ref) if ref is not None else None
                row[f"paper_{m}"] = ref
                row[f"diff_{m}"] = None if mean is None or ref is None else mean - ref
                cells += [text, _fmt(ref, 2), _fmt_diff(mean, ref)]
            else:
                cells.append(text)
        row["threshold"] = threshold_text(ok)
        cells.append(row["threshold"])
        rows.append(row)
        lines.append(_md_row(cells))
    intro = (
        f"# {title}\n\n"
        "Test split. Precision, recall and F1 are for the landslide class; mIoU is the mean "
        "of the background and landslide IoUs (both listed at the right). Paper values from "
        "its Table 3; Δ = ours − paper. " + _seed_note(seeds) + " Threshold: the decision "
        "threshold each row's test metrics used (the run's validation-tuned one where it "
        "has a threshold.json, else its configured one).\n\n"
    )
    return intro + "\n".join(lines) + "\n", rows


def _threshold_note(results: Sequence[RunResult]) -> str:
    tuned = [r for r in results if r.ok and r.threshold_source == "tuned"]
    if not tuned:
        shown = threshold_text(results)
        return "Every run scored at its configured threshold" + (f" ({shown})." if shown else ".")
    return (
        "† = scored at the run's validation-tuned threshold (threshold.json); the others at "
        "their configured threshold (runs.csv lists each run's)."
    )


def _seed_note(seeds: int) -> str:
    if seeds == 1:
        return "One seed per run (no spread: use --seeds N for mean ± std)."
    return (
        f"Mean ± sample std over n={seeds} seeds per cell; '(n=k)' marks cells where only "
        "k seeds finished."
    )


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def write_table(out_dir: Path, stem: str, markdown: str, rows: list[dict[str, Any]]) -> None:
    """Write ``<stem>.md`` and ``<stem>.csv`` (numbers unrounded, empty where missing)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    csv_text = csv_string(fields, ({k: "" if v is None else v for k, v in r.items()} for r in rows))
    md_path = out_dir / f"{stem}.md"
    atomic_write_text(md_path, markdown)
    try:
        atomic_write_text(out_dir / f"{stem}.csv", csv_text)
    except BaseException:
        md_path.unlink(missing_ok=True)  # the pair or nothing
        raise


def csv_string(fields: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """CSV text (header + rows) built in memory, so it is written in one atomic write."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(fields))
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue()
