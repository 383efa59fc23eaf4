"""The dataset format registry: ``bijie`` (default), ``l4s`` and ``folder``.

``--data-format`` picks one; without it ``detect_format`` recognises the layout (l4s:
``TrainData/img/*.h5``; folder: ``images/`` + ``masks/``; bijie: ``landslide/``).
``bijie`` keeps its own reader and pipeline (``data/bijie.py``, RGB + DEM as in the paper);
``l4s`` (``data/l4s.py``) and ``folder`` (``data/folder.py``) yield ``BandSample`` tiles whose
bands are chosen with ``--bands`` and normalised per band (``data/bands.py``).

Runs store ``data_format``, ``bands`` (resolved names) and, in ``config.json``,
``band_indices`` (0-based positions in the format's full band list) and ``band_stats``
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.data import folder as folder_format
from landslide_tf.data import l4s as l4s_format
from landslide_tf.data.bands import L4S_BANDS, BandSample, band_indices, resolve_bands
from landslide_tf.errors import DataError, UserError

logger = logging.getLogger(__name__)


def _detect_bijie(root: Path) -> bool:
    from landslide_tf.data.archive import LANDSLIDE

    return (root / LANDSLIDE).is_dir()


@dataclasses.dataclass(frozen=True)
class DataFormat:
    """One registered dataset format."""

    name: str
    description: str
    detect: Callable[[Path], bool]
    multiband: bool


FORMATS: dict[str, DataFormat] = {
    "bijie": DataFormat(
        "bijie",
        "landslide/{image,dem,mask}/*.png (+ non-landslide/): RGB + DEM tiles",
        _detect_bijie,
        False,
    ),
    "l4s": DataFormat(
        "l4s",
        "TrainData/img/image_N.h5 + TrainData/mask/mask_N.h5 (+ ValidData/, TestData/): "
        "Landslide4Sense, 14 bands",
        l4s_format.detect,
        True,
    ),
    "folder": DataFormat(
        "folder",
        "images/ + masks/ (+ dem/) GeoTIFF or PNG with the same stems, any band count",
        folder_format.detect,
        True,
    ),
}
#: Detection order: the most specific layout first.
DETECT_ORDER = ("l4s", "folder", "bijie")


def check_format(name: str) -> DataFormat:
    """The registered format ``name`` or a ``UserError`` listing the valid names."""
    if name not in FORMATS:
        raise UserError(f"unknown --data-format {name!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[name]


def detect_format(root: str | Path) -> str:
    """The name of the format whose layout ``root`` has.

    Raises:
        DataError: no known layout (the message lists the three).
    """
    root = Path(root)
    for name in DETECT_ORDER:
        if FORMATS[name].detect(root):
            return name
    layouts = "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
    raise DataError(f"{root}: no known dataset layout; expected one of {layouts}")


def is_multiband(data_format: str | None) -> bool:
    """Whether runs of this format use ``--bands`` (``l4s``, ``folder``)."""
    return data_format is not None and FORMATS[data_format].multiband


def find_band_samples(data_format: str, root: str | Path) -> tuple[list[BandSample], list[str]]:
    """``(samples, every band name)`` of an ``l4s`` or ``folder`` dataset."""
    if data_format == "l4s":
        return l4s_format.find_l4s_samples(root), list(L4S_BANDS)
    if data_format == "folder":
        return folder_format.find_folder_samples(root)
    raise ValueError(f"{data_format} is not a multi-band format")


def available_bands(data_format: str, root: str | Path) -> list[str]:
    """Every band name of a dataset (``l4s``: fixed; ``folder``: from its first image)."""
    if data_format == "l4s":
        return list(L4S_BANDS)
    return find_band_samples(data_format, root)[1]


def load_band_sample(
    sample: BandSample, data_format: str, indices: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw chosen bands ``(H, W, C)`` float32 (user units, NaN = nodata) and mask ``(H, W)``."""
    if data_format == "l4s":
        image = l4s_format.read_l4s_image(sample.image)
        mask = l4s_format.read_l4s_mask(sample.mask) if sample.mask is not None else None
    else:
        image = folder_format.read_folder_image(sample)
        mask = folder_format.read_folder_mask(sample.mask) if sample.mask is not None else None
    if indices is not None:
        if max(indices) >= image.shape[-1]:
            raise DataError(
                f"{sample.image}: {image.shape[-1]} band(s), but the run uses band "
                f"{max(indices) + 1}"
            )
        image = image[..., list(indices)]
    if mask is not None and mask.shape != image.shape[:2]:
        raise DataError(
            f"{sample.mask}: mask is {mask.shape[1]}x{mask.shape[0]} px but its image is "
            f"{image.shape[1]}x{image.shape[0]} px"
        )
    return image, mask


