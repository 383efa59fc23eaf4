"""Reading the Bijie landslide dataset layout: folders, zip files, validated PNG readers.

The official layout (Ji et al. 2020), matched by file stem::

    <root>/landslide/image/*.png       RGB tiles, sizes vary
    <root>/landslide/dem/*.png         DEM as a grayscale PNG (dark = low), same stem
    <root>/landslide/mask/*.png        0 = background, 255 = landslide
    <root>/non-landslide/image/*.png   negatives, no mask (= all background)
    <root>/non-landslide/dem/*.png

Every reader validates its file and raises ``DataError`` with one line naming the file and
what was expected. Recoverable oddities (RGBA image, mask values other than 0/255, a DEM or
mask of another size than the image) are fixed and logged as warnings.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

try:  # libpng/OpenCV would print their own messages for corrupt files; we raise DataError.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - very old OpenCV
    pass

LANDSLIDE = "landslide"
NON_LANDSLIDE = "non-landslide"
MODALITIES = ("rgb+dem", "rgb", "dem")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Files that operating systems drop into folders; never reported as stray files.
IGNORED_FILES = {"thumbs.db", "desktop.ini"}
#: Marker written after a zip file was fully extracted.
EXTRACTED_MARKER = ".landslide_tf_extracted"


def expected_layout(root: str | Path) -> str:
    """One-line description of the expected folder layout under ``root``."""
    return (
        f"expected {root}/landslide/{{image,dem,mask}}/*.png and optionally "
        f"{root}/non-landslide/{{image,dem}}/*.png (files matched by stem)"
    )


@dataclasses.dataclass(frozen=True)
class Sample:
    """One tile of the dataset.

    Attributes:
        stem: file stem shared by image, DEM and mask (``df001``).
        image: path of the RGB PNG (may not exist for ``modalities="dem"`` data).
        dem: path of the DEM PNG, ``None`` when the DEM is not used.
        mask: path of the mask PNG; ``None`` for negatives (all background).
        landslide: whether the tile comes from ``landslide/``.
    """

    stem: str
    image: Path
    dem: Path | None
    mask: Path | None
    landslide: bool


# --------------------------------------------------------------------------------------------
# zip files and folders


def _zip_member_problem(info: zipfile.ZipInfo, target: Path) -> str | None:
    """Why a zip entry must not be extracted into ``target`` (None when it is safe)."""
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in pure.parts:
        return "'..' path component"
    mode = (info.external_attr >> 16) & 0o170000
    if mode and stat.S_ISLNK(mode):
        return "symbolic link"
    dest = (target / pure).resolve()
    base = target.resolve()
    if dest != base and base not in dest.parents:
        return "lands outside the target folder"
    return None


def safe_extract(zip_path: str | Path, target: str | Path) -> Path:
    """Extract a zip file into ``target``, refusing any entry that would land outside it.

    Every entry is checked before anything is written, so a refused archive leaves no files.

    Args:
        zip_path: the archive.
        target: destination folder (created).

    Returns:
        ``target`` as a Path.

    Raises:
        DataError: bad zip file, or an entry with an absolute path, ``..``, or a symlink.
    """
    zip_path, target = Path(zip_path), Path(target)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{zip_path}: not a readable zip file ({exc})") from None
    with archive:
        for info in archive.infolist():
            problem = _zip_member_problem(info, target)
            if problem:
                raise DataError(
                    f"{zip_path}: refused to extract entry {info.filename!r} ({problem}); "
                    f"expected entries inside {target}"
                )
        target.mkdir(parents=True, exist_ok=True)
        try:
            archive.extractall(target)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(f"{zip_path}: extraction into {target} failed ({exc})") from None
    return target


def _find_layout_root(folder: Path, max_depth: int = 2) -> Path | None:
    """The folder (``folder`` itself or below) that holds ``landslide/``."""
    if (folder / LANDSLIDE).is_dir():
        return folder
    if max_depth == 0:
        return None
    children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for child in children:
        found = _find_layout_root(child, max_depth - 1)
        if found is not None:
            return found
    return None


def open_dataset(path: str | Path) -> Path:
    """Return the dataset folder for a folder or a downloaded ``.zip``.

    A folder is returned as is. A ``.zip`` is extracted safely once, next to it into
    ``<zip stem>/``, and the folder holding ``landslide/`` inside it is returned.

    Raises:
        DataError: the path does not exist, the zip is unreadable or unsafe, or the zip does
            not contain the layout.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; {expected_layout(path)}")
    if path.is_dir():
        return path
    if path.suffix.lower() != ".zip":
        raise DataError(f"{path}: expected a dataset folder or a .zip file")
    target = path.with_suffix("")
    if not (target / EXTRACTED_MARKER).is_file():
        logger.info("extracting %s into %s", path, target)
        tmp = target.with_name(f".{target.name}.extracting-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            safe_extract(path, tmp)
            (tmp / EXTRACTED_MARKER).write_text(f"{path.name}\n")
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        except OSError as exc:
            raise DataError(
                f"{path}: cannot extract next to the zip into {target} ({exc})"
            ) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    root = _find_layout_root(target)
    if root is None:
        raise DataError(f"{path}: the zip holds no landslide/ folder; {expected_layout('<zip>')}")
    return root


# --------------------------------------------------------------------------------------------
# PNG readers


def _png_structure_problem(data: bytes) -> str | None:
    """Walk the PNG chunks (length, type, CRC); say what is broken, or None.

    Catches truncated and bit-flipped files before libpng sees them (libpng would print its
    own messages to stderr).
    """
    pos, seen_header, seen_data = len(PNG_SIGNATURE), False, False
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        name = kind.decode("latin-1", "replace")
        if end > len(data):
            return f"truncated inside chunk {name}"
        if zlib.crc32(data[pos + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
            return f"checksum error in chunk {name}"
        if not seen_header and kind != b"IHDR":
            return "first chunk is not IHDR"
        seen_header = True
        seen_data |= kind == b"IDAT"
        if kind == b"IEND":
            return None if seen_data else "no image data"
        pos = end
    return "truncated, no IEND chunk"


def _decode_png(path: Path) -> np.ndarray:
    """Read any PNG unchanged (bit depth and channels kept), or raise ``DataError``."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise DataError(f"{path}: empty file; expected a PNG image")
    head = data[:8].tobytes()
    if head != PNG_SIGNATURE:
        kind = "a JPEG" if head[:3] == b"\xff\xd8\xff" else "not a PNG"
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            kind = "a TIFF"
        raise DataError(f"{path}: {kind} file; expected a PNG image")
    problem = _png_structure_problem(data.tobytes())
    if problem:
        raise DataError(f"{path}: corrupt PNG ({problem}); expected a valid PNG image")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise DataError(f"{path}: corrupt PNG (cannot be decoded); expected a valid PNG image")
    return image


def _read_rgb(path: Path) -> tuple[np.ndarray, list[str]]:
    image = _decode_png(path)
    notes: list[str] = []
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels in (1, 2):
        raise DataError(
            f"{path}: grayscale image ({channels} channel{'s' if channels > 1 else ''}); "
            "expected an RGB PNG with 3 channels (a DEM in the image folder?)"
        )
    if channels == 4:
        notes.append(f"{path}: RGBA image, alpha channel dropped")
        image = image[..., :3]
    elif channels != 3:
        raise DataError(f"{path}: {channels} channels; expected an RGB PNG with 3 channels")
    if image.dtype == np.uint16:
        notes.append(f"{path}: 16-bit RGB image, scaled to 8 bits")
        image = (image >> 8).astype(np.uint8)
    rgb = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2RGB)  # (H, W, 3)
    return rgb, notes


def _read_dem(path: Path) -> tuple[np.ndarray, list[str]]:
    dem = _decode_png(path)
    notes: list[str] = []
    if dem.ndim == 3:
        if dem.shape[2] in (2, 4):
            dem = dem[..., : dem.shape[2] - 1]
        if dem.shape[2] == 1 or all(
            np.array_equal(dem[..., 0], dem[..., c]) for c in range(1, dem.shape[2])
        ):
            dem = dem[..., 0]
        else:
            notes.append(f"{path}: colour DEM, converted to grayscale; expected a grayscale PNG")
            dem = cv2.cvtColor(np.ascontiguousarray(dem), cv2.COLOR_BGR2GRAY)
    return dem.astype(np.float32), notes


def _read_mask(path: Path) -> tuple[np.ndarray, list[str]]:
    mask = _decode_png(path)
    notes: list[str] = []
    if mask.ndim == 3:
        mask = mask[..., : 3 if mask.shape[2] >= 3 else 1].max(axis=-1)
    values = np.unique(mask)
    unexpected = values[(values != 0) & (values != 255)]
    if unexpected.size:
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
        notes.append(
            f"{path}: mask values {{{shown}}} other than 0/255, binarized at > 0 (> 0 = landslide)"
        )
    return (mask > 0).astype(np.uint8), notes


def _warn(notes: Sequence[str]) -> None:
    for note in notes:
        logger.warning("%s", note)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an RGB tile.

    RGBA drops the alpha channel (warning); a grayscale PNG is refused, since a one-channel
    file in ``image/`` is far more likely a misplaced DEM than a real image.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        DataError: missing, empty, non-PNG, corrupt or grayscale file.
    """
    rgb, notes = _read_rgb(Path(path))
    _warn(notes)
    return rgb


def read_dem(path: str | Path) -> np.ndarray:
    """Read a DEM PNG (8- or 16-bit grayscale; dark = low) as float elevation values.

    Returns:
        ``(H, W)`` float32 with the raw PNG values (0..255 or 0..65535).

    Raises:
        DataError: missing, empty, non-PNG or corrupt file.
    """
    dem, notes = _read_dem(Path(path))
    _warn(notes)
    return dem


def read_mask(path: str | Path) -> np.ndarray:
    """Read a ground-truth mask; any value > 0 is landslide (values other than 0/255 warn).

    Returns:
        ``(H, W)`` uint8 in {0, 1}.

    Raises:
        DataError: missing, empty, non-PNG or corrupt file.
    """
    mask, notes = _read_mask(Path(path))
    _warn(notes)
    return mask


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
        files[path.stem] = path
    return files


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
    hint = ""
    if root.is_dir() and not (root / LANDSLIDE).is_dir():
        found = _find_layout_root(root)
        if found is not None and found != root:
            hint = f" (did you mean {found}?)"
    return DataError(f"{missing}: folder not found{hint}; {expected_layout(root)}")


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
        "%s: %d landslide and %d non-landslide tiles",
        root,
        sum(s.landslide for s in samples),
        sum(not s.landslide for s in samples),
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
        rgb, more = _read_rgb(Path(sample.image))
        notes += more
    if modalities in ("rgb+dem", "dem"):
        if sample.dem is None:
            raise DataError(
                f"{sample.image}: no DEM for {sample.stem}; expected dem/{sample.stem}.png"
            )
        dem, more = _read_dem(Path(sample.dem))
        notes += more
    if sample.mask is not None:
        mask, more = _read_mask(Path(sample.mask))
        notes += more
    ref_name, ref = ("image", rgb) if rgb is not None else ("DEM", dem)
    ref_shape = ref.shape[:2]
    for name, path, array in (("DEM", sample.dem, dem), ("mask", sample.mask, mask)):
        if array is not None and array is not ref and array.shape[:2] != ref_shape:
            notes.append(
                f"{path}: {name} is {array.shape[1]}x{array.shape[0]} px but the {ref_name} is "
                f"{ref_shape[1]}x{ref_shape[0]} px; resampled onto the {ref_name} grid"
            )
    return rgb, dem, mask, notes


def load_sample(
    sample: Sample,
    image_size: int = 128,
    modalities: str = "rgb+dem",
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    derived: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Read and preprocess one tile with ``landslide_tf.preprocessing``.

    Args:
        sample: the tile.
        image_size: output height and width.
        modalities: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``.
        dem_norm: ``"minmax"`` (per tile, default) or ``"dataset"`` (needs ``dem_stats``).
        dem_stats: ``(mean, std)`` of the raw training DEM values (see ``dem_statistics``).
        derived: extra DEM channels: ``slope``, ``aspect``, ``hillshade``.

    Returns:
        ``x (image_size, image_size, C)`` float32 and ``y (image_size, image_size, 1)``
        float32 in {0, 1} (all zeros for negatives).

    Raises:
        DataError: unreadable files (one line naming the file).
    """
    from landslide_tf.preprocessing import preprocess_inputs, preprocess_mask

    rgb, dem, mask, notes = read_sample_arrays(sample, modalities)
    _warn(notes)
    if dem_norm == "dataset" and dem_stats is None and modalities != "rgb":
        raise DataError("dem_norm='dataset' needs dem_stats=(mean, std) of the training split")
    try:
        x = preprocess_inputs(
            rgb, dem, image_size, modalities, dem_norm, dem_stats, tuple(derived)
        ).numpy()
    except ValueError as exc:
        raise DataError(f"{sample.stem}: {exc}") from None
    if mask is None:
        y = np.zeros((image_size, image_size, 1), np.float32)
    else:
        y = preprocess_mask(mask, image_size).numpy()
    return x.astype(np.float32), y.astype(np.float32)
