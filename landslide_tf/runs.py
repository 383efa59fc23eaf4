"""Reading run directories written by ``landslide_tf.train``.

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
from pathlib import Path
from typing import Any

import keras

from landslide_tf.config import TrainConfig
from landslide_tf.errors import UserError

CONFIG_FILE = "config.json"
SPLITS = ("train", "val", "test")


def read_run_config(run_dir: str | Path) -> tuple[TrainConfig, dict[str, Any]]:
    """Read ``config.json`` of a run.

    Args:
        run_dir: a directory written by ``landslide_tf.train``.

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
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    return TrainConfig.from_dict(raw), raw


def load_model_file(path: str | Path) -> keras.Model:
    """Load a ``.keras`` file of this package in safe mode, uncompiled.

    Raises:
        UserError: the file is missing.
    """
    import landslide_tf.models  # noqa: F401  (registers the custom layers)

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} not found (training did not complete an epoch?)")
    return keras.models.load_model(path, compile=False, safe_mode=True)


def load_run(run_dir: str | Path, which: str = "best") -> tuple[TrainConfig, keras.Model]:
    """The config and trained model of a run.

    Args:
        run_dir: a directory written by ``landslide_tf.train``.
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
    """Keyword arguments for ``landslide_tf.data.make_dataset`` matching a run's preprocessing.

    Args:
        config: the run config.
        raw: the full ``config.json`` dict (for ``dem_stats``), if available.
    """
    if config.data_format in ("l4s", "folder"):  # issue 13: multi-band runs
        raw = raw or {}
        return {
            "image_size": config.image_size,
            "data_format": config.data_format,
            "band_indices": list(raw.get("band_indices") or []),
            "band_norm": raw.get("band_stats"),
        }
    stats = (raw or {}).get("dem_stats")
    return {
        "image_size": config.image_size,
        "modalities": config.modalities,
        "dem_norm": config.dem_norm,
        "dem_stats": tuple(stats) if stats is not None else None,
        "derived": tuple(config.derived),
    }


def run_splits(
    config: TrainConfig, run_dir: str | Path, data: str | Path | None = None
) -> dict[str, list]:
    """The train/val/test samples of a run (from its split files).

    Args:
        config: the run config.
        run_dir: the run directory (split files live in ``config.split_dir`` or here).
        data: dataset folder or zip overriding ``config.data`` (e.g. the data moved).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` of ``landslide_tf.data.Sample``.
    """
    from landslide_tf import data as ldata

    root = data if data is not None else config.data
    if root is None:
        raise UserError("the run's config.json names no dataset: pass --data DIR")
    if not Path(root).exists():
        raise UserError(f"dataset {root} does not exist")
    root = ldata.open_dataset(root)
    if config.data_format in ("l4s", "folder"):  # issue 13: multi-band runs
        from landslide_tf.data.formats import run_band_splits

        return run_band_splits(config, root, config.split_dir or run_dir)
    samples = ldata.find_samples(root, modalities=config.modalities, negatives=config.negatives)
    out_dir = config.split_dir or run_dir
    return ldata.make_split(samples, seed=config.seed, out_dir=out_dir)
