"""Reading run directories written by ``landslide_tf.training.train``.

A run directory holds ``config.json``: the resolved ``TrainConfig`` fields (loss filled in,
``data`` and ``run_dir`` as absolute paths, ``loss_kwargs`` including WCE class weights derived
from the training split) plus a few derived entries that are not config fields:

- ``dem_stats``: ``[mean, std]`` of the training split's raw DEM values (``null`` without DEM);
- ``landslide_fraction``: share of landslide pixels in the training split;
- ``auto_loss_kwargs``: names of ``loss_kwargs`` entries filled in automatically;
- ``channels``: number of input channels.

``load_run(run_dir)`` returns that config and ``best.keras`` loaded in Keras safe mode with no
``custom_objects`` (the package's custom layers are registered on import).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landslide_tf.errors import UserError
from landslide_tf.metrics.thresholds import read_threshold
from landslide_tf.training.config import TrainConfig
from landslide_tf.training.runstate import STATE_FILE

if TYPE_CHECKING:
    import keras

CONFIG_FILE = "config.json"
SPLITS = ("train", "val", "test")
#: ``--split all``: every tile of the dataset, whatever the lists say.
ALL = "all"
#: What ``evaluate --split`` and ``gradcam --split`` take.
EVAL_SPLITS = (*SPLITS, ALL)


def run_threshold(run_dir: str | Path, config: TrainConfig) -> float:
    """The decision threshold of a run: the tuned one if stored, else ``config.threshold``.

    Raises:
        DataError: ``threshold.json`` is damaged (``metrics.thresholds.read_threshold``).
    """
    tuned = read_threshold(run_dir)
    return float(config.threshold) if tuned is None else tuned


def read_run_config(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """Read ``config.json`` of a run.

    Args:
        run_dir: a directory written by ``landslide_tf.training.train``.

    Returns:
        ``(config, raw)``: the ``TrainConfig`` and the full JSON dict (with ``dem_stats`` etc.).

    Raises:
        UserError: the directory or its ``config.json`` is missing or unreadable.
    """
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise UserError(f"{run_dir} is not a training run: no {CONFIG_FILE} in it")
    raw = read_config_json(path)
    return TrainConfig.from_dict(raw), raw


def read_config_json(path: str | Path) -> dict[str, Any]:
    """A run's ``config.json`` as a dict whose known fields have the right types.

    Raises:
        UserError: empty, truncated or not JSON, or a field of the wrong type; names the file.
    """
    from landslide_tf.training.config import config_type_problem

    path = Path(path)
    hint = "restore it, or retrain the run with --force"
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"{exc.msg}, line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else exc
        raise UserError(f"{path} is damaged: not valid JSON ({where}); {hint}") from None
    problem = config_type_problem(raw)
    if problem:
        raise UserError(f"{path} is damaged: {problem}; {hint}")
    return raw


def load_model_file(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file of this package in safe mode, uncompiled.

    Raises:
        UserError: the file is missing.
    """
    import keras

    import landslide_tf.losses  # noqa: F401  (registers the custom losses)
    import landslide_tf.models  # noqa: F401  (registers the custom layers)

    path = Path(path)
    if not path.is_file():
        done = 0
        if (path.parent / STATE_FILE).is_file():
            try:
                done = int(json.loads((path.parent / STATE_FILE).read_text())["epochs_done"])
            except (OSError, ValueError, KeyError, TypeError):
                done = 0
        if done:
            raise UserError(
                f"model file {path} is missing although {path.parent / STATE_FILE} records "
                f"{done} finished epoch(s): restore it, or retrain with --force"
            )
        raise UserError(f"model file {path} not found: the run has no finished epoch yet")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001  (keras raises many types for damaged files)
        if not zipfile.is_zipfile(path):  # keras says "File not found" for these
            reason = "empty, truncated or not a zip archive"
        else:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(
            f"{path} is damaged or not a landslide_tf Keras model ({reason}); "
            "restore it, or retrain the run with --force"
        ) from None


