"""The deterministic, stratified train/val/test split, stored as files of stems.

The paper splits 80 % train (of which 20 % validation) and 20 % test: 64/16/20. The split is
seeded and stratified by the landslide flag, and written as ``train.txt``, ``val.txt`` and
``test.txt`` (one stem per line). When those files exist they are reused, so every model of a
study sees the identical split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landslide_tf.data.sample import Sample
from landslide_tf.errors import DataError
from landslide_tf.files import atomic_write_text

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def _allocate(count: int, fractions: Sequence[float]) -> list[int]:
    """Split ``count`` items by ``fractions`` with largest remainders (sums to ``count``)."""
    raw = [count * f for f in fractions]
    sizes = [int(np.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (sizes[i] - raw[i], i))
    for i in order[: count - sum(sizes)]:
        sizes[i] += 1
    return sizes


def given_split_files(out_dir: str | Path) -> dict[str, Path | None] | None:
    """The split lists a folder ships: ``{"train": path, "val": path, "test": path or None}``.

    A dataset may ship only ``train.txt`` and ``val.txt`` (no test list); such a folder is
    read, never written. Returns None when the folder has no ``train.txt`` and no ``val.txt``.

    Raises:
        DataError: only one of ``train.txt`` and ``val.txt`` exists.
    """
    out_dir = Path(out_dir)
    found = {name: out_dir / f"{name}.txt" for name in SPLITS}
    have = {name: path if path.is_file() else None for name, path in found.items()}
    if have["train"] is None and have["val"] is None:
        return None
    for name, other in (("train", "val"), ("val", "train")):
        if have[name] is None:
            raise DataError(
                f"{out_dir} has {other}.txt but no {name}.txt: give both lists (or neither, "
                "to make a new split)"
            )
    return have


def read_split(out_dir: str | Path, samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Read ``out_dir/{train,val,test}.txt`` and map their stems onto ``samples``.

    A missing ``test.txt`` gives an empty test split (datasets that keep their test list aside).

    Raises:
        DataError: a file names a stem that is not in ``samples``, or a stem is in two splits.
    """
    out_dir = Path(out_dir)
    by_stem: dict[str, list[Sample]] = {}
    for sample in samples:
        by_stem.setdefault(sample.stem, []).append(sample)
    split: dict[str, list[Sample]] = {}
    seen: dict[str, str] = {}
    for name in SPLITS:
        path = out_dir / f"{name}.txt"
        if name == "test" and not path.is_file():
            split[name] = []
            continue
        stems = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        unknown = [s for s in stems if s not in by_stem]
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise DataError(
                f"{path}: {len(unknown)} stem(s) not in the dataset ({shown}); expected the "
                "split files of this dataset (delete them to make a new split)"
            )
        for stem in stems:
            if stem in seen:
                raise DataError(f"{path}: stem {stem} is also in {seen[stem]}.txt")
            seen[stem] = name
        split[name] = [s for stem in stems for s in by_stem[stem]]
    left = len(by_stem) - len(seen)
    if left:
        logger.warning(
            "%s: %d tile(s) of the dataset are in none of the split files (negatives option "
            "changed?); they are not used",
            out_dir,
            left,
        )
    return split


def write_split(out_dir: str | Path, split: dict[str, list[Sample]]) -> None:
    """Write ``out_dir/{train,val,test}.txt``, one stem per line (duplicates collapsed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        stems = list(dict.fromkeys(s.stem for s in split[name]))
        atomic_write_text(out_dir / f"{name}.txt", "".join(f"{stem}\n" for stem in stems))


def make_split(
    samples: Sequence[Sample],
    seed: int = 42,
    out_dir: str | Path | None = None,
    fractions: Sequence[float] = (0.64, 0.16, 0.20),
) -> dict[str, list[Sample]]:
    """Split samples into train/val/test, stratified by the landslide flag.

    Args:
        samples: all tiles (from ``find_samples``).
        seed: the split depends only on this seed and the set of stems.
        out_dir: where ``train.txt``/``val.txt``/``test.txt`` are reused from or written to;
            a folder with ``train.txt`` and ``val.txt`` but no ``test.txt`` is only read
            (the test split is then empty).
        fractions: train, val, test shares; must sum to 1.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted by stem.

    Raises:
        DataError: existing split files that name stems not in ``samples``.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"split fractions {tuple(fractions)}; expected three shares summing to 1")
    if out_dir is not None and given_split_files(out_dir) is not None:
        split = read_split(out_dir, samples)
        logger.info(
            "reusing the split in %s: %s%s",
            out_dir,
            ", ".join(f"{k} {len(v)}" for k, v in split.items()),
            "" if (Path(out_dir) / "test.txt").is_file() else " (no test.txt: no test split)",
        )
        return split
    # Group by stem so a stem present as landslide and negative never straddles two splits.
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.stem, []).append(sample)
    stems_by_flag: dict[bool, list[str]] = {True: [], False: []}
    for stem in sorted(groups):
        stems_by_flag[any(s.landslide for s in groups[stem])].append(stem)
    rng = np.random.default_rng(seed)
    assigned: dict[str, list[str]] = {name: [] for name in SPLITS}
    for flag in (True, False):
        stems = stems_by_flag[flag]
        order = [stems[i] for i in rng.permutation(len(stems))]
        start = 0
        for name, size in zip(SPLITS, _allocate(len(stems), fractions), strict=True):
            assigned[name] += order[start : start + size]
            start += size
    split = {
        name: [s for stem in sorted(stems) for s in groups[stem]]
        for name, stems in assigned.items()
    }
    if out_dir is not None:
        write_split(out_dir, split)
        logger.info("wrote the split to %s", out_dir)
    return split


