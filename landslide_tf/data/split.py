"""The deterministic, stratified train/val/test split, stored as files of stems.

The paper splits 80 % train (of which 20 % validation) and 20 % test: 64/16/20. The split is
seeded and stratified by the landslide flag, and written as ``train.txt``, ``val.txt`` and
``test.txt`` (one stem per line). When those files exist they are reused, so every model of a
study sees the identical split.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from landslide_tf.data.sample import Sample
from landslide_tf.errors import DataError
from landslide_tf.files import staged

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


class OtherTilesListed(DataError):
    """Split lists that name tiles the dataset does not have (lists of another dataset).

    ``path`` is the list, ``unknown`` the stems it names that the dataset lacks.
    """

    def __init__(self, path: Path, unknown: Sequence[str]) -> None:
        self.path, self.unknown = path, list(unknown)
        super().__init__(
            f"{path}: {len(unknown)} stem(s) not in the dataset ({shown_stems(unknown)}); "
            "expected the split files of this dataset (move them away to make a new split)"
        )


def shown_stems(stems: Sequence[str], most: int = 5) -> str:
    """The first ``most`` stems, comma-separated, with ``...`` when there are more."""
    return ", ".join(stems[:most]) + (", ..." if len(stems) > most else "")


def list_text(path: Path) -> str:
    """The text of a split list (a UTF-8 byte-order mark is not a stem).

    Raises:
        DataError: the file is not UTF-8 text (e.g. UTF-16, what Windows PowerShell 5 writes
            with ``>``), naming it.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(
            f"{path} is not a text list of tile stems (not UTF-8; save it as UTF-8 text, "
            "one stem per line)"
        ) from None


def shipped_lists_note(root: str | Path, split_dir: str | Path | None) -> str | None:
    """A note when a dataset folder ships its own ``train.txt`` + ``val.txt`` (as published
    splits do) that a new split would ignore: None when the folder ships no lists, or
    ``split_dir`` holds lists (that folder's or any other: the user chose them)."""
    root = Path(root)
    try:
        if split_dir is not None and given_split_files(split_dir) is not None:
            return None
        shipped = root.is_dir() and given_split_files(root) is not None
    except DataError:  # one list without the other: said where those lists are read
        return None
    if not shipped:
        return None
    return (
        f"{root} ships its own train.txt and val.txt; train makes its own split unless given "
        f"--split-dir {root}"
    )