def load_run(run_dir: str | Path, which: str = "best") -> tuple[TrainConfig, keras.Model]:
    """The config and trained model of a run.

    Args:
        run_dir: a directory written by ``landslide_tf.training.train``.
        which: ``"best"`` (``best.keras``, highest validation mIoU) or ``"last"``.

    Returns:
        ``(config, model)``; the model maps ``(N, H, W, C)`` inputs to ``(N, H, W, 1)``
        landslide probabilities.
    """
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    config, _ = read_run_config(run_dir)
    return config, load_model_file(Path(run_dir) / f"{which}.keras")


def dataset_options(config: TrainConfig, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``landslide_tf.data.pipeline.make_dataset`` (and ``load_tile``)
    matching a run's preprocessing: ``{"spec": InputSpec, "data_format": name}``.

    Args:
        config: the run config (its fields win over ``raw``, e.g. an overridden DEM nodata).
        raw: the full ``config.json`` dict (for ``dem_stats``, ``band_stats``), if available.
    """
    from landslide_tf.data.spec import InputSpec

    spec = InputSpec.from_config({**(raw or {}), **config.to_dict()})
    if config.dem_nodata is not None and spec.nodata != config.dem_nodata:
        spec = spec.replace(nodata=float(config.dem_nodata))  # e.g. evaluate --dem-nodata
    return {"spec": spec, "data_format": config.data_format or "bijie"}


def run_samples(config: TrainConfig, data: str | Path | None = None) -> list:
    """Every tile of the run's dataset (or of ``data``), read as the run reads its data.

    Raises:
        UserError: no dataset named, or it does not exist.
    """
    from landslide_tf import data as ldata

    root = data if data is not None else config.data
    if root is None:
        raise UserError("the run's config.json names no dataset: pass --data DIR")
    if not Path(root).exists():
        raise UserError(f"dataset {root} does not exist")
    root = ldata.open_dataset(root)
    return ldata.find_format_samples(
        config.data_format, root, modalities=config.modalities, negatives=config.negatives
    )


def run_splits(
    config: TrainConfig,
    run_dir: str | Path,
    data: str | Path | None = None,
    split_dir: str | Path | None = None,
) -> dict[str, list]:
    """The train/val/test samples of a run (from its split files).

    Args:
        config: the run config.
        run_dir: the run directory (split files live in ``config.split_dir`` or here).
        data: dataset folder or zip overriding ``config.data`` (e.g. the data moved).
        split_dir: the lists of ``data`` (another dataset's ``train.txt`` + ``val.txt`` [+
            ``test.txt``]), taken as they are instead of the run's.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` of ``landslide_tf.data.Sample``;
        for a ``--select-from-train`` run on its own lists, val is the selection and test
        the given val (``landslide_tf.training.selection``).

    Raises:
        UserError: no dataset, or ``split_dir`` without lists.
        OtherTilesListed: the lists name tiles that ``data`` does not have.
    """
    from landslide_tf import data as ldata
    from landslide_tf.data.split import given_split_files

    samples = run_samples(config, data)
    if split_dir is not None:
        if given_split_files(split_dir) is None:
            raise UserError(f"--split-dir {split_dir} has no train.txt and val.txt")
        return ldata.read_split(split_dir, samples)
    from landslide_tf.training.selection import apply_selection

    splits = ldata.plan_splits(
        config.data_format, samples, config.seed, config.split_dir or run_dir
    )
    return apply_selection(config, splits)  # issue 20: the same carve as training


def scored_splits(
    config: TrainConfig,
    run_dir: str | Path,
    data: str | Path | None,
    split: str,
    split_dir: str | Path | None = None,
) -> dict[str, list]:
    """The tiles to score or explain: the run's split lists, ``split_dir``'s, or every tile
    (``split="all"``: ``{"all": [...]}``).

    Raises:
        UserError: the run's lists name tiles that ``data`` lacks (another dataset), saying
            how to score it.
    """
    from landslide_tf.data.split import OtherTilesListed, shown_stems

    if split == ALL:
        return {ALL: run_samples(config, data)}
    try:
        return run_splits(config, run_dir, data, split_dir)
    except OtherTilesListed as exc:
        if data is None or split_dir is not None:
            raise
        raise UserError(
            f"{exc.path}: {len(exc.unknown)} stem(s) not in {data} "
            f"({shown_stems(exc.unknown)}): the run's split lists are for the data it trained "
            "on; score another dataset on its own lists with --split-dir DIR, or every tile "
            "with --split all"
        ) from None
