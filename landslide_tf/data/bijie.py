"""Reading the Bijie landslide dataset layout: finding the tiles and loading one of them.

The official layout (Ji et al. 2020), matched by file stem::

    <root>/landslide/image/*.png       RGB tiles, sizes vary
    <root>/landslide/dem/*.png         DEM as a grayscale PNG (dark = low), same stem
    <root>/landslide/mask/*.png        0 = background, 255 = landslide
    <root>/non-landslide/image/*.png   negatives, no mask (= all background)
    <root>/non-landslide/dem/*.png

``find_samples`` lists the tiles as ``Sample`` records and ``read_sample_arrays`` reads one
tile's raw arrays (``landslide_tf.data.pipeline.load_tile`` turns them into network input).
Zip files are opened by ``data/archive.py`` (``open_dataset``, ``safe_extract``) and PNG files
read by ``data/readers.py`` (``read_rgb``, ``read_dem``, ``read_mask``). Every reader validates its file and raises
``DataError`` with one line naming the file and what was expected. Recoverable oddities (RGBA
image, mask values other than 0/255, a DEM or mask of another size than the image) are fixed
and logged as warnings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from landslide_tf.data.archive import (
    LANDSLIDE,
    expected_layout,
    find_layout_root,
    missing_folder,
    open_dataset,
)
from landslide_tf.data.readers import decode_dem, decode_mask, decode_rgb, tile_size_problem
from landslide_tf.data.sample import Sample
from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

NON_LANDSLIDE = "non-landslide"
MODALITIES = ("rgb+dem", "rgb", "dem")
#: Files that operating systems drop into folders; never reported as stray files.
IGNORED_FILES = {"thumbs.db", "desktop.ini"}


# --------------------------------------------------------------------------------------------
# layout


def _check_modalities(modalities: str) -> None:
    if modalities not in MODALITIES:
        raise DataError(
            f"unknown modalities {modalities!r}; expected one of {', '.join(MODALITIES)}"
        )


def _png_files(folder: Path) -> dict[str, Path]:
    """Stem -> path of the PNG files in ``folder``; other visible files raise ``DataError``."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name.lower() in IGNORED_FILES or path.is_dir():
            continue
        if path.suffix.lower() != ".png":
            raise DataError(f"{path}: not a .png file; expected only PNG tiles in {folder}")
        if path.stem in files:
            raise DataError(stem_clash(files[path.stem], path))
        files[path.stem] = path
    return files


def stem_clash(first: Path, second: Path) -> str:
    """One line for two tiles whose names differ only in the extension's case."""
    return (
        f"{second}: same tile name as {first.name} (the extension differs only in case); "
        "remove or rename one of them"
    )


def parse_negatives(negatives: str | float | bool | None) -> float | None:
    """``"off"`` -> None (no negatives), ``"on"`` -> inf (all), a ratio -> that float."""
    if negatives is None or negatives is False:
        return None
    if negatives is True:
        return float("inf")
    text = str(negatives).strip().lower()
    if text in ("off", "no", "none", "false", "0", "0.0"):
        return None
    if text in ("on", "all", "yes", "true"):
        return float("inf")
    try:
        ratio = float(text)
    except ValueError:
        ratio = -1.0
    if not ratio > 0 or ratio != ratio:
        raise DataError(
            f"negatives={negatives!r}; expected 'off', 'on' or a positive ratio such as '0.5' "
            "(negative tiles per landslide tile)"
        )
    return ratio


def _layout_error(root: Path, missing: Path) -> DataError:
    if root.is_dir() and not (root / LANDSLIDE).is_dir():
        found = find_layout_root(root)
        if found is not None and found != root:
            return DataError(
                f"{missing}: folder not found (did you mean {found}?); {expected_layout(root)}"
            )
    return DataError(missing_folder(root, missing))