def read_split(out_dir: str | Path, samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """Read ``out_dir/{train,val,test}.txt`` and map their stems onto ``samples``.

    A missing ``test.txt`` gives an empty test split (datasets that keep their test list aside).

    Raises:
        OtherTilesListed: a file names a stem that is not in ``samples``.
        DataError: a file is not UTF-8 text, or a stem is in two splits.
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
        text = list_text(path)
        stems = [line.strip() for line in text.splitlines() if line.strip()]
        unknown = [s for s in stems if s not in by_stem]
        if unknown:
            raise OtherTilesListed(path, unknown)
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


def check_lone_test_list(out_dir: str | Path, split: dict[str, list[Sample]]) -> None:
    """Refuse to write a new split over a ``test.txt`` that lists other tiles.

    A folder with ``test.txt`` but neither ``train.txt`` nor ``val.txt`` is not a set of
    lists (``given_split_files``), so a new split is made there. Its ``test.txt`` is then
    replaced only when it names the same tiles as the new test split (a list this seed wrote
    before a failed write, say); any other list may be someone's held-out tiles and is kept.

    Raises:
        DataError: ``out_dir/test.txt`` exists alone and lists other stems than
            ``split["test"]`` (nothing is written).
    """
    path = Path(out_dir) / "test.txt"
    if not path.is_file():
        return
    listed = {line.strip() for line in list_text(path).splitlines()}
    listed.discard("")
    if listed != {s.stem for s in split["test"]}:
        raise DataError(
            f"{path} lists {len(listed)} tile(s) but there is no train.txt and val.txt beside "
            "it, and the new split's test tiles differ: add train.txt and val.txt to use it, "
            "or move it away to make a new split (no split files written)"
        )


def write_split(out_dir: str | Path, split: dict[str, list[Sample]]) -> None:
    """Write ``out_dir/{train,val,test}.txt``, one stem per line (duplicates collapsed), as a set.

    The three lists are written to temporary files first and moved into place only once all
    three are complete, ``test.txt`` first and ``train.txt`` last: a failure leaves no list,
    or ``test.txt`` (a new split is made; the same seed writes the same one over it), or
    ``test.txt`` and ``val.txt`` (refused by ``given_split_files``), never a set that reads as
    valid. A lone ``test.txt`` that lists other tiles is never overwritten
    (``check_lone_test_list``).

    Raises:
        DataError: a split is empty, or a lone ``test.txt`` lists other tiles (nothing is
            written).
    """
    out_dir = Path(out_dir)
    for name in SPLITS:
        if not split[name]:
            sizes = ", ".join(f"{k} {len(split[k])}" for k in SPLITS)
            raise DataError(
                f"{out_dir}: the {name} split would be empty ({sizes}): use more tiles "
                "(no split files written)"
            )
    check_lone_test_list(out_dir, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:  # moved into place in reverse: test, val, train
        for name in SPLITS:
            stems = dict.fromkeys(s.stem for s in split[name])
            tmp = stack.enter_context(staged(out_dir / f"{name}.txt"))
            tmp.write_text("".join(f"{stem}\n" for stem in stems), encoding="utf-8")


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
        DataError: existing split files that name stems not in ``samples``; with
            ``out_dir``, a split that would be empty (nothing is written).
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
#: Buffers tried between the splits, in chip widths: one chip, then only what overlaps (0: a
#: chip sharing ground with a chip of another split is left out; touching edges are kept).
BUFFERS = (1.0, 0.0)
#: Relative tolerance (of the chip width) for touching edges: the rule of ``data check``.
EDGE_TOLERANCE = 1e-6


def spatial_split(
    samples: Sequence[Sample],
    boxes: Sequence[tuple[float, float, float, float]],
    seed: int = 42,
    fractions: Sequence[float] = (0.64, 0.16, 0.20),
) -> dict[str, list[Sample]] | None:
    """A blocked spatial split of georeferenced chips (spatial cross-validation).

    The chips' extent is cut into square blocks (each width of ``BLOCK_SIZES`` giving at
    least ``MIN_BLOCKS`` blocks is tried); whole blocks go to train, val or test (seeded, by
    chip count toward ``fractions``), so overlapping windows of one area stay together. A
    buffer of one chip separates the splits: a chip that comes within one chip width of a
    chip of another split is left out (test wins over val, val over train). Of the block
    widths that leave train at least a third of its share, the one losing the fewest chips
    wins. When none does, the minimal buffer is tried the same way: only chips that overlap
    a chip of another split (positive area; touching edges are fine) are left out.

    Args:
        samples: the chips.
        boxes: ``(left, bottom, right, top)`` of each chip, in one CRS.
        seed: the split seed.
        fractions: train, val, test shares.

    Returns:
        ``{"train", "val", "test"}`` sorted by stem, or None when neither buffer gives three
        non-empty splits with train keeping a third of its share and no two chips overlap
        (the caller then uses a random split, which cannot put shared ground in two splits).

    Raises:
        DataError: no such split exists and some chips overlap (a random split would put
            overlapping chips in different splits).
    """
    if len(samples) != len(boxes) or not samples:
        return None
    b = np.asarray(boxes, np.float64)  # (N, 4): left, bottom, right, top
    w = float(np.median(b[:, 2] - b[:, 0]))
    h = float(np.median(b[:, 3] - b[:, 1]))
    targets = np.asarray(fractions, np.float64) * len(samples)
    for buffer in BUFFERS:
        best, most_train = None, 0
        for chips in BLOCK_SIZES:  # the block size that loses the fewest chips to the buffer
            plan = _blocked(samples, b, w, h, chips, seed, targets, buffer)
            if plan is None:
                continue
            most_train = max(most_train, len(plan[0]["train"]))
            if len(plan[0]["train"]) >= targets[0] / 3 and (
                best is None or plan[1].sum() > best[1].sum()
            ):
                best = (*plan, chips)
        what = "a one-chip buffer" if buffer else "leaving out only overlapping chips"
        if best is None:
            logger.info(
                "spatial split, %s: no block width gives non-empty val and test with train "
                "keeping a third of its share (train at most %d of %d chips)",
                what, most_train, len(samples),
            )  # fmt: skip
            continue
        out, keep, blocks, chips = best
        logger.log(
            logging.INFO if buffer else logging.WARNING,
            "spatial split over %d blocks of %d chip(s), %s: train %d, val %d, test %d; %d "
            "chip(s) left out between splits%s",
            blocks, chips, what, len(out["train"]), len(out["val"]), len(out["test"]),
            int((~keep).sum()),
            "" if buffer else " (a one-chip buffer left train too few chips; chips of "
            "different splits may touch, none overlap)",
        )  # fmt: skip
        return out
    pair = _overlapping_pair(b, EDGE_TOLERANCE * max(w, h))
    if pair is not None:
        raise DataError(
            f"{len(samples)} georeferenced chips overlap on the ground (e.g. "
            f"{samples[pair[0]].stem} and {samples[pair[1]].stem}) but cover too small an area "
            "for a spatial split that keeps overlapping chips in one split: re-chip with "
            "--stride equal to --size, use a larger scene, or give train.txt/val.txt/test.txt "
            "with --split-dir"
        )
    return None


def _overlapping_pair(b: np.ndarray, tol: float) -> tuple[int, int] | None:
    """The first two boxes (indices) that share ground (more than ``tol`` in x and y)."""
    for i in range(len(b) - 1):
        rest = b[i + 1 :]
        hit = (
            (rest[:, 0] < b[i, 2] - tol)
            & (rest[:, 2] > b[i, 0] + tol)
            & (rest[:, 1] < b[i, 3] - tol)
            & (rest[:, 3] > b[i, 1] + tol)
        )
        if hit.any():
            return i, i + 1 + int(np.argmax(hit))
    return None


def _blocked(samples, b, w, h, chips, seed, targets, buffer):
    """One blocked split with blocks ``chips`` chips wide and ``buffer`` chip widths between
    splits: ``(split, keep, n_blocks)``, or None when a split would be empty or there are
    fewer blocks than ``MIN_BLOCKS``."""
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
    # gap < 0 on both axes: the chips overlap; < one chip width: within the one-chip buffer
    near_x, near_y = (buffer - EDGE_TOLERANCE) * w, (buffer - EDGE_TOLERANCE) * h
    for low, high in ((1, 2), (0, 2), (0, 1)):  # val near test, train near test, train near val
        a, c = np.flatnonzero((split_of == low) & keep), np.flatnonzero(split_of == high)
        if not len(a) or not len(c):
            continue
        gap_x = np.maximum(b[a, None, 0], b[None, c, 0]) - np.minimum(b[a, None, 2], b[None, c, 2])
        gap_y = np.maximum(b[a, None, 1], b[None, c, 1]) - np.minimum(b[a, None, 3], b[None, c, 3])
        near = ((gap_x < near_x) & (gap_y < near_y)).any(axis=1)
        keep[a[near]] = False
    out = {
        name: sorted((s for s, k, ok in zip(samples, split_of, keep, strict=True) if k == i and ok),
                     key=lambda s: s.stem)
        for i, name in enumerate(SPLITS)
    }  # fmt: skip
    if not out["train"] or not out["val"] or not out["test"]:
        return None
    return out, keep, len(blocks)
