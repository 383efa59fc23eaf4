"""The dataset format registry: ``bijie`` (default), ``l4s`` and ``folder``.

``FORMATS`` maps each name to a ``DataFormat``: how to recognise its layout (``detect``),
list its tiles as ``Sample`` records (``find``), name its bands (``band_names``), read one
tile's raw arrays (``read``) and plan its train/val/test split (``plan``). Everything else
(the tf.data pipeline, the training statistics, ``data check``) goes through these five, so
the formats differ only here.

``--data-format`` picks one; without it ``detect_format`` recognises the layout (l4s:
``TrainData/img/*.h5``; folder: ``images/`` + ``masks/``; bijie: ``landslide/``). Bijie is
RGB + DEM PNGs as in the paper (``data/bijie.py``); ``l4s`` (``data/l4s.py``) and ``folder``
(``data/folder.py``) hand float32 bands in the user's units, chosen with ``--bands`` and
normalised per band (``data/bands.py``). The split of every format comes from
``plan_splits``: ``train`` writes it next to the run and ``data check`` reports the same one.
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
from landslide_tf.data.archive import LANDSLIDE
from landslide_tf.data.bands import L4S_BANDS, resolve_bands
from landslide_tf.data.bijie import find_samples, read_sample_arrays
from landslide_tf.data.nodata import apply_dem_nodata, check_dem_nodata
from landslide_tf.data.sample import Sample
from landslide_tf.data.spec import InputSpec, bijie_spec, multiband_spec
from landslide_tf.data.split import (
    SPLITS,
    given_split_files,
    make_split,
    read_split,
    spatial_split,
    write_split,
)
from landslide_tf.errors import DataError, UserError

logger = logging.getLogger(__name__)

#: ``(image or None, dem or None, mask or None, notes)`` of one tile, raw.
RawTile = tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, list[str]]
#: The split seed ``train`` uses by default (``TrainConfig.seed``).
DEFAULT_SEED = 42


@dataclasses.dataclass(frozen=True)
class DataFormat:
    """One registered dataset format.

    Attributes:
        name: the ``--data-format`` name.
        description: the layout, one line (for error messages).
        detect: ``root -> bool``, whether a folder has this layout.
        find: ``(root, modalities, negatives) -> samples`` (the last two matter for bijie).
        band_names: ``root -> every band name``, in file order.
        read: ``(sample, spec) -> RawTile``: the raw arrays ``preprocess`` takes.
        plan: ``(samples, seed) -> {"train", "val", "test"}`` when no split files exist.
        multiband: whether the image input is float32 bands chosen with ``--bands``.
    """

    name: str
    description: str
    detect: Callable[[Path], bool]
    find: Callable[[Path, str, str], list[Sample]]
    band_names: Callable[[Path], list[str]]
    read: Callable[[Sample, InputSpec], RawTile]
    plan: Callable[[list[Sample], int], dict[str, list[Sample]]]
    multiband: bool


# ------------------------------------------------------------------------------------- bijie


def _detect_bijie(root: Path) -> bool:
    return (root / LANDSLIDE).is_dir()


def _find_bijie(root: Path, modalities: str, negatives: str) -> list[Sample]:
    return find_samples(root, modalities=modalities, negatives=negatives)


def _read_bijie(sample: Sample, spec: InputSpec) -> RawTile:
    return read_sample_arrays(sample, spec.modalities)


def _plan_generated(samples: list[Sample], seed: int) -> dict[str, list[Sample]]:
    return make_split(samples, seed=seed)


def _plan_folder(samples: list[Sample], seed: int) -> dict[str, list[Sample]]:
    """Georeferenced chips (one CRS) get a blocked spatial split (``spatial_split``), so
    overlapping windows never sit in different splits; other folders the seeded random split.

    Raises:
        DataError: overlapping chips that cover too small an area for a spatial split.
    """
    footprints = [folder_format.footprint(s.image) for s in samples]
    crs = {f[0] for f in footprints if f is not None}
    if samples and None not in footprints and len(crs) == 1:
        split = spatial_split(samples, [f[1] for f in footprints], seed=seed)
        if split is not None:
            return split
        logger.warning(
            "folder: the %d georeferenced chips cover too small an area for a spatial split; "
            "none of them overlap another, so a seeded random split is used (neighbouring "
            "chips may sit in different splits)",
            len(samples),
        )
    return make_split(samples, seed=seed)


# -------------------------------------------------------------------------------- multi-band


def read_bands(
    sample: Sample, data_format: str, indices: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw chosen bands ``(H, W, C)`` float32 (user units, NaN = nodata) and mask ``(H, W)``.

    Args:
        sample: an ``l4s`` or ``folder`` tile.
        data_format: ``l4s`` or ``folder``.
        indices: 0-based positions in the format's full band list; None keeps every band.
    """
    if data_format == "l4s":
        image = l4s_format.read_l4s_image(sample.image)
        mask = l4s_format.read_l4s_mask(sample.mask) if sample.mask is not None else None
    else:
        image = folder_format.read_folder_image(sample)
        mask = folder_format.read_folder_mask(sample.mask) if sample.mask is not None else None
    if indices:
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


