"""``train --select-from-train FRACTION``: the honest protocol for data with train and val lists.

Issue 20: when a dataset ships only ``train.txt`` and ``val.txt`` (l4s-rgb-dev), choosing
epochs, checkpoint and threshold on val and then reporting val scores the choices on the
data that made them. With ``--select-from-train F`` the run instead

- carves a seeded *selection* split of ``F`` of the given train tiles (``round(F n)``, at
  least one, and at least one tile left to train on), seeded by ``--select-seed`` (default
  0, not the training seed: runs of several seeds, e.g. an ensemble, share one selection);
- trains on the rest, and uses the selection as the run's ``val``: the checkpoint
  (``best.keras``, highest val mIoU) and the tuned threshold are chosen there;
- scores the given val once, after training, as the run's ``test``: reported as
  ``val (untouched)`` (``split_role``; ``protocol: select-from-train`` in the metrics).

The selection is ``random.Random(select_seed).sample(stems, round(F n))`` over the stems in
the order of the given ``train.txt``: the rule of ``benchmarks/_protocol.honest_splits``, so
the flag reproduces the lists of the committed benchmark records. It depends only on the
seed and the list, so evaluate, export and a resumed run recompute the same split;
``config.json`` records the fraction, the seed, the sizes and a hash of each list, and
``RUN/selection.txt`` lists the selected stems. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError
from landslide_tf.files import atomic_write_text

#: The ``protocol`` value in config.json and the metrics files.
PROTOCOL = "select-from-train"

#: What each split of the run holds under the protocol.
SPLIT_ROLES = {
    "train": "train (selection carved out)",
    "val": "selection (carved from train)",
    "test": "val (untouched)",
}

#: The selected stems, one a line, inside the run directory.
SELECTION_FILE = "selection.txt"


def list_hash(stems: Sequence[str]) -> str:
    """A short, order-independent hash of a list of stems (sha256 of the sorted stems)."""
    text = "\n".join(sorted(set(stems)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def split_role(config: Any, split: str) -> str:
    """What ``split`` holds in the run of ``config`` (the split's own name without the
    protocol)."""
    if not getattr(config, "select_from_train", 0.0):
        return split
    return SPLIT_ROLES.get(split, split)


def validate_selection(config: Any) -> None:
    """One-line ``UserError`` for a bad ``--select-from-train`` (before anything is written)."""
    fraction = float(getattr(config, "select_from_train", 0.0) or 0.0)
    if not fraction:
        return
    if not 0.0 < fraction < 1.0:
        raise UserError(f"--select-from-train must be in (0, 1), got {fraction:g}")
    if not config.split_dir:
        raise UserError(
            "--select-from-train needs given split lists: --split-dir DIR with train.txt "
            "and val.txt"
        )
    if config.test_split == "val":
        raise UserError(
            "--select-from-train scores the given val as the run's test: drop --test-split val"
        )


def carve_selection(splits: dict[str, list], fraction: float, seed: int) -> dict[str, list]:
    """The run's splits under the protocol.

    Args:
        splits: the given ``{"train", "val", "test"}`` samples (``test`` empty).
        fraction: share of the train tiles (by stem) moved to the selection split.
        seed: the selection's seed.

    Returns:
        ``{"train": rest, "val": selection, "test": given val}``.

    Raises:
        UserError: a test list is given, or train is too small to carve.
    """
    if splits.get("test"):
        raise UserError(
            "--select-from-train is for split lists with train and val only; these have a "
            "test list: drop --select-from-train (val then selects, test scores)"
        )
    stems = list(dict.fromkeys(s.stem for s in splits["train"]))  # the given list's order
    n_select = max(1, round(fraction * len(stems)))
    if n_select >= len(stems):
        raise UserError(
            f"--select-from-train {fraction:g} leaves no training tiles "
            f"({len(stems)} train tiles): use a smaller fraction"
        )
    selected = set(random.Random(seed).sample(stems, n_select))
    return {
        "train": [s for s in splits["train"] if s.stem not in selected],
        "val": [s for s in splits["train"] if s.stem in selected],
        "test": list(splits["val"]),
    }


def apply_selection(config: Any, splits: dict[str, list]) -> dict[str, list]:
    """``carve_selection`` when the run uses the protocol, else ``splits`` unchanged."""
    fraction = float(getattr(config, "select_from_train", 0.0) or 0.0)
    if not fraction:
        return splits
    return carve_selection(splits, fraction, int(config.select_seed))


def record_selection(config: Any, run_dir: Path, splits: dict[str, list]) -> dict[str, Any]:
    """Write ``run_dir/selection.txt``; the ``config.json`` entries of the protocol.

    Args:
        config: the run config.
        run_dir: the run directory.
        splits: the run's (carved) splits.

    Returns:
        ``{"protocol", "selection": {fraction, seed, split_roles, sizes, hashes, file}}``,
        or ``{}`` without the protocol.
    """
    if not getattr(config, "select_from_train", 0.0):
        return {}
    stems = {name: [s.stem for s in v] for name, v in splits.items()}
    selected = list(dict.fromkeys(stems["val"]))
    atomic_write_text(run_dir / SELECTION_FILE, "".join(f"{stem}\n" for stem in selected))
    return {
        "protocol": PROTOCOL,
        "selection": {
            "fraction": float(config.select_from_train),
            "seed": int(config.select_seed),
            "split_roles": dict(SPLIT_ROLES),
            "sizes": {name: len(set(v)) for name, v in stems.items()},
            "hashes": {
                "given_train": list_hash(stems["train"] + stems["val"]),
                "given_val": list_hash(stems["test"]),
                "train": list_hash(stems["train"]),
                "selection": list_hash(stems["val"]),
            },
            "file": SELECTION_FILE,
        },
    }
