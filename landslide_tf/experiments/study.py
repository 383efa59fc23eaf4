"""Studies as data: the JSON files in ``experiments/`` and their loader.

A study is the paper's protocol with its training settings::

    {
      "name": "paper",
      "extends": "other-study",            # optional: deep-merge over another study
      "train": {"epochs": 50, ...},        # TrainConfig fields shared by every run
      "split": {"seed": 42, "fractions": [0.64, 0.16, 0.20]},
      "select_on": "test",                 # split the stage-2 loss selection uses
      "seeds": 1,                          # runs per model/loss: seeds train.seed, +1, ...
      "stage1": {"bases": ["unet", ...], "losses": ["bce", ...]},
      "stage3": {"base": "unetpp", "models": ["unetpp_spatial", ...]},
      "loss_kwargs": {"focal": {"alpha": 0.25}}   # optional, per loss name
    }

Lookup of a study name (``paper``, ``quick``): ``$LANDSLIDE_TF_STUDIES/<name>.json``, then
``./experiments/<name>.json``, then ``experiments/<name>.json`` of the source checkout this
package lives in (editable installs), then the copies embedded below (non-editable
installs). A path to a ``.json`` file is read as is.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.encoder_phases import apply_encoder_defaults
from landslide_tf.training.rundir import validated

#: ``experiments/`` of the checkout holding this package (absent in a wheel install).
REPO_STUDY_DIR = Path(__file__).resolve().parents[2] / "experiments"

SELECT_SPLITS = ("test", "val")

#: Fallback copies of ``experiments/paper.json`` and ``quick.json`` (kept equal by a test).
EMBEDDED_STUDIES: dict[str, dict[str, Any]] = {
    "paper": {
        "name": "paper",
        "description": (
            "Hegde et al. 2025 protocol: 12 runs {unet, resunet, unetpp} x {bce, focal, dice, "
            "wce}; per base the loss with the best mIoU; the three U-Net++ attention variants "
            "with the best U-Net++ loss. Training as in the paper: Adam 1e-5, batch 2, "
            "50 epochs, 128x128 RGB+DEM, dropout 0.5."
        ),
        "train": {
            "epochs": 50,
            "batch_size": 2,
            "lr": 1e-05,
            "base_filters": 32,
            "depth": 4,
            "dropout": 0.5,
            "image_size": 128,
            "modalities": "rgb+dem",
            "dem_norm": "minmax",
            "negatives": "off",
            "augment": False,
            "seed": 42,
            "threshold": 0.5,
        },
        "split": {"seed": 42, "fractions": [0.64, 0.16, 0.2]},
        "select_on": "test",
        "seeds": 1,
        "stage1": {
            "bases": ["unet", "resunet", "unetpp"],
            "losses": ["bce", "focal", "dice", "wce"],
        },
        "stage3": {
            "base": "unetpp",
            "models": ["unetpp_spatial", "unetpp_ctx", "unetpp_spatial_ctx"],
        },
        "loss_kwargs": {},
    },
    "quick": {
        "name": "quick",
        "extends": "paper",
        "description": (
            "The paper protocol at CPU size: 64x64 inputs, 8 base filters, depth 3, "
            "5 epochs at learning rate 1e-3 (1e-5 learns nothing in 5 epochs)."
        ),
        "train": {"image_size": 64, "base_filters": 8, "depth": 3, "epochs": 5, "lr": 0.001},
    },
}


@dataclasses.dataclass
class Study:
    """A parsed, validated study definition.

    Attributes:
        name: study name.
        description: one paragraph, copied into the output README.
        train: ``TrainConfig`` field values shared by every run.
        split_seed: seed of the one shared train/val/test split.
        split_fractions: train, val, test fractions.
        select_on: ``"test"`` (what the paper did) or ``"val"``.
        seeds: number of seeds per model/loss (``train["seed"]`` upwards).
        bases: stage-1 models.
        losses: stage-1 losses.
        attention_base: the base whose selected loss stage 3 uses.
        attention_models: stage-3 models.
        loss_kwargs: extra loss arguments per loss name.
        source: where the definition came from (a path or ``"embedded"``).
    """

    name: str
    description: str
    train: dict[str, Any]
    split_seed: int
    split_fractions: tuple[float, float, float]
    select_on: str
    seeds: int
    bases: list[str]
    losses: list[str]
    attention_base: str
    attention_models: list[str]
    loss_kwargs: dict[str, dict[str, Any]]
    source: str = "embedded"

    @property
    def seed_list(self) -> list[int]:
        """The run seeds: ``train["seed"]``, ``+1``, ... (``seeds`` of them)."""
        seed0 = int(self.train.get("seed", 42))
        return [seed0 + i for i in range(self.seeds)]

    def with_overrides(
        self,
        *,
        train: dict[str, Any] | None = None,
        seeds: int | None = None,
        select_on: str | None = None,
    ) -> Study:
        """Return a copy with CLI overrides applied (``None`` keeps the study's value)."""
        new_train = dict(self.train)
        new_train.update({k: v for k, v in (train or {}).items() if v is not None})
        _check_train_keys(new_train, self.name)
        out = dataclasses.replace(
            self,
            train=new_train,
            seeds=self.seeds if seeds is None else seeds,
            select_on=self.select_on if select_on is None else select_on,
        )
        _validate(out)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The study in its JSON form (as run, overrides applied)."""
        return {
            "name": self.name,
            "description": self.description,
            "train": self.train,
            "split": {"seed": self.split_seed, "fractions": list(self.split_fractions)},
            "select_on": self.select_on,
            "seeds": self.seeds,
            "stage1": {"bases": self.bases, "losses": self.losses},
            "stage3": {"base": self.attention_base, "models": self.attention_models},
            "loss_kwargs": self.loss_kwargs,
        }


def study_dirs() -> list[Path]:
    """Folders searched for ``<name>.json``, in order."""
    dirs = []
    if os.environ.get("LANDSLIDE_TF_STUDIES"):
        dirs.append(Path(os.environ["LANDSLIDE_TF_STUDIES"]))
    dirs += [Path.cwd() / "experiments", REPO_STUDY_DIR]
    return dirs


def available_studies() -> list[str]:
    """Names of every study that ``load_study`` can find."""
    names = set(EMBEDDED_STUDIES)
    for d in study_dirs():
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.json"))
    return sorted(names)


def _read_raw(name_or_path: str | Path, _seen: tuple[str, ...] = ()) -> tuple[dict, str]:
    """Find a study definition and resolve ``extends``; return (dict, source)."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".json") or os.sep in text or path.is_file():
        if not path.is_file():
            raise UserError(f"study file not found: {path}")
        raw, source = _parse(path), str(path)
    else:
        raw, source = None, "embedded"
        for d in study_dirs():
            candidate = d / f"{text}.json"
            if candidate.is_file():
                raw, source = _parse(candidate), str(candidate)
                break
        if raw is None:
            if text not in EMBEDDED_STUDIES:
                raise UserError(
                    f"unknown study {text!r}; available: {', '.join(available_studies())} "
                    "(or pass a path to a .json file)"
                )
            raw = copy.deepcopy(EMBEDDED_STUDIES[text])
    parent = raw.pop("extends", None)
    if parent:
        if parent in _seen:
            raise UserError(f"study {text!r}: circular 'extends' through {parent!r}")
        base, _ = _read_raw(parent, (*_seen, text))
        base.pop("name", None)
        raw = _deep_merge(base, raw)
    return raw, source


def _parse(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"study file {path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise UserError(f"study file {path} must hold a JSON object")
    return raw


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_study(name_or_path: str | Path) -> Study:
    """Load a study by name (``paper``, ``quick``) or from a JSON path.

    Args:
        name_or_path: a study name (see module docstring for the lookup) or a ``.json`` path.

    Returns:
        The validated ``Study``.

    Raises:
        UserError: unknown name, unreadable file, or invalid content (one line).
    """
    raw, source = _read_raw(name_or_path)
    name = raw.get("name") or Path(str(name_or_path)).stem
    try:
        split = raw.get("split", {})
        stage1, stage3 = raw["stage1"], raw.get("stage3", {})
        study = Study(
            name=name,
            description=raw.get("description", ""),
            train=dict(raw.get("train", {})),
            split_seed=int(split.get("seed", 42)),
            split_fractions=tuple(float(f) for f in split.get("fractions", (0.64, 0.16, 0.2))),
            select_on=raw.get("select_on", "test"),
            seeds=int(raw.get("seeds", 1)),
            bases=list(stage1["bases"]),
            losses=list(stage1["losses"]),
            attention_base=stage3.get("base", "unetpp"),
            attention_models=list(stage3.get("models", [])),
            loss_kwargs=dict(raw.get("loss_kwargs", {})),
            source=source,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # AttributeError: a
        # section that is not an object ("split": [1, 2])
        raise UserError(f"study {name!r} ({source}) is malformed: {exc!r}") from None
    _check_train_keys(study.train, name)
    _validate(study)
    return study


#: ``TrainConfig`` fields the study sets for each run itself (``core.make_spec``): a value in
#: the shared train settings would be replaced without a word.
PER_RUN_FIELDS = ("model", "loss", "loss_kwargs", "data", "split_dir", "run_dir")


def _check_train_keys(train: dict[str, Any], name: str) -> None:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(train) - known)
    if unknown:
        raise UserError(
            f"study {name!r}: unknown train settings {unknown}; valid: {', '.join(sorted(known))}"
        )
    per_run = sorted(set(train) & set(PER_RUN_FIELDS))
    if per_run:
        raise UserError(
            f"study {name!r}: train settings {per_run} are set per run by the study: models "
            "and losses go in stage1/stage3, loss arguments in loss_kwargs (per loss name), "
            "the dataset in --data, the folders under --out"
        )


def study_models(study: Study) -> list[tuple[str, str]]:
    """Every (model, loss) a run of the study may have: stage 1's bases x losses, and each
    stage-3 model with every loss (stage 2 picks one of them)."""
    pairs = [(m, loss) for m in study.bases for loss in study.losses]
    pairs += [(m, loss) for m in study.attention_models for loss in study.losses]
    return list(dict.fromkeys(pairs))


def validate_run_config(study: Study, model: str, loss: str) -> None:
    """Check the config of the study's runs of ``model`` with ``loss``, before any run starts.

    Raises:
        UserError: one line naming the study, the run and the first bad setting.
    """
    values = {**study.train, "model": model, "loss": loss,
              "loss_kwargs": study.loss_kwargs.get(loss, {})}  # fmt: skip
    apply_encoder_defaults(values, depth_given="depth" in study.train)  # as train and the run
    try:
        validated(TrainConfig.from_dict(values))
    except UserError as exc:
        raise UserError(f"study {study.name!r}, {model} with {loss}: {exc}") from None


def _validate(study: Study) -> None:
    if study.select_on not in SELECT_SPLITS:
        raise UserError(f"select_on must be one of {SELECT_SPLITS}, got {study.select_on!r}")
    if study.seeds < 1:
        raise UserError(f"seeds must be at least 1, got {study.seeds}")
    if len(study.split_fractions) != 3 or abs(sum(study.split_fractions) - 1) > 1e-6:
        raise UserError(f"split fractions must be 3 numbers summing to 1: {study.split_fractions}")
    if not study.bases or not study.losses:
        raise UserError(f"study {study.name!r}: stage1 needs at least one base and one loss")
    for what, names in (("stage1 bases", study.bases), ("stage1 losses", study.losses),
                        ("stage3 models", study.attention_models)):  # fmt: skip
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # one run directory trained twice, its row counted twice in the tables
            raise UserError(f"study {study.name!r}: {what} name {', '.join(twice)} twice")
    for model in study.attention_models:  # same model, loss and seed: the same run folder
        if model in study.bases:
            raise UserError(
                f"study {study.name!r}: stage3 model {model} is also a stage1 base: its run "
                "would be a stage-1 run, listed and counted twice in the tables"
            )
    if study.attention_models and study.attention_base not in study.bases:
        raise UserError(
            f"study {study.name!r}: stage3 base {study.attention_base!r} is not a stage-1 base "
            f"{study.bases}"
        )
    test_split = study.train.get("test_split", "test")
    if test_split != "test":  # the tables are test metrics; a run scores val at the most
        raise UserError(
            f"study {study.name!r}: test_split must be 'test' (the tables report each run's "
            f"test metrics), got {test_split!r}"
        )
    if study.train.get("select_from_train"):  # carve_selection refuses a test list
        raise UserError(
            f"study {study.name!r}: select_from_train is for split lists without a test list, "
            "and a study's split has one: drop it (--select-on val selects on val)"
        )
    for model, loss in study_models(study):  # every run's config, before any run starts
        validate_run_config(study, model, loss)