def _reader(data_format: str) -> Callable[[Sample, InputSpec], RawTile]:
    def read(sample: Sample, spec: InputSpec) -> RawTile:
        image, mask = read_bands(sample, data_format, spec.source_indices or None)
        if image.shape[-1] != spec.image_channels:
            raise DataError(
                f"{sample.image}: {image.shape[-1]} band(s) read, but the input has "
                f"{spec.image_channels} ({', '.join(b.name for b in spec.image_bands)})"
            )
        return image, None, mask, []

    return read


def _find_l4s(root: Path, modalities: str, negatives: str) -> list[Sample]:
    return l4s_format.find_l4s_samples(root)


def _find_folder(root: Path, modalities: str, negatives: str) -> list[Sample]:
    return folder_format.find_folder_samples(root)[0]


def _plan_l4s(samples: list[Sample], seed: int) -> dict[str, list[Sample]]:
    """The dataset's own splits; a split without labels is replaced.

    No labelled ValidData: 20 % of TrainData (seeded) becomes val; no labelled TestData: the
    labelled ValidData becomes test and val comes from TrainData; neither: a 64/16/20 split of
    TrainData.
    """
    given = {n: [s for s in samples if s.split == n] for n in SPLITS}
    train = given["train"]
    if given["val"] and given["test"]:
        return given
    if given["val"] or given["test"]:
        held = given["test"] or given["val"]
        carved = make_split(train, seed=seed, fractions=(0.8, 0.2, 0.0))
        logger.warning(
            "l4s: no labelled %s split; test = the labelled %s tiles, val = 20 %% of TrainData",
            "TestData" if not given["test"] else "ValidData",
            "TestData" if given["test"] else "ValidData",
        )
        return {"train": carved["train"], "val": carved["val"], "test": held}
    logger.warning("l4s: only TrainData is labelled: a seeded 64/16/20 split of it is used")
    return make_split(train, seed=seed)


FORMATS: dict[str, DataFormat] = {
    "bijie": DataFormat(
        name="bijie",
        description="landslide/{image,dem,mask}/*.png (+ non-landslide/): RGB + DEM tiles",
        detect=_detect_bijie,
        find=_find_bijie,
        band_names=lambda root: ["red", "green", "blue", "dem"],
        read=_read_bijie,
        plan=_plan_generated,
        multiband=False,
    ),
    "l4s": DataFormat(
        name="l4s",
        description="TrainData/img/image_N.h5 + TrainData/mask/mask_N.h5 (+ ValidData/, "
        "TestData/): Landslide4Sense, 14 bands",
        detect=l4s_format.detect,
        find=_find_l4s,
        band_names=lambda root: list(L4S_BANDS),
        read=_reader("l4s"),
        plan=_plan_l4s,
        multiband=True,
    ),
    "folder": DataFormat(
        name="folder",
        description="images/ + masks/ (+ dem/) GeoTIFF or PNG with the same stems, any band count",
        detect=folder_format.detect,
        find=_find_folder,
        band_names=lambda root: folder_format.find_folder_samples(root)[1],
        read=_reader("folder"),
        plan=_plan_folder,
        multiband=True,
    ),
}
#: Detection order: the most specific layout first.
DETECT_ORDER = ("l4s", "folder", "bijie")


def check_format(name: str | None) -> DataFormat:
    """The registered format ``name`` (None = bijie) or a ``UserError`` listing the names."""
    name = name or "bijie"
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
    partial = partial_layout_problem(root)
    if partial:
        raise DataError(partial)
    layouts = "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values())
    raise DataError(f"{root}: no known dataset layout; expected one of {layouts}")