#: Spatial block widths tried, in chips; the one that loses the fewest chips to the buffer
#: wins.
BLOCK_SIZES = (16, 8, 4, 2, 1)
#: The fewest spatial blocks a split is planned over.
MIN_BLOCKS = 6


def spatial_split(
    samples: Sequence[Sample],
    boxes: Sequence[tuple[float, float, float, float]],
    seed: int = 42,
    fractions: Sequence[float] = (0.64, 0.16, 0.20),
) -> dict[str, list[Sample]] | None:
    """A blocked spatial split of georeferenced chips (spatial cross-validation).

    The chips' extent is cut into square blocks (each width of ``BLOCK_SIZES`` giving at
    least ``MIN_BLOCKS`` blocks is tried; the one losing the fewest chips to the buffer
    wins); whole blocks go to train, val or test (seeded, by chip count toward
    ``fractions``), so overlapping windows of one area stay together. A buffer of one chip
    separates the splits: a chip that comes within one chip width of a chip of another split
    is left out (test wins over val, val over train).

    Args:
        samples: the chips.
        boxes: ``(left, bottom, right, top)`` of each chip, in one CRS.

    Returns:
        ``{"train", "val", "test"}`` sorted by stem, or None when the area is too small for
        three non-empty splits, or when the buffer would leave train under a third of its
        share (the caller falls back to a random split and says so).
    """
    if len(samples) != len(boxes) or len(samples) < 3:
        return None
    b = np.asarray(boxes, np.float64)  # (N, 4): left, bottom, right, top
    w = float(np.median(b[:, 2] - b[:, 0]))
    h = float(np.median(b[:, 3] - b[:, 1]))
    targets = np.asarray(fractions, np.float64) * len(samples)
    best = None
    for chips in BLOCK_SIZES:  # the block size that loses the fewest chips to the buffer
        plan = _blocked(samples, b, w, h, chips, seed, targets)
        if plan is not None and (best is None or plan[1].sum() > best[1].sum()):
            best = (*plan, chips)
    if best is None:
        return None
    out, keep, blocks, chips = best
    if len(out["train"]) < targets[0] / 3:  # a buffer that eats the training data
        logger.info(
            "spatial split: the one-chip buffer would leave train %d of %d chips",
            len(out["train"]), len(samples),
        )  # fmt: skip
        return None
    dropped = int((~keep).sum())
    logger.info(
        "spatial split over %d blocks of %d chip(s): train %d, val %d, test %d; %d chip(s) "
        "left out as a one-chip buffer between splits",
        blocks, chips, len(out["train"]), len(out["val"]), len(out["test"]), dropped,
    )  # fmt: skip
    return out


def _blocked(samples, b, w, h, chips, seed, targets):
    """One blocked split with blocks ``chips`` chips wide: ``(split, keep, n_blocks)``,
    or None when a split would be empty or there are fewer blocks than ``MIN_BLOCKS``."""
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    size = chips * max(w, h)
    keys = np.stack([np.floor((cx - cx.min()) / size), np.floor((cy - cy.min()) / size)], 1)
    blocks, block_of = np.unique(keys, axis=0, return_inverse=True)
    if len(blocks) < MIN_BLOCKS:
        return None
    order = np.random.default_rng(seed).permutation(len(blocks))
    counts = np.bincount(block_of.ravel(), minlength=len(blocks))
    filled = np.zeros(3)
    assigned = np.zeros(len(blocks), int)
    for block in order:  # each block to the split furthest below its share
        k = int(np.argmax((targets - filled) / np.maximum(targets, 1e-9)))
        assigned[block] = k
        filled[k] += counts[block]
    split_of = assigned[block_of.ravel()]
    keep = np.ones(len(samples), bool)
    for low, high in ((1, 2), (0, 2), (0, 1)):  # val near test, train near test, train near val
        a, c = np.flatnonzero((split_of == low) & keep), np.flatnonzero(split_of == high)
        if not len(a) or not len(c):
            continue
        gap_x = np.maximum(b[a, None, 0], b[None, c, 0]) - np.minimum(b[a, None, 2], b[None, c, 2])
        gap_y = np.maximum(b[a, None, 1], b[None, c, 1]) - np.minimum(b[a, None, 3], b[None, c, 3])
        near = ((gap_x < w - 1e-9 * w) & (gap_y < h - 1e-9 * h)).any(axis=1)
        keep[a[near]] = False
    out = {
        name: sorted((s for s, k, ok in zip(samples, split_of, keep, strict=True) if k == i and ok),
                     key=lambda s: s.stem)
        for i, name in enumerate(SPLITS)
    }  # fmt: skip
    if not out["train"] or not out["val"] or not out["test"]:
        return None
    return out, keep, len(blocks)