def _folder_samples(root: Path, group: str, modalities: str, with_mask: bool) -> list[Sample]:
    base = root / group
    need_image = modalities in ("rgb+dem", "rgb")
    need_dem = modalities in ("rgb+dem", "dem")
    folders = {"image": base / "image"}
    if need_dem:
        folders["dem"] = base / "dem"
    if with_mask:
        folders["mask"] = base / "mask"
    for folder in folders.values():
        if not folder.is_dir():
            if folder.name == "image" and not need_image:
                continue
            raise _layout_error(root, folder)
    files = {name: _png_files(folder) for name, folder in folders.items() if folder.is_dir()}
    primary = "image" if need_image else "dem"
    samples = []
    for stem, path in files[primary].items():
        image = files.get("image", {}).get(stem, base / "image" / f"{stem}.png")
        dem = None
        if need_dem:
            dem = files["dem"].get(stem)
            if dem is None:
                raise DataError(
                    f"{path}: no DEM for {stem}; expected {base / 'dem' / (stem + '.png')}"
                )
        mask = None
        if with_mask:
            mask = files["mask"].get(stem)
            if mask is None:
                raise DataError(
                    f"{path}: no mask for {stem}; expected {base / 'mask' / (stem + '.png')}"
                )
        samples.append(Sample(stem, image, dem, mask, landslide=with_mask))
    return samples


def find_samples(
    root: str | Path,
    modalities: str = "rgb+dem",
    negatives: str | float = "off",
) -> list[Sample]:
    """List the tiles of a Bijie-layout dataset.

    Args:
        root: the dataset folder or its ``.zip`` (see ``open_dataset``).
        modalities: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``; decides which files must exist.
        negatives: ``"off"`` (landslide tiles only, as in the paper), ``"on"`` (all
            ``non-landslide/`` tiles) or a ratio (negatives per landslide tile, e.g. ``"0.5"``;
            a fixed, seeded choice among the negatives).

    Returns:
        Samples sorted by stem (landslide before non-landslide for equal stems).

    Raises:
        DataError: missing layout (the message shows the expected one), a tile without its
            DEM or mask, a non-PNG file, or no usable tile.
    """
    _check_modalities(modalities)
    ratio = parse_negatives(negatives)
    root = open_dataset(root)
    samples = _folder_samples(root, LANDSLIDE, modalities, with_mask=True)
    if ratio is not None:
        negs = _folder_samples(root, NON_LANDSLIDE, modalities, with_mask=False)
        if ratio != float("inf"):
            count = min(len(negs), int(round(ratio * len(samples))))
            order = np.random.default_rng(0).permutation(len(negs))[:count]
            negs = [negs[i] for i in sorted(order)]
        samples += negs
    if not samples:
        raise DataError(f"{root}: no usable tile (no PNG in landslide/); {expected_layout(root)}")
    samples.sort(key=lambda s: (s.stem, not s.landslide))
    logger.info(
        "%s: %d landslide and %d non-landslide tiles%s",
        root,
        sum(s.landslide for s in samples),
        sum(not s.landslide for s in samples),
        " (negatives are off by default, as in the paper; --negatives on uses them)"
        if ratio is None
        else "",
    )
    return samples


# --------------------------------------------------------------------------------------------
# one tile -> network input


def read_sample_arrays(
    sample: Sample, modalities: str = "rgb+dem"
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, list[str]]:
    """Raw arrays of a tile: ``(rgb or None, dem or None, mask or None, notes)``.

    Shape mismatches between image, DEM and mask are reported in ``notes``; the
    preprocessing resamples each onto the same grid.
    """
    _check_modalities(modalities)
    notes: list[str] = []
    rgb = dem = mask = None
    if modalities in ("rgb+dem", "rgb"):
        rgb, more = decode_rgb(Path(sample.image))
        notes += more
    if modalities in ("rgb+dem", "dem"):
        if sample.dem is None:
            raise DataError(
                f"{sample.image}: no DEM for {sample.stem}; expected dem/{sample.stem}.png"
            )
        dem, more = decode_dem(Path(sample.dem))
        notes += more
    if sample.mask is not None:
        mask, more = decode_mask(Path(sample.mask))
        notes += more
    for path, array in ((sample.image, rgb), (sample.dem, dem), (sample.mask, mask)):
        problem = None if array is None else tile_size_problem(path, array)
        if problem:
            raise DataError(problem)
    ref_name, ref = ("image", rgb) if rgb is not None else ("DEM", dem)
    ref_shape = ref.shape[:2]
    for name, path, array in (("DEM", sample.dem, dem), ("mask", sample.mask, mask)):
        if array is not None and array is not ref and array.shape[:2] != ref_shape:
            notes.append(
                f"{path}: {name} is {array.shape[1]}x{array.shape[0]} px but the {ref_name} is "
                f"{ref_shape[1]}x{ref_shape[0]} px; resampled onto the {ref_name} grid"
            )
    return rgb, dem, mask, notes