def partial_layout_problem(root: str | Path) -> str | None:
    """What is missing from a folder that has part of the ``folder`` layout (None: not that).

    ``images/`` (+ ``dem/``) without ``masks/`` is the folder format missing its masks, not a
    Bijie dataset: say so rather than list every layout.
    """
    root = Path(root)
    has = {
        n
        for n in (folder_format.IMAGES, folder_format.MASKS, folder_format.DEM)
        if (root / n).is_dir()
    }
    if folder_format.IMAGES in has and folder_format.MASKS not in has:
        return (
            f"{root / folder_format.MASKS}: folder not found; the folder format needs "
            f"{', '.join(sorted(f'{n}/' for n in has))} beside masks/<stem>.tif (or .png) "
            "with the same stems (> 0 = landslide)"
        )
    if folder_format.MASKS in has and folder_format.IMAGES not in has:
        return (
            f"{root / folder_format.IMAGES}: folder not found; the folder format needs "
            "images/<stem>.tif (or .png) beside masks/ with the same stems"
        )
    return None


def find_format_samples(
    data_format: str | None,
    root: str | Path,
    *,
    modalities: str = "rgb+dem",
    negatives: str = "off",
) -> list[Sample]:
    """The tiles of a dataset of any format (``modalities``/``negatives``: bijie only)."""
    return check_format(data_format).find(Path(root), modalities, negatives)


def available_bands(data_format: str | None, root: str | Path) -> list[str]:
    """Every band name of a dataset (``l4s``: fixed; ``folder``: from its first image)."""
    return check_format(data_format).band_names(Path(root))


def read_tile(sample: Sample, spec: InputSpec, data_format: str | None = None) -> RawTile:
    """Raw arrays of one tile, as ``preprocess`` takes them: ``(image, dem, mask, notes)``.

    The DEM nodata rule is applied here, for every format and every caller (train,
    evaluate, explain): ``spec.nodata`` becomes NaN in a multi-band ``dem`` band; without
    it, a DEM with a suspicious value (``nodata.check_dem_nodata``) stops in one line.

    Args:
        sample: the tile.
        spec: the run's input (which bands; the format defaults to ``spec.data_format``).
        data_format: overrides ``spec.data_format``.
    """
    fmt = check_format(data_format or spec.data_format)
    image, dem, mask, notes = fmt.read(sample, spec)
    if fmt.multiband and image is not None:
        names = [b.name for b in spec.image_bands]
        image = apply_dem_nodata(image, names, spec.nodata)
        if "dem" in names:
            check_dem_nodata(
                image[..., names.index("dem")], sample.dem or sample.image, spec.nodata
            )
    elif dem is not None:
        check_dem_nodata(dem, sample.dem, spec.nodata)
    return image, dem, mask, notes


def default_spec(data_format: str | None, root: str | Path, size: int = 128) -> InputSpec:
    """Every band of a dataset at ``size`` px, with identity statistics for multi-band data.

    Bijie: RGB + DEM as in the paper. ``l4s``/``folder``: every band, ``standard`` with
    ``(0, 1)`` until ``training_statistics`` gives the training split's values.
    """
    fmt = check_format(data_format)
    if not fmt.multiband:
        return bijie_spec(size)
    names = available_bands(fmt.name, root)
    return multiband_spec(
        names,
        "standard",
        [(0.0, 1.0)] * len(names),
        size=size,
        data_format=fmt.name,
        source_bands=names,
        source_indices=range(len(names)),
    )


def plan_splits(
    data_format: str | None,
    samples: Sequence[Sample],
    seed: int = DEFAULT_SEED,
    out_dir: str | Path | None = None,
    *,
    write: bool = True,
) -> dict[str, list[Sample]]:
    """The train/val/test split of a dataset: the one ``train`` uses and ``data check`` shows.

    Split files in ``out_dir`` (``train.txt`` + ``val.txt`` [+ ``test.txt``]) are reused.
    Otherwise the format plans it: ``bijie`` gets the seeded, stratified 64/16/20 split of
    ``make_split``, ``folder`` a blocked spatial split of georeferenced chips (else that one);
    ``l4s`` its own splits (see ``_plan_l4s``). The plan is written to ``out_dir`` when given,
    unless ``write=False`` (``data check``; ``train`` writes it itself once its checks
    passed).

    Raises:
        DataError: bad split files; overlapping chips too few for a spatial split; a plan to
            be written with an empty split (nothing is written).
    """
    samples = list(samples)
    if out_dir is not None and given_split_files(out_dir) is not None:
        return read_split(out_dir, samples)
    split = check_format(data_format).plan(samples, seed)
    if out_dir is not None and write:
        write_split(out_dir, split)
        logger.info("wrote the split to %s", out_dir)
    return split


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
    if not fmt.detect(Path(root)):
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
    if config.derived:  # config.json records only what is applied (issue 22)
        logger.info(
            "%s data: --derived %s is not applied (derived channels come from a Bijie DEM "
            "file; a multi-band dataset carries its bands: choose them with --bands)",
            name,
            " ".join(config.derived),
        )
    return dataclasses.replace(config, data_format=name, bands=names, derived=[])


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
