"""Export a training run as a TensorFlow SavedModel that plain TensorFlow can serve.

The SavedModel needs neither landslide_tf nor Keras to load (``tf.saved_model.load``). Its
``serving_default`` signature takes the raw inputs of the run's input spec and runs the
training preprocessing inside the graph (``landslide_tf.inference.serving``):

- Bijie runs: ``image`` (uint8 ``[N, H, W, 3]``) and ``dem`` (float32 ``[N, H', W']``, any
  grid: it is resampled); RGB-only models take no ``dem``, DEM-only models no ``image``
  (then the output is on the DEM grid);
- multi-band runs (``l4s``, ``folder``): ``image`` float32 ``[N, H, W, bands]`` in the
  user's units (the run's bands, in its order; NaN = nodata).

Outputs: ``probability`` (float32 ``[N, H, W]``) at the input size and ``mask`` (uint8, 1
where ``probability >= threshold``: the run's tuned threshold if ``threshold.json`` exists,
else its ``config.json`` one, unless ``threshold`` overrides). ``normalized`` takes inputs
already preprocessed at the training size.

Wrong dtypes are rejected by the signatures; wrong channel counts, ranks and mismatched
batch sizes fail inside the graph with a message (``tf.debugging`` asserts). NaN DEM cells
are always nodata (filled with the tile's valid mean); ``dem_nodata`` bakes one more nodata
value into the graph. A sample whose DEM has no valid cell at all gets a NaN probability
(mask 0), the rule ``predict --scene`` applies to such windows. The SavedModel computes in float32 unless ``precision`` says otherwise.

A model card (``assets/model_card.json`` and ``assets/MODEL_CARD.md``) records the model,
loss, channels, normalization, threshold, training data and test metrics.

The command line is ``landslide_tf.cli.export``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError
from landslide_tf.files import remove_stale_staging, staged_dir
from landslide_tf.inference.model_card import (
    model_card,
    model_card_markdown,
    read_json,
    show_members,
)
from landslide_tf.inference.predictor import Predictor
from landslide_tf.inference.settings import INFERENCE_PRECISION, InferenceSettings
from landslide_tf.metrics.thresholds import validate_threshold

logger = logging.getLogger(__name__)


def export_model(
    model: Any,
    settings: InferenceSettings,
    out: str | Path,
    *,
    card: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` with its preprocessing as a SavedModel (atomically).

    Args:
        model: a Keras model taking ``(N, S, S, C)`` normalized inputs, or a list of such
            models (an ensemble: the mean of their probabilities).
        settings: the input spec (and threshold, TTA, DEM nodata) baked into the graph.
        out: output directory.
        card: model card dict (default: a minimal one from ``settings``).
        overwrite: replace an existing SavedModel at ``out``.

    Returns:
        The output directory.
    """
    out = Path(out)
    check_out(out, overwrite)
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    for member in models:
        got = member.input_shape[-1]
        if got is not None and got != settings.channels:
            raise UserError(
                f"the model takes {got} channels but its input ({settings.modalities}) "
                f"gives {settings.channels}"
            )
    if card is None:
        card = model_card({}, settings, parameters=sum(int(m.count_params()) for m in models))
    from landslide_tf.inference.serving import ServingModule, save_module

    module = ServingModule(model, settings)
    remove_stale_staging(out.parent, out.name)
    with staged_dir(out) as stage:
        try:
            save_module(module, card, stage, model_card_markdown)
        except Exception as exc:
            raise saving_error(exc, out) from exc
    logger.info("wrote SavedModel %s (%s)", out, settings.modalities)
    return out