def resolve_data_config(config: Any, root: str | Path) -> Any:
    """Fill in ``data_format`` (detected when None) and the resolved ``bands`` of a config.

    Bijie keeps its modalities: ``--bands rgb``/``rgb+dem``/``dem`` set ``modalities``; its
    ``data_format`` stays None (= bijie), as in the configs of runs made before the formats.

    Raises:
        UserError: unknown format, a layout that is not there, an unknown band.
    """
    from landslide_tf.data.bands import BAND_NORMS

    name = config.data_format or detect_format(root)
    fmt = check_format(name)
    if config.band_norm not in BAND_NORMS:
        raise UserError(f"unknown --band-norm {config.band_norm!r}; expected {BAND_NORMS}")
    if fmt.detect is not None and not fmt.detect(Path(root)):
        raise UserError(
            f"{root} does not have the {name} layout ({fmt.description}); "
            f"it looks like {detect_format(root)}: drop --data-format or fix it"
        )
    if not fmt.multiband:
        bands = config.bands
        modalities = config.modalities
        if bands:
            spec = ",".join(bands).lower()
            if spec not in ("rgb", "rgb+dem", "dem"):
                raise UserError(
                    f"--bands {','.join(bands)}: the bijie data has the band sets rgb, rgb+dem "
                    "and dem (use --modalities / --derived for more)"
                )
            modalities = spec
        # Bijie is stored as data_format None: runs made before the formats existed resume.
        return dataclasses.replace(config, data_format=None, bands=None, modalities=modalities)
    names = resolve_bands(config.bands, available_bands(name, root), name)
    return dataclasses.replace(config, data_format=name, bands=names)


def band_splits(
    data_format: str,
    samples: list[BandSample],
    seed: int,
    out_dir: str | Path,
) -> dict[str, list[BandSample]]:
    """Train/val/test of a multi-band dataset, stored as split files in ``out_dir``.

    Split files already in ``out_dir`` are reused. Otherwise ``l4s`` uses its own splits:
    a split without labels is replaced (no labelled ValidData: 20 % of TrainData, seeded,
    becomes val; no labelled TestData: the labelled ValidData becomes test and val comes from
    TrainData; neither: a 64/16/20 split of TrainData). ``folder`` gets the seeded,
    stratified 64/16/20 split of ``make_split``.
    """
    from landslide_tf.data.split import SPLITS, make_split, read_split, write_split

    out_dir = Path(out_dir)
    if all((out_dir / f"{n}.txt").is_file() for n in SPLITS):
        return read_split(out_dir, samples)
    if data_format != "l4s":
        return make_split(samples, seed=seed, out_dir=out_dir)
    given = {n: [s for s in samples if s.split == n] for n in SPLITS}
    train = given["train"]
    if given["val"] and given["test"]:
        split = given
    elif given["val"] or given["test"]:
        held = given["test"] or given["val"]
        carved = make_split(train, seed=seed, fractions=(0.8, 0.2, 0.0))
        split = {"train": carved["train"], "val": carved["val"], "test": held}
        logger.warning(
            "%s: no labelled %s split; test = the labelled %s tiles, val = 20 %% of TrainData",
            data_format,
            "TestData" if not given["test"] else "ValidData",
            "TestData" if given["test"] else "ValidData",
        )
    else:
        split = make_split(train, seed=seed)
        logger.warning("l4s: only TrainData is labelled: a seeded 64/16/20 split of it is used")
    write_split(out_dir, split)
    return split


def run_band_splits(config: Any, root: str | Path, out_dir: str | Path) -> dict[str, list]:
    """The splits of a multi-band run (samples found, splits reused or written)."""
    samples, _ = find_band_samples(config.data_format, root)
    return band_splits(config.data_format, samples, config.seed, out_dir)


def band_run_entries(config: Any, root: str | Path, train: list[BandSample]) -> dict[str, Any]:
    """The derived ``config.json`` entries of a multi-band run (training statistics)."""
    from landslide_tf.data.bands import band_statistics

    names = available_bands(config.data_format, root)
    indices = band_indices(config.bands, names)
    positive, total, sides = 0.0, 0.0, []

    def arrays():
        nonlocal positive, total
        for sample in train:
            image, mask = load_band_sample(sample, config.data_format, indices)
            sides.append(max(image.shape[:2]))
            if mask is not None:
                positive += float(mask.sum())
            total += image.shape[0] * image.shape[1]
            yield image

    norm = band_statistics(arrays(), config.band_norm, seed=config.seed)
    return {
        "band_indices": indices,
        "band_stats": norm,
        "available_bands": names,
        "landslide_fraction": positive / max(total, 1.0),
        "dem_stats": None,
        "auto_loss_kwargs": [],
        "channels": len(config.bands),
        "native_size": int(np.median(sides)),
    }


def add_data_format_args(parser: Any) -> None:
    """``--data-format``, ``--bands`` and ``--band-norm`` for a train-like CLI."""
    from landslide_tf.data.bands import BAND_NORMS, parse_bands

    parser.add_argument(
        "--data-format",
        choices=tuple(FORMATS),
        help="bijie, l4s or folder (default: detected from the layout)",
    )
    parser.add_argument(
        "--bands",
        type=parse_bands,
        help="bands by name or 1-based index, e.g. B2,B3,B4,slope,dem or 1,2,3; rgb, "
        "rgb+dem, all (default: every band)",
    )
    parser.add_argument(
        "--band-norm",
        choices=BAND_NORMS,
        help="per-band normalisation from the training split: standard (mean/std, default) "
        "or percentile (2-98 %% clip, for reflectance)",
    )
