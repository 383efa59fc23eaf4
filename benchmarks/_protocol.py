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


def _stems(path: Path) -> list[str]:
    return [s for s in path.read_text().split() if s]


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
    train, val = _stems(data / "train.txt"), _stems(data / "val.txt")
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
