"""The model card of an exported SavedModel: what it is, how it preprocesses, how it scored.

``landslide_tf.inference.export`` writes it as ``assets/model_card.json`` and ``assets/MODEL_CARD.md``;
``Predictor.from_saved_model`` reads the JSON back for the preprocessing settings.

An ensemble's card (``export_ensemble``) has no test metrics, no
``metrics_at_exported_threshold`` values and no threshold tuning: they would be its first
member's, and nothing scores the ensemble at export; each member's test metrics are listed
under ``ensemble.members``.

Metrics and thresholds (issue 22, item 6): ``test_metrics`` is the run's ``metrics.json``
as stored, and ``test_metrics_threshold`` says at which threshold it was computed.
``metrics_at_exported_threshold`` holds the test metrics of the SavedModel as exported: at
the threshold its ``mask`` uses, with its TTA (on/off and transforms), its DEM nodata value
and, where the file records it, its precision. They are taken from ``metrics.json`` when it was scored that way,
else from ``metrics_test.json`` (``evaluate --threshold T``) or another ``metrics_test_*.json``
(``evaluate --tta``, ``--precision ...``, ``--dem-nodata ...``) that was; otherwise they are *not computed* (export
does not read the dataset: it may not be there), and the card says so with the command that
computes them. A metrics file without the ``tta``/``tta_transforms`` (or ``dem_nodata``) keys was scored with the
run's own settings (``config.json``; off and ``flips`` when it has none), as ``evaluate``
names its files; one without ``inference_precision`` is not checked for precision.
``threshold_tuning`` is the run's ``threshold.json`` (metric, shrinkage, F1 plateau) when it
has one.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landslide_tf.inference.settings import INFERENCE_PRECISION, InferenceSettings
from landslide_tf.inference.tta import DEFAULT_TRANSFORMS
from landslide_tf.metrics.thresholds import read_threshold_info

logger = logging.getLogger(__name__)

#: What each band normalisation of the input spec does, in words.
NORMALIZATION_TEXT = {
    "unit": "/ 255 -> [0, 1]",
    "standard": "(x - mean) / std, training-split statistics",
    "percentile": "clip((x - p2) / (p98 - p2), 0, 1), training-split percentiles",
    "minmax": "per tile: (x - min) / (max - min) -> [0, 1] (flat tile -> 0)",
    "none": "computed from the resampled DEM, already in [0, 1]",
}
#: The model card's name of a DEM normalisation (release 0.1's ``dem_norm`` values).
DEM_NORM_NAMES = {"minmax": "minmax", "standard": "dataset"}
#: What the values of a raw ``image`` input are, by its dtype.
IMAGE_UNITS = {"uint8": "0..255", "float32": "in the training data's units (NaN = nodata)"}


def package_version() -> str:
    """The installed landslide_tf version (``unknown`` when run from an uninstalled tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("landslide_tf")
    except PackageNotFoundError:
        return "unknown"


def _count_lines(path: Path) -> int | None:
    if not path.is_file():
        return None
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        logger.warning("ignoring unreadable %s", path)
        return None


#: Two thresholds closer than this are the same (both lie on the metrics' 1e-4 grid).
SAME_THRESHOLD = 1e-6


def scored_with(
    values: Mapping[str, Any], run_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The settings of a metrics file that change the probabilities it was scored on.

    Args:
        values: a metrics file (``evaluate`` records ``tta``, ``tta_transforms`` when TTA
            is on, ``inference_precision`` and ``dem_nodata``).
        run_config: the run's ``config.json``: a missing ``tta``/``tta_transforms`` or
            ``dem_nodata`` is the run's own (``InferenceSettings.from_dict``'s defaults, off
            and ``flips``, when the config has none either).

    Returns:
        ``{"tta", "tta_transforms" (None when TTA is off), "precision" (None: not recorded),
        "dem_nodata"}``.
    """
    run = run_config or {}
    tta = bool(values.get("tta", run.get("tta", False)))
    transforms = values.get("tta_transforms") or run.get("tta_transforms") or DEFAULT_TRANSFORMS
    nodata = values["dem_nodata"] if "dem_nodata" in values else run.get("dem_nodata")
    return {
        "tta": tta,
        "tta_transforms": str(transforms) if tta else None,
        "precision": values.get("inference_precision"),
        "dem_nodata": None if nodata is None else float(nodata),
    }


def same_scoring(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether two ``scored_with`` dicts give the same probabilities (an unrecorded precision
    matches any)."""
    if (stored["tta"], stored["tta_transforms"]) != (wanted["tta"], wanted["tta_transforms"]):
        return False
    if stored["dem_nodata"] != wanted["dem_nodata"]:
        return False
    return None in (stored["precision"], wanted["precision"]) or (
        stored["precision"] == wanted["precision"]
    )


def describe_scoring(values: Mapping[str, Any]) -> str:
    """A ``scored_with`` dict in words: ``TTA off``, ``TTA dihedral, bfloat16, DEM nodata 0``."""
    words = f"TTA {values['tta_transforms']}" if values["tta"] else "TTA off"
    if values["precision"]:
        words += f", {values['precision']}"
    if values["dem_nodata"] is not None:
        words += f", DEM nodata {values['dem_nodata']:g}"
    return words


def metrics_at_threshold(
    threshold: float,
    metrics: dict[str, Any] | None,
    run_dir: Path | None,
    *,
    tta: bool = False,
    tta_transforms: str = DEFAULT_TRANSFORMS,
    precision: str | None = None,
    run_config: Mapping[str, Any] | None = None,
    dem_nodata: float | None = None,
) -> dict[str, Any]:
    """The test metrics of the export, from the stored metrics files, or a note.

    A stored file counts when its threshold is ``threshold`` and it was scored with the
    export's TTA, precision and DEM nodata (``scored_with``: a key the file lacks is the run's
    setting; an unrecorded precision is not checked).

    Args:
        threshold: the exported ``mask`` threshold.
        metrics: the run's ``metrics.json``, if any.
        run_dir: the run directory (its ``metrics_test*.json``), if known.
        tta: whether the export averages over TTA transforms.
        tta_transforms: which (only with ``tta``).
        precision: the export's precision (None: not checked).
        run_config: the run's ``config.json`` (its own ``tta``/``tta_transforms``).
        dem_nodata: the DEM nodata value the export treats as missing (``evaluate
            --dem-nodata V`` scores with another one into ``metrics_test_*_nodata.json``).

    Returns:
        ``{"threshold", "source", "metrics"}`` (``source`` the file they come from), or
        ``{"threshold", "source": None, "metrics": None, "note"}`` when no stored file is at
        that threshold with those settings.
    """
    wanted = scored_with(
        {
            "tta": bool(tta),
            "tta_transforms": tta_transforms,
            "inference_precision": precision,
            "dem_nodata": dem_nodata,
        }
    )
    candidates = [("metrics.json", metrics)]
    if run_dir is not None:
        candidates.append(("metrics_test.json", read_json(run_dir / "metrics_test.json")))
        for path in sorted(run_dir.glob("metrics_test_*.json")):  # evaluate --tta, --precision
            candidates.append((path.name, read_json(path)))
    for name, values in candidates:
        stored = (values or {}).get("threshold")
        if (
            isinstance(stored, (int, float))
            and abs(stored - threshold) < SAME_THRESHOLD
            and same_scoring(scored_with(values, run_config), wanted)
        ):
            return {"threshold": threshold, "source": name, "metrics": values}
    where = run_dir if run_dir is not None else "RUN"
    at = (metrics or {}).get("threshold")
    if not metrics:
        reason = "no test metrics stored"
    elif not isinstance(at, (int, float)):
        reason = "the stored test metrics do not say their threshold"
    elif abs(at - threshold) >= SAME_THRESHOLD:
        reason = f"the stored test metrics are at {at:g}"
    else:
        stored_with = describe_scoring(scored_with(metrics, run_config))
        reason = (
            f"the stored test metrics are with {stored_with}, "
            f"the export with {describe_scoring(wanted)}"
        )
    run = scored_with({}, run_config)  # what evaluate does unless told
    flags = f"--threshold {threshold:g}"
    if (wanted["tta"], wanted["tta_transforms"]) != (run["tta"], run["tta_transforms"]):
        flags += f" --tta --tta-transforms {tta_transforms}" if tta else " --no-tta"
    if precision not in (None, INFERENCE_PRECISION):
        flags += f" --precision {precision}"
    if wanted["dem_nodata"] != run["dem_nodata"] and wanted["dem_nodata"] is not None:
        flags += f" --dem-nodata {wanted['dem_nodata']:g}"
    return {
        "threshold": threshold,
        "source": None,
        "metrics": None,
        "note": (
            f"not computed ({reason}); run python -m landslide_tf.evaluate {where} "
            f"{flags}, then export again"
        ),
    }


#: What an ensemble's card says instead of test metrics: nothing scores the mean of the
#: members at export, and no member's metrics are the ensemble's.
ENSEMBLE_METRICS_NOTE = (
    "not computed: the ensemble (the mean of its members' probabilities) was not scored at "
    "export, and a member's test metrics are not the ensemble's; each member's own are in "
    "model_card.json under ensemble.members"
)


#: Card entries ``(section, key, config.json field)`` that an
#: ensemble's members may not share (a seed ensemble differs in ``seed``).
MEMBER_FIELDS = (
    ("model", "name", "model"),
    ("model", "base_filters", "base_filters"),
    ("model", "depth", "depth"),
    ("model", "dropout", "dropout"),
    ("training_data", "negatives", "negatives"),
    ("training_data", "augment", "augment"),
    ("training_data", "epochs", "epochs"),
    ("training_data", "batch_size", "batch_size"),
    ("training_data", "lr", "lr"),
    ("training_data", "seed", "seed"),
)


def show_members(card: dict[str, Any], configs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """An ensemble's card with every ``MEMBER_FIELDS`` entry (and the loss) on which its
    members differ as a list, one value per member, instead of the first member's value
    (a seed ensemble's card said ``seed 42`` for all three seeds)."""

    def differ(values: list[Any]) -> bool:
        return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1

    for section, key, field in MEMBER_FIELDS:
        values = [c.get(field) for c in configs]
        if differ(values):
            card[section][key] = values
    losses = [c.get("loss") for c in configs]
    kwargs = [c.get("loss_kwargs") or {} for c in configs]
    if differ(losses) or differ(kwargs):
        card["loss"] = {"name": losses, "kwargs": kwargs}
    return card


def shown(value: Any) -> str:
    """A card value in Markdown: a per-member list as ``a / b / c``."""
    return " / ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def ensemble_metrics(threshold: float) -> dict[str, Any]:
    """``metrics_at_exported_threshold`` of an ensemble: not computed, with the note."""
    return {"threshold": threshold, "source": None, "metrics": None, "note": ENSEMBLE_METRICS_NOTE}


def model_card(
    config: dict[str, Any],
    settings: InferenceSettings,
    *,
    metrics: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    parameters: int | None = None,
    ensemble: bool = False,
) -> dict[str, Any]:
    """The model card as a JSON-ready dict.

    Args:
        config: the run's ``config.json`` contents (an ensemble's first member's).
        settings: the preprocessing baked into the export.
        metrics: the run's ``metrics.json`` (test metrics), if any.
        run_dir: the run directory (for split sizes and provenance).
        parameters: the network's parameter count.
        ensemble: the card of an ensemble: no test metrics and no threshold tuning of
            its own (``metrics``, the run's metrics files and ``threshold.json`` are
            the first member's, not the ensemble's), ``ensemble_metrics`` instead.
    """
    if ensemble:
        metrics = None
    run = Path(run_dir) if run_dir is not None else None
    split = {
        name: _count_lines(run / f"{name}.txt") if run is not None else None
        for name in ("train", "val", "test")
    }
    loss = config.get("loss")
    if loss is None and config.get("model"):
        from landslide_tf.training.config import default_loss_for

        loss = default_loss_for(str(config["model"]))
    import tensorflow as tf

    if ensemble:
        exported = ensemble_metrics(float(settings.threshold))
    else:
        exported = metrics_at_threshold(
            float(settings.threshold),
            metrics,
            run,
            tta=settings.tta,
            tta_transforms=settings.tta_transforms,
            precision=config.get("exported_precision"),
            run_config=config,
            dem_nodata=settings.nodata,
        )
    return {
        "format": "landslide_tf model card 1",
        "landslide_tf_version": package_version(),
        "tensorflow_version": tf.__version__,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(run) if run is not None else None,
        "model": {
            "name": config.get("model"),
            "base_filters": config.get("base_filters"),
            "depth": config.get("depth"),
            "dropout": config.get("dropout"),
            "parameters": parameters,
        },
        "loss": {"name": loss, "kwargs": config.get("loss_kwargs") or {}},
        "channels": settings.channel_names,
        "normalization": normalization(settings),
        "threshold": settings.threshold,
        "training_data": {
            "data": config.get("data"),
            "modalities": f"{settings.spec.data_format}: {settings.modalities}",
            "negatives": config.get("negatives"),
            "augment": config.get("augment"),
            "split_sizes": split,
            "epochs": config.get("epochs"),
            "batch_size": config.get("batch_size"),
            "lr": config.get("lr"),
            "seed": config.get("seed"),
        },
        "test_metrics": metrics,
        "test_metrics_threshold": (metrics or {}).get("threshold"),
        "test_split_role": (metrics or {}).get("split_role", (metrics or {}).get("split")),
        "metrics_at_exported_threshold": exported,
        "threshold_tuning": read_threshold_info(run) if run is not None and not ensemble else None,
        "signatures": signature_summary(settings),
        "settings": settings.to_dict(),
        "config": config,
    }


def normalization(settings: InferenceSettings) -> dict[str, Any]:
    """The ``normalization`` section: every band with its source, normalisation and
    parameters, plus the DEM entries of release 0.1's cards."""
    spec = settings.spec
    dem = spec.dem_band
    image = spec.image_bands
    image_text = None
    if image:
        norms = "; ".join(sorted({NORMALIZATION_TEXT[b.norm] for b in image}))
        image_text = (
            f"{spec.image_dtype} {', '.join(b.name for b in image)}: {norms} per band; "
            f"NaN -> 0; bilinear (antialiased) resize to {spec.size} px"
        )
    return {
        "image_size": spec.size,
        "image": image_text,
        "dem": None if dem is None else f"{NORMALIZATION_TEXT[dem.norm]} after resampling",
        "dem_norm": None if dem is None else DEM_NORM_NAMES.get(dem.norm, dem.norm),
        "dem_stats": None if dem is None or dem.params is None else list(dem.params),
        "dem_nodata": spec.nodata,
        "derived": list(spec.derived),
        "bands": spec.channel_names,
        "band_params": {b.name: list(b.params) for b in spec.bands if b.params is not None},
        "input": spec.to_dict(),
        "output": "probabilities resized bilinearly back to the input size",
    }


def mask_summary(settings: Any, size: int | None = None) -> str:
    """The ``mask`` output of a signature: shape, dtype and the threshold baked in."""
    shape = "[N, H, W]" if size is None else f"[N, {size}, {size}]"
    return f"uint8 {shape}: 1 where probability >= {settings.threshold:g}, else 0"


def signature_summary(settings: InferenceSettings) -> dict[str, Any]:
    """Human-readable description of the two signatures."""
    inputs = {}
    if settings.uses_image:
        spec = settings.spec
        names = ", ".join(b.name for b in spec.image_bands)
        inputs["image"] = (
            f"{spec.image_dtype} [N, H, W, {spec.image_channels}] bands {names} "
            f"{IMAGE_UNITS[spec.image_dtype]}"
        )
    if settings.uses_dem:
        inputs["dem"] = "float32 [N, H', W'] elevation on any grid (NaN = nodata)"
    size, channels = settings.image_size, settings.channels
    return {
        "serving_default": {
            "inputs": inputs,
            "outputs": {"probability": "float32 [N, H, W]", "mask": mask_summary(settings)},
        },
        "normalized": {
            "inputs": {"inputs": f"float32 [N, {size}, {size}, {channels}] normalized"},
            "outputs": {
                "probability": f"float32 [N, {size}, {size}]",
                "mask": mask_summary(settings, size),
            },
        },
    }


def model_card_markdown(card: dict[str, Any]) -> str:
    """Render the model card dict as Markdown."""
    m, norm, data = card["model"], card["normalization"], card["training_data"]
    ensemble = card.get("ensemble")
    title = m["name"] if not ensemble else (
        f"ensemble of {len(ensemble['members'])} "
        f"({', '.join(dict.fromkeys(str(x['model']) for x in ensemble['members']))})"
    )  # fmt: skip
    lines = [
        f"# Model card: {title}",
        "",
        f"Exported by landslide_tf {card['landslide_tf_version']} "
        f"(TensorFlow {card['tensorflow_version']}) on {card['exported']}.",
        "",
        "## Model",
        f"- architecture: `{shown(m['name'])}`, base filters {shown(m['base_filters'])}, "
        f"depth {shown(m['depth'])}, dropout {shown(m['dropout'])}, {m['parameters']} parameters",
        f"- loss: `{shown(card['loss']['name'])}` {card['loss']['kwargs'] or ''}".rstrip(),
        f"- decision threshold: {card['threshold']} (the SavedModel's `mask` output: 1 where "
        "probability >= threshold)",
        "",
        "## Inputs and normalization",
        f"- channels: {', '.join(card['channels'])}",
        f"- training size: {norm['image_size']} x {norm['image_size']}",
    ]
    if norm["image"]:
        lines.append(f"- image: {norm['image']}")
    if norm["dem"]:
        extra = (
            f" and cells equal to {norm['dem_nodata']}" if norm["dem_nodata"] is not None else ""
        )
        lines.append(f"- DEM: {norm['dem']}; NaN cells{extra} are nodata (filled with the mean)")
        if norm["dem_stats"]:
            lines.append(f"- DEM statistics (mean, std): {norm['dem_stats']}")
    if norm["derived"]:
        lines.append(f"- derived channels: {', '.join(norm['derived'])}")
    if norm.get("band_params"):
        lines += ["", "| band | a (mean or p2) | b (std or p98) |", "|---|---|---|"]
        for band, (a, b) in norm["band_params"].items():
            lines.append(f"| {band} | {a:.6g} | {b:.6g} |")
    if ensemble:
        lines += ["", f"## Ensemble ({len(ensemble['members'])} members: {ensemble['rule']})"]
        for member in ensemble["members"]:
            lines.append(
                f"- `{member['run_dir']}`: {member['model']}, seed {member['seed']}, "
                f"threshold {member['threshold']}, {member['parameters']} parameters"
            )
    lines += ["", "## Signatures"]
    for name, sig in card["signatures"].items():
        ins = ", ".join(f"`{k}` {v}" for k, v in sig["inputs"].items())
        outs = ", ".join(f"`{k}` {v}" for k, v in sig["outputs"].items())
        lines.append(f"- `{name}`: {ins} -> {outs}")
    lines += [
        "",
        "## Training data",
        f"- data: {data['data']}",
        f"- modalities: {data['modalities']}, negatives: {shown(data['negatives'])}, "
        f"augment: {shown(data['augment'])}",
        f"- split sizes (tiles): {data['split_sizes']}",
        f"- epochs {shown(data['epochs'])}, batch size {shown(data['batch_size'])}, "
        f"lr {shown(data['lr'])}, seed {shown(data['seed'])}",
        "",
    ]
    tuning = card.get("threshold_tuning")
    if tuning and tuning.get("plateau"):
        lo, hi = tuning["plateau"]
        lines += [
            "",
            "## Threshold",
            f"- tuned on {tuning.get('split_role', tuning.get('split', 'val'))}: best "
            f"{tuning.get('metric', '?')} at {tuning.get('best', tuning['threshold'])}, shrunk "
            f"toward 0.5 with weight {tuning.get('shrink_weight', 1.0):.3f} "
            f"({tuning.get('n_positive', '?')} landslide pixels) to {tuning['threshold']}",
            f"- F1 plateau (F1 within {tuning.get('plateau_tolerance', 0.01)} of the best): "
            f"thresholds {lo:g} to {hi:g}",
        ]
    metrics = card["test_metrics"]
    role = card.get("test_split_role") or "test"
    at = card.get("test_metrics_threshold")
    heading = "## Test metrics" if at is None else f"## Test metrics (at threshold {at:g})"
    lines += ["", heading]
    if metrics:
        lines.append(f"- split: {role}")
        lines += _metric_lines(metrics)
    elif ensemble:
        lines.append(f"- {ENSEMBLE_METRICS_NOTE}")
    else:
        lines.append("- none recorded (no metrics.json in the run)")
    exported = card.get("metrics_at_exported_threshold")
    if exported:
        lines += ["", f"## Test metrics at the exported threshold ({exported['threshold']:g})"]
        if exported["metrics"] is None:
            lines.append(f"- {exported['note']}")
        else:
            lines.append(f"- from {exported['source']}")
            lines += _metric_lines(exported["metrics"])
    return "\n".join(lines) + "\n"


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else value
        lines.append(f"- {key}: {shown}")
    return lines
