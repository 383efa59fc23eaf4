"""Run configuration: one dataclass, saved as ``config.json`` next to every run.

The defaults are the paper's (Hegde et al. 2025): Adam with learning rate 1e-5, batch size 2,
50 epochs, 128x128 inputs, dropout 0.5, RGB + DEM early fusion, and each family's best loss
(U-Net: BCE, ResUNet: weighted CE, U-Net++ and its attention variants: Dice).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from landslide_tf.files import atomic_write_text

#: The loss each family scored best with in the paper (Table 3).
PAPER_BEST_LOSS = {"unet": "bce", "resunet": "wce", "unetpp": "dice"}

MODALITIES = ("rgb+dem", "rgb", "dem")
DEM_NORMS = ("minmax", "dataset")
DERIVED_CHANNELS = ("slope", "aspect", "hillshade")
#: The ``tf.distribute`` strategy names (``--strategy``), without importing TensorFlow;
#: ``landslide_tf.training.distribute`` builds them (a test keeps its builders equal).
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def default_loss_for(model: str) -> str:
    """Return the paper's best loss for a registered model name.

    Args:
        model: registry name, for example ``"unetpp_spatial_ctx"``.

    Returns:
        ``"bce"`` for the U-Net family, ``"wce"`` for ResUNet, ``"dice"`` for U-Net++.
    """
    for family in sorted(PAPER_BEST_LOSS, key=len, reverse=True):
        if model == family or model.startswith(family + "_"):
            return PAPER_BEST_LOSS[family]
    return "dice"


def num_channels(modalities: str, derived: tuple[str, ...] | list[str] = ()) -> int:
    """Number of input channels for a modality string and derived DEM channels.

    >>> num_channels("rgb+dem"), num_channels("rgb"), num_channels("dem", ["slope"])
    (4, 3, 2)
    """
    if modalities not in MODALITIES:
        raise ValueError(f"unknown modalities {modalities!r}; expected one of {MODALITIES}")
    n = {"rgb+dem": 4, "rgb": 3, "dem": 1}[modalities]
    if derived and modalities == "rgb":
        raise ValueError("derived DEM channels need a DEM: use --modalities rgb+dem or dem")
    return n + len(derived)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines one training run.

    Attributes mirror the ``landslide_tf.training.train`` command-line options. ``loss=None`` means
    "the paper's best loss for this model family" and is resolved by ``resolved()``.
    """

    model: str = "unetpp_spatial_ctx"
    loss: str | None = None
    loss_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 50
    batch_size: int = 2
    lr: float = 1e-5
    base_filters: int = 32
    depth: int = 4
    dropout: float = 0.5
    # issue 21: U-Net++ only: a 1x1 head on every x_0_j, the output their mean
    deep_supervision: bool = False
    image_size: int = 128
    modalities: str = "rgb+dem"
    derived: list[str] = dataclasses.field(default_factory=list)
    dem_norm: str = "minmax"
    negatives: str = "off"
    augment: bool = False
    data: str | None = None
    split_dir: str | None = None
    run_dir: str | None = None
    seed: int = 42
    deterministic: bool = False
    threshold: float = 0.5
    strategy: str = "default"
    mixed_precision: bool = False
    jit: bool = False
    # issue 15: DEM nodata value (NaN always is nodata), applied wherever preprocessing runs
    dem_nodata: float | None = None
    # issue 21: ground size of a DEM pixel in the DEM's elevation unit (slope in degrees)
    pixel_size: float | None = None
    # issue 12: pretrained encoders (landslide_tf.models.encoders)
    encoder: str | None = None
    encoder_weights: str | None = None
    freeze_encoder_epochs: int = 0
    # issue 12: recipe (given splits, augmentation, optimizer schedule, TTA, tuned threshold)
    test_split: str = "test"
    augment_policy: str = "dihedral"
    optimizer: str = "adam"
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    warmup_epochs: float = 0.0
    # issue 21: exponential moving average of the weights (momentum; 0 = off)
    ema: float = 0.0
    # issue 21: the last ``finetune_epochs`` epochs train with ``finetune_loss`` (e.g. the
    # Lovasz hinge) on the same optimizer and schedule; 0 = off
    finetune_loss: str | None = None
    finetune_epochs: int = 0
    tta: bool = False
    # which copies TTA averages: "flips" (4 passes) or "dihedral" (8; landslide_tf.inference.tta)
    tta_transforms: str = "flips"
    tune_threshold: bool = False
    # issue 20: honest protocol: carve a selection split of this share of train (0 = off)
    select_from_train: float = 0.0
    select_seed: int = 0  # the selection's seed (shared by runs of different --seed)
    # issue 13: data formats and bands
    data_format: str | None = None
    bands: list[str] | None = None
    band_norm: str = "standard"
    # issue 14: precision (auto|float32|bfloat16|float16; "mixed" = legacy --mixed-precision)
    precision: str = "auto"
    steps_per_execution: int = 0  # 0 = auto (acceleration.choose_steps_per_execution)

    def resolved(self) -> TrainConfig:
        """Return a copy with ``loss`` filled in from the paper's per-family best."""
        loss = self.loss or default_loss_for(self.model)
        return dataclasses.replace(self, loss=loss)

    @property
    def channels(self) -> int:
        """Input channel count implied by ``modalities`` and ``derived`` (or ``bands``)."""
        if self.data_format in ("l4s", "folder") and self.bands:
            return len(self.bands)
        return num_channels(self.modalities, self.derived)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the config as pretty JSON."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = dict(values)
        if "precision" not in values and "mixed_precision" in values:
            # a config.json written before --precision existed (it has every older field)
            values["precision"] = "mixed" if values["mixed_precision"] else "float32"
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a config written by ``save``."""
        return cls.from_dict(json.loads(Path(path).read_text()))


# issue 15: damaged config.json files are refused with the field and its value
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "None": (type(None),),
    "dict[str, Any]": (dict,),
    "list[str]": (list,),
}


def config_type_problem(values: Any) -> str | None:
    """Why a ``config.json`` dict cannot be a ``TrainConfig`` (None when it can).

    Checks that it is an object and that every known field holds a value of its annotated
    type (``int`` fields refuse ``true`` and ``"8"``; unknown keys are ignored).
    """
    if not isinstance(values, dict):
        return f"expected a JSON object, got {type(values).__name__}"
    for field in dataclasses.fields(TrainConfig):
        if field.name not in values:
            continue
        allowed: tuple[type, ...] = ()
        for part in str(field.type).split(" | "):
            if part.strip() not in _JSON_TYPES:
                allowed = ()
                break
            allowed += _JSON_TYPES[part.strip()]
        value = values[field.name]
        if not allowed:
            continue
        wrong_bool = isinstance(value, bool) and bool not in allowed
        if wrong_bool or not isinstance(value, allowed):
            return f"{field.name} is {value!r}, expected {field.type}"
    return None


#: Fields that may differ without making a run another run: they do not change what is
#: learned, so ``train`` resumes across them and a study reuses the run. A finished run asked
#: with other ``SCORING_FIELDS`` is scored again (not retrained); ``epochs`` may grow only
#: where nothing is laid out over it (``epochs_fixed_by``), and ``strategy`` may change only
#: where the global batch stays the one recorded in ``GLOBAL_BATCH`` (``train`` checks it).
RESUME_FREE_FIELDS = (
    "run_dir",
    "epochs",
    "strategy",
    "jit",
    "test_split",
    "tta",
    "tta_transforms",
    "tune_threshold",
    "precision",
    "mixed_precision",
    "steps_per_execution",
)


#: ``config.json`` entry: the global batch (``batch_size`` per replica x replicas) the run's
#: epochs trained with; the steps per epoch, and so the optimizer's step count that the
#: learning-rate schedule follows, are counted with it. Runs from before it have none.
GLOBAL_BATCH = "global_batch"


#: The fields of ``RESUME_FREE_FIELDS`` that decide how a finished run is scored.
SCORING_FIELDS = ("test_split", "tta", "tta_transforms", "tune_threshold")


def _scoring(values: dict[str, Any]) -> dict[str, Any]:
    config = TrainConfig.from_dict(values)
    out = {key: getattr(config, key) for key in SCORING_FIELDS}
    if not config.tta:
        out["tta_transforms"] = None  # unused without TTA
    return out


def scoring_differences(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """The scoring settings (``SCORING_FIELDS``) in which two configs of one run differ:
    ``["key: old -> new", ...]``; ``tta_transforms`` counts only with ``tta`` on."""
    old, new = _scoring(stored), _scoring(requested)
    return [f"{k}: {old[k]!r} -> {new[k]!r}" for k in SCORING_FIELDS if old[k] != new[k]]


def epochs_fixed_by(config: TrainConfig) -> str | None:
    """What of the run is laid out over its total ``epochs``, fixing them once it trained.

    A ``cosine`` learning rate (with its warm-up) decays to the last step of ``epochs``, and a
    fine-tuning phase is the last ``finetune_epochs`` of them: a run with either cannot
    change its ``epochs`` once it trained, the learning rate or the loss would jump mid-run.

    Returns:
        A description such as ``"its cosine learning-rate schedule"``, or None.
    """
    if config.lr_schedule != "constant":
        return f"its {config.lr_schedule} learning-rate schedule"
    if config.finetune_loss and config.finetune_epochs:
        return f"its fine-tuning phase (the last {config.finetune_epochs} epochs)"
    return None


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """A stored or requested config reduced to what decides the run: normalised through
    ``TrainConfig`` (unknown keys dropped, newer fields at their defaults, the loss resolved),
    without ``RESUME_FREE_FIELDS`` and the loss arguments ``train`` derived itself
    (``auto_loss_kwargs``, e.g. the WCE class weights)."""
    out = TrainConfig.from_dict(values).resolved().to_dict()
    auto = set(values.get("auto_loss_kwargs") or ())
    out["loss_kwargs"] = {k: v for k, v in (out["loss_kwargs"] or {}).items() if k not in auto}
    out["derived"] = list(out.get("derived") or [])
    for key in RESUME_FREE_FIELDS:
        out.pop(key, None)
    return out


def config_differences(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """The one run-config comparator (resume and studies): ``["key: old -> new", ...]``."""
    old, new = comparable(stored), comparable(requested)
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