def saving_error(exc: BaseException, out: Path) -> BaseException:
    """An ``OSError`` naming ``out`` for a failed ``tf.saved_model.save`` (a full disk is a
    TensorFlow ``ResourceExhaustedError`` or an ``OSError`` there); others unchanged."""
    import errno

    import tensorflow as tf

    if isinstance(exc, OSError):
        return OSError(exc.errno, exc.strerror or str(exc), str(out))
    if not isinstance(exc, tf.errors.OpError):
        return exc
    text = str(getattr(exc, "message", "") or exc)
    reason = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if isinstance(exc, tf.errors.ResourceExhaustedError) or "No space left" in text:
        return OSError(errno.ENOSPC, "No space left on device", str(out))
    if isinstance(exc, tf.errors.PermissionDeniedError):
        return OSError(errno.EACCES, "Permission denied", str(out))
    if "Read-only file system" in text:
        return OSError(errno.EROFS, "Read-only file system", str(out))
    return OSError(errno.EIO, f"TensorFlow could not write the SavedModel ({reason})", str(out))


def check_out(out: Path, overwrite: bool) -> bool:
    """Refuse an ``out`` that is a file, or a non-empty folder that ``overwrite`` may not
    replace; True when an existing SavedModel is to be replaced."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file; give a new or empty folder")
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if not overwrite:
        raise UserError(f"{out} exists and is not empty (use --overwrite)")
    if not (out / "saved_model.pb").is_file():
        raise UserError(
            f"{out} is not empty and not a SavedModel; --overwrite replaces only a "
            "SavedModel: choose another --out"
        )
    return True


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    dem_nodata: float | None = None,
    overwrite: bool = False,
    tta: bool | None = None,
    threshold: float | None = None,
    precision: str | None = INFERENCE_PRECISION,
    tta_transforms: str | None = None,
) -> Path:
    """Export a training run's best model as a SavedModel with a model card.

    Args:
        run_dir: a run directory (``config.json``, ``best.keras``, ``metrics.json``).
        out: output directory for the SavedModel.
        dem_nodata: a DEM value to treat as missing, baked into the graph.
        overwrite: replace an existing SavedModel at ``out``.
        tta: bake flip averaging into ``serving_default`` (default: the run's ``tta``).
        threshold: the threshold of the ``mask`` output and the model card (default: the
            run's, the tuned one when ``threshold.json`` exists).
        precision: the SavedModel's arithmetic: ``float32`` (default: runs on any
            hardware), ``bfloat16``, ``float16`` or ``auto`` (this machine's choice).
        tta_transforms: what the baked averaging covers, ``"flips"`` or ``"dihedral"``
            (default: the run's).

    Returns:
        The output directory.
    """
    from landslide_tf.training.precision import model_precision
    from landslide_tf.training.runs import read_config_json

    validate_threshold(threshold, "--threshold")
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir} is not a run directory (no config.json)")
    check_out(Path(out), overwrite)  # before the model is loaded
    predictor = Predictor.load(
        run_dir, nodata=dem_nodata, tta=tta, precision=precision, tta_transforms=tta_transforms
    )
    settings, model = predictor.settings, predictor.model
    if threshold is not None:
        settings = settings.replace(threshold=float(threshold))
    config = read_config_json(run_dir / "config.json")
    config["exported_precision"] = model_precision(model)
    card = model_card(
        config,
        settings,
        metrics=read_json(run_dir / "metrics.json"),
        run_dir=run_dir,
        parameters=int(model.count_params()),
    )
    return export_model(model, settings, out, card=card, overwrite=overwrite)


def export_ensemble(
    run_dirs: list[str | Path],
    out: str | Path,
    *,
    dem_nodata: float | None = None,
    overwrite: bool = False,
    tta: bool | None = None,
    threshold: float | None = None,
    precision: str | None = INFERENCE_PRECISION,
    tta_transforms: str | None = None,
) -> Path:
    """Export several runs as ONE SavedModel whose probability is the mean of theirs.

    The members must share the input spec (bands, normalisation, training size, DEM
    nodata) and flip averaging (on/off and its transforms; ``tta``/``tta_transforms`` set
    both for every member); the signatures are those of a single run's export. The
    ``mask`` threshold is ``threshold``, else the members' common one, else their mean. The
    model card is the first member's with ``ensemble`` listing every member (with its own
    test metrics) and a list of the members' values wherever they differ
    (``model_card.show_members``); the ensemble's own test metrics are not computed (the card
    says so).

    Raises:
        UserError: fewer than two runs, the same run twice, or members that disagree.
    """
    from landslide_tf.training.precision import model_precision
    from landslide_tf.training.runs import read_config_json

    dirs = [Path(d) for d in run_dirs]
    if len(dirs) < 2:
        raise UserError("an ensemble needs at least two run directories")
    if len({d.resolve() for d in dirs}) != len(dirs):
        raise UserError("an ensemble lists the same run directory twice")
    validate_threshold(threshold, "--threshold")
    for d in dirs:
        if not (d / "config.json").is_file():
            raise UserError(f"{d} is not a run directory (no config.json)")
    check_out(Path(out), overwrite)
    members = [
        Predictor.load(
            d, nodata=dem_nodata, tta=tta, precision=precision, tta_transforms=tta_transforms
        )
        for d in dirs
    ]
    first = members[0].settings
    for d, member in zip(dirs[1:], members[1:], strict=True):
        s = member.settings
        if s.spec.to_dict() != first.spec.to_dict():
            raise UserError(
                f"ensemble members must share the input spec: {d} takes {s.modalities} "
                f"({s.spec.describe()}), {dirs[0]} takes {first.modalities} "
                f"({first.spec.describe()})"
            )
        if s.tta != first.tta:
            raise UserError(
                f"ensemble members differ in flip averaging ({dirs[0]}: "
                f"{'on' if first.tta else 'off'}, {d}: {'on' if s.tta else 'off'}): "
                "pass --tta or --no-tta"
            )
        if s.tta and s.tta_transforms != first.tta_transforms:
            raise UserError(
                f"ensemble members differ in TTA transforms ({dirs[0]}: "
                f"{first.tta_transforms}, {d}: {s.tta_transforms}): pass --tta-transforms"
            )
    if threshold is None:
        found = [m.settings.threshold for m in members]
        threshold = found[0] if len(set(found)) == 1 else sum(found) / len(found)
    settings = first.replace(threshold=float(threshold))
    models = [m.model for m in members]
    config = read_config_json(dirs[0] / "config.json")
    config["exported_precision"] = model_precision(models[0])
    parameters = sum(int(m.count_params()) for m in models)
    # no test metrics of its own: the first member's are not the ensemble's (model_card)
    card = model_card(config, settings, run_dir=dirs[0], parameters=parameters, ensemble=True)
    card = show_members(card, [read_config_json(d / "config.json") for d in dirs])
    card["ensemble"] = {
        "rule": "mean of the members' probabilities",
        "members": [
            {
                "run_dir": str(d),
                "model": read_config_json(d / "config.json").get("model"),
                "seed": read_config_json(d / "config.json").get("seed"),
                "threshold": m.settings.threshold,
                "parameters": int(m.model.count_params()),
                "test_metrics": read_json(d / "metrics.json"),
            }
            for d, m in zip(dirs, members, strict=True)
        ],
    }
    return export_model(models, settings, out, card=card, overwrite=overwrite)


def describe(saved_model: str | Path) -> str:
    """One line per signature of a SavedModel: inputs and outputs with dtypes and shapes."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model))
    lines = []
    for name, fn in loaded.signatures.items():
        ins = ", ".join(
            f"{k}: {v.dtype.name}{v.shape.as_list()}"
            for k, v in sorted(fn.structured_input_signature[1].items())
        )
        outs = ", ".join(
            f"{k}: {v.dtype.name}{v.shape.as_list()}" for k, v in fn.structured_outputs.items()
        )
        lines.append(f"{name}({ins}) -> {outs}")
    return "\n".join(lines)
