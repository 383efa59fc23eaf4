"""The honest protocol for data with only train and val lists: selection carved from train.

Recipe choices (the checkpoint kept, a tuned threshold, ...) are made on a seeded random
share of the given train list, the **selection** split; the given val list is scored once,
untouched, after training. ``train --select-from-train`` does this inside one run; the
benchmarks write the three lists into a folder of their own, so that every recipe of one
record trains on the very same lists, and pass it as ``--split-dir``: train minus selection
as ``train.txt``, the selection as ``val.txt`` (what ``train`` selects on) and the given val
as ``test.txt`` (what ``train`` scores at the end into ``metrics.json``).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

#: The val figures a record keeps (AUC beside them).
UNTOUCHED_METRICS = ("f1", "precision", "recall", "iou_landslide", "miou")


def read_stems(path: Path) -> list[str]:
    """The stems of a split list, read as the package reads them (``data.split.list_text``:
    a byte-order mark is not a stem; another encoding is one line naming the file)."""
    from landslide_tf.data.split import list_text

    return list_text(path).split()


def _write_list(folder: Path, name: str, stems: list[str]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as fh:
        fh.write("".join(f"{s}\n" for s in stems))
    os.replace(fh.name, folder / f"{name}.txt")


def protocol_name(fraction: float, seed: int) -> str:
    """``select-from-train 0.15 seed 0; val untouched``: the protocol as rows and records say it."""
    return f"select-from-train {fraction:g} seed {seed}; val untouched"


def honest_splits(
    data: Path, out: Path, fraction: float, seed: int, limit: int | None = None
) -> tuple[Path, dict[str, list[str]]]:
    """Selection carved from train; the three lists written under ``out`` (never in ``data``).

    A seeded random ``fraction`` of the given train list (at least one stem) becomes the
    selection split; the rest stays train. Written as ``train.txt`` (train minus selection),
    ``val.txt`` (selection: checkpoint and threshold are chosen there) and ``test.txt`` (the
    given val list, scored once after training). ``limit``: first N stems of each given list.

    Returns:
        ``(folder, {"train": [...], "select": [...], "val": [...]})``.
    """
    train, val = read_stems(data / "train.txt"), read_stems(data / "val.txt")
    if limit:
        train, val = train[:limit], val[:limit]
    if not 0 < fraction < 1 or len(train) < 2:
        raise ValueError(f"cannot carve {fraction:g} of {len(train)} train stems")
    chosen = set(random.Random(seed).sample(train, max(1, round(fraction * len(train)))))
    select = [s for s in train if s in chosen]
    fit = [s for s in train if s not in chosen]
    folder = out / (f"splits-s{fraction:g}-seed{seed}" + (f"-l{limit}" if limit else ""))
    folder.mkdir(parents=True, exist_ok=True)
    for name, stems in (("train", fit), ("val", select), ("test", val)):
        _write_list(folder, name, stems)
    return folder, {"train": fit, "select": select, "val": val}


def list_tiles(data: Path, split_dir: Path, name: str) -> list[tuple[str, Any, Any]]:
    """``(stem, uint8 RGB image, bool mask or None)`` of every tile of ``split_dir/name.txt``,
    read by the package's readers (one line per kind of reader note, not one per tile)."""
    from landslide_tf.data.bijie import find_samples
    from landslide_tf.data.readers import read_mask, read_rgb, summarized_notes

    samples = {s.stem: s for s in find_samples(data, modalities="rgb")}
    stems = read_stems(split_dir / f"{name}.txt")
    missing = [s for s in stems if s not in samples]
    if missing:
        raise SystemExit(f"error: {len(missing)} tiles of {name}.txt not in {data}: {missing[0]}")
    with summarized_notes():
        return [
            (s, read_rgb(samples[s].image),
             None if samples[s].mask is None else read_mask(samples[s].mask) > 0)
            for s in stems
        ]  # fmt: skip


def untouched_scores(selection: Any, val: Any) -> dict[str, Any]:
    """The threshold tuned on the selection's ``SegmentationMetrics`` and the val's figures at
    it (scored once): ``threshold``, ``threshold_tuning``, ``selection_f1``, ``val_untouched``."""
    from landslide_tf.metrics.thresholds import tune_threshold

    tuning = tune_threshold(selection)
    t = tuning["threshold"]
    result = val.result(t)
    figures = {k: round(float(result[k]), 4) for k in UNTOUCHED_METRICS}
    figures["auc"] = round(float(val.auc()), 4)
    return {
        "threshold": t,
        "threshold_tuning": tuning,
        "selection_f1": round(float(selection.result(t)["f1"]), 4),
        "val_untouched": figures,
    }


def read_curve(history: Path) -> list[dict[str, float]]:
    """``[{"epoch", "cpu_s", "selection_f1"}, ...]`` from a run's ``history.csv``."""
    import csv

    points: list[dict[str, float]] = []
    total = 0.0
    with history.open(newline="") as fh:
        for row in csv.DictReader(fh):
            total += float(row.get("cpu_seconds") or 0.0)
            p, r = float(row["val_precision"]), float(row["val_recall"])
            f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
            points.append(
                {"epoch": int(float(row["epoch"])), "cpu_s": round(total, 1),
                 "selection_f1": round(f1, 4)}
            )  # fmt: skip
    return points
