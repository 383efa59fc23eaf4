"""The presets (paper, quick, strong, fast) and the recipe settings' checks and split-list records.

``STRONG`` is ``--preset strong`` (one of ``PRESETS``): it picks the model
and every training choice but leaves ``--modalities``, ``--data`` and ``--split-dir`` to the
user, so the same command trains on RGB tiles and on RGB + DEM. It combines:

- paired ``strong`` augmentation (``landslide_tf.data.augment``);
- AdamW with a one-epoch linear warm-up and cosine decay (``landslide_tf.training.optim``);
- BCE + Dice (compared with Lovasz hinge and focal Tversky: docs/readme_recipe.md);
- full 128 px resolution (scars are a few pixels wide) in the default ``--precision auto``
  (bfloat16 on CPUs with AVX512_BF16/AMX);
- test-time averaging over the eight symmetries of the square (``landslide_tf.inference.tta``,
  ``dihedral``) and the validation-tuned threshold, both stored in the run and used by
  evaluate, predict, scene and export.

Given split lists: ``--split-dir DIR`` holding ``train.txt`` and ``val.txt`` (and maybe
``test.txt``) is only read; the lists are copied into ``RUN/split_lists/`` and their paths
recorded in ``config.json`` (``split_files``). Without a test list the test metrics are
skipped with a note, unless ``--test-split val`` says what to score.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from landslide_tf.errors import DataError, UserError
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.encoder_phases import apply_encoder_defaults

logger = logging.getLogger(__name__)

#: ``--preset strong``: the recipe recommended for real imagery (chosen on l4s-rgb-dev val).
STRONG: dict[str, Any] = {
    "model": "unetpp",
    "base_filters": 16,
    "depth": 4,
    "dropout": 0.1,
    "image_size": 128,
    "batch_size": 8,
    "epochs": 40,  # 25 reached val F1 0.669, 40 reached 0.684 (docs/readme_recipe.md)
    "loss": "bce_dice",
    "augment": True,
    "augment_policy": "strong",
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "lr_schedule": "cosine",
    "warmup_epochs": 1.0,
    "tta": True,
    # the eight symmetries of the square: on the strong run of benchmarks/results, selection F1
    # 0.6814 against 0.6798 with the four flips (records ensemble-strong-dihedral and
    # ensemble-check-strong-rerun; a rule fixed before scoring), at twice the inference cost
    "tta_transforms": "dihedral",
    "tune_threshold": True,
}

#: ``--preset fast``: the strong recipe's training choices on a plain U-Net (less than half
#: U-Net++'s CPU seconds per epoch on the 2-core CPU) for 30 epochs: at most a third of the
#: strong preset's CPU time, at a lower F1. The U-Net was chosen from the GPU screen
#: (benchmarks/results/ideas_screen.json: at equal CPU cost a U-Net in 26 epochs reached a higher
#: selection F1 than U-Net++ in 11; 2x resolution gave nothing for 4x the pixels); no weight EMA
#: and lr 1e-3 (time-to-quality.json: fast, fast-lr2e-3, fast-no-ema compared on the selection
#: split). 32 epochs and the eight-pass dihedral averaging each won a rule fixed beforehand,
#: compared over four training seeds run by run (benchmarks/decisions.json; records
#: trial-fast-e32, ensemble-fast-e28-each-flips and -dihedral): mean best selection F1 0.659
#: at 32 epochs against 0.653 at 28 (1,433-1,469 CPU s a run), 0.661 against 0.658 for the
#: eight passes over the four flips. Its U-Net is one level shallower than the default (depth
#: 3: ~14% fewer CPU s a training step), as a third rule fixed beforehand decided over the same
#: four seeds (record time-to-quality-r11, fast-d3: mean best selection F1 0.661 against the
#: depth-4 preset's 0.659 in time-to-quality-r10). 30 epochs instead of 32 (~6% fewer CPU s),
#: a fourth rule fixed beforehand (record time-to-quality-r12, fast-d3-e30: mean best
#: selection F1 0.659 against 0.661, within its 0.005 margin).
FAST: dict[str, Any] = {**STRONG, "model": "unet", "epochs": 30, "depth": 3}

#: Named option sets (``--preset``); explicit command-line flags override them.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "quick": {
        "image_size": 64,
        "base_filters": 8,
        "depth": 3,
        "batch_size": 8,
        "lr": 1e-3,
        "epochs": 8,
        # A slope channel and light dropout let 8 small epochs tell landslide scars (steep)
        # from the bare-soil look-alikes on flat ground: test precision 0.68 -> 0.82 on the
        # synthetic set at the same CPU time (docs/readme_training.md).
        "derived": ["slope"],
        "dropout": 0.1,
    },
    "strong": STRONG,
    "fast": FAST,
}


def preset_config(preset: str, **given: Any) -> TrainConfig:
    """``TrainConfig`` defaults, then ``PRESETS[preset]``, then every ``given`` value not None.

    The one merge behind ``python -m landslide_tf.train`` and the notebooks, so a preset with
    ``model=...`` or ``loss=...`` gives the same config either way. An explicit choice drops
    what the preset set for the one it replaces: ``modalities="rgb"`` the preset's DEM-derived
    channels (unless ``derived`` is given), ``optimizer="adam"`` the AdamW decay (Adam refuses
    one), ``lr_schedule="constant"`` the cosine schedule's warm-up; an ``encoder`` brings its
    depth (unless ``depth`` is given) and weights.
    """
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    unknown = sorted(set(given) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise UserError(f"unknown training setting(s): {', '.join(unknown)}")
    given = {key: value for key, value in given.items() if value is not None}
    values = TrainConfig().to_dict()
    values.update(PRESETS[preset])
    values.update(given)
    if values.get("modalities") == "rgb" and "derived" not in given:
        values["derived"] = []  # a preset's DEM-derived channels need a DEM; RGB runs drop them
    if given.get("optimizer") == "adam" and "weight_decay" not in given:
        values["weight_decay"] = 0.0
    if given.get("lr_schedule") == "constant" and "warmup_epochs" not in given:
        values["warmup_epochs"] = 0.0
    apply_encoder_defaults(values, depth_given="depth" in given)
    return TrainConfig.from_dict(values)


#: What ``--test-split`` may name: the split scored after training (``none``: no scoring).
TEST_SPLITS = ("test", "val", "none")

#: Names of the registries in data.augment and optim, here so ``--help`` imports no TensorFlow
#: (tests check they match the registries).
AUGMENT_POLICIES = ("dihedral", "strong")
OPTIMIZER_NAMES = ("adam", "adamw")
SCHEDULE_NAMES = ("constant", "cosine")
#: ``inference.tta.TTA_TRANSFORMS``' names (training sits below inference: a test keeps them equal).
TTA_TRANSFORM_NAMES = ("flips", "dihedral")

#: Where the given split lists are copied inside a run directory.
SPLIT_COPY = "split_lists"


def validate_recipe(config: TrainConfig) -> None:
    """One-line ``UserError`` for bad recipe options (called before anything is written)."""
    from landslide_tf.data.augment import AUGMENTATIONS
    from landslide_tf.training.optim import validate_optim

    if config.test_split not in TEST_SPLITS:
        raise UserError(f"unknown --test-split {config.test_split!r}; expected {TEST_SPLITS}")
    if config.test_split == "val" and config.tune_threshold and not config.select_from_train:
        raise UserError(
            "--tune-threshold with --test-split val would tune the threshold on the split it "
            "scores: add --no-tune-threshold, or use --select-from-train FRACTION (tuned on a "
            "selection carved from train, val scored untouched)"
        )
    if config.augment_policy not in AUGMENTATIONS:
        raise UserError(
            f"unknown --augment-policy {config.augment_policy!r}; "
            f"expected one of {', '.join(AUGMENTATIONS)}"
        )
    validate_optim(config)
    if config.tta_transforms not in TTA_TRANSFORM_NAMES:
        raise UserError(
            f"unknown --tta-transforms {config.tta_transforms!r}; "
            f"expected one of {', '.join(TTA_TRANSFORM_NAMES)}"
        )
    warning = oriented_channels_warning(config)
    if warning:
        logger.warning("%s", warning)


#: Derived terrain channels that encode a direction (north-up): a flip or a rotation of the
#: tile moves their pixels but does not turn the direction they encode.
ORIENTED_CHANNELS = ("aspect", "hillshade")


def oriented_channels_warning(config: TrainConfig) -> str | None:
    """Why ``--augment`` or ``--tta`` would feed the network aspect or hillshade channels that
    disagree with the DEM beside them (None when they would not).

    Flips and rotations act on the computed channels as pixels (``data.augment``,
    ``inference.tta``): the hillshade of a rotated tile keeps the light of the unrotated
    one, and aspect keeps its old compass direction, while inference on unrotated tiles
    sees them consistent.
    """
    oriented = [name for name in config.derived if name in ORIENTED_CHANNELS]
    moved = [flag for flag, on in (("--augment", config.augment), ("--tta", config.tta)) if on]
    if not oriented or not moved:
        return None
    return (
        f"{' and '.join(moved)} flip and rotate the derived {', '.join(oriented)} channel(s) "
        "as pixels, so their direction no longer matches the DEM's (slope is unaffected): "
        "use --derived slope, or train without them"
    )


def given_test_missing(config: TrainConfig) -> bool:
    """Whether ``--split-dir`` ships train/val lists but no ``test.txt``."""
    from landslide_tf.data.split import given_split_files

    if not config.split_dir:
        return False
    given = given_split_files(config.split_dir)
    return given is not None and given["test"] is None


def record_split_lists(config: TrainConfig, run_dir: Path) -> dict[str, Any]:
    """Copy the given split lists into ``run_dir/split_lists``; the ``config.json`` entries.

    Returns:
        ``{"split_files": {"train": path, "val": path, "test": path or None}}`` (absolute
        source paths), or ``{}`` when the split lives in the run directory itself.
    """
    from landslide_tf.data.split import given_split_files

    if not config.split_dir:
        return {}
    source = Path(config.split_dir).expanduser().resolve()
    if source == run_dir.resolve():
        return {}
    given = given_split_files(source)
    if given is None:  # lists were just written there by make_split
        given = {name: source / f"{name}.txt" for name in ("train", "val", "test")}
    copy_dir = run_dir / SPLIT_COPY
    copy_dir.mkdir(exist_ok=True)
    for name, path in given.items():
        if path is not None and path.is_file():
            tmp = copy_dir / f".{name}.txt.tmp"
            shutil.copyfile(path, tmp)
            tmp.replace(copy_dir / f"{name}.txt")
    return {"split_files": {k: (str(v) if v is not None else None) for k, v in given.items()}}


def check_split_lists(config: TrainConfig, run_dir: Path, done: int) -> None:
    """Refuse to go on with a run whose given split lists changed since it trained.

    A run resumed, extended or scored again reads the lists in ``--split-dir`` anew, while
    its ``done`` epochs trained on the ones copied into ``RUN/split_lists/``
    (``record_split_lists``): going on would train the remaining epochs on other tiles,
    replace the copies and record the new lists as if the run had always used them. The
    lists are compared as sequences of stems (blank lines and spaces aside; the order
    counts, since ``--select-from-train`` carves by it). Not checked: a split kept in the run
    directory itself, and a run from before the copies.

    Raises:
        UserError: one line naming the list that changed, how, and what to do.
        DataError: a list is not text.
    """
    from landslide_tf.data.split import SPLITS

    if not config.split_dir:
        return
    source = Path(config.split_dir).expanduser().resolve()
    copies = run_dir / SPLIT_COPY
    if source == run_dir.resolve() or not copies.is_dir():
        return
    for name in SPLITS:
        recorded, given = copies / f"{name}.txt", source / f"{name}.txt"
        old = _stems(recorded) if recorded.is_file() else None
        new = _stems(given) if given.is_file() else None
        if old == new:
            continue
        if old is None:
            how, fix = "the run trained without it", "remove it"
        elif new is None:
            how, fix = "it is missing", f"restore it from {recorded}"
        else:
            lost, gained = len(set(old) - set(new)), len(set(new) - set(old))
            how = (
                f"{lost} stem(s) removed, {gained} added"
                if lost or gained
                else "the same stems, reordered or repeated"
            )
            fix = f"restore it from {recorded}"
        raise UserError(
            f"{given} changed since {run_dir} trained {done} epoch(s) with it ({how}): "
            f"{fix} to go on with this run, or train on the new lists in a new --run-dir "
            "or with --force"
        )


def _stems(path: Path) -> list[str]:
    """The stems of a split list, in order (as ``landslide_tf.data.split.read_split`` reads)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text list of tile stems") from None
    return [line.strip() for line in text.splitlines() if line.strip()]
