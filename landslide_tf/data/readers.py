"""Validated PNG readers for Bijie tiles: RGB image, DEM and mask.

Every reader validates its file (signature, chunk lengths and CRCs, decodability, channels)
and raises ``DataError`` with one line naming the file and what was expected. Recoverable
oddities (RGBA image, 16-bit RGB, colour DEM, mask values other than 0/255) are fixed and
logged as warnings; inside ``summarized_notes()`` (loading a whole split) each kind of note is
logged once with its count ("1,781 files: RGBA image, alpha channel dropped"), and every file
at DEBUG level. Import these names from ``landslide_tf.data``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

try:  # libpng/OpenCV would print their own messages for corrupt files; we raise DataError.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
except AttributeError:  # pragma: no cover - very old OpenCV
    pass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_structure_problem(data: bytes) -> str | None:
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


#: Smallest tile side (px) of an image, DEM or mask; ``data check`` and the loader share it.
MIN_TILE_SIDE = 8


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
    problem = png_structure_problem(data.tobytes())
    if problem:
        raise DataError(f"{path}: corrupt PNG ({problem}); expected a valid PNG image")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise DataError(f"{path}: corrupt PNG (cannot be decoded); expected a valid PNG image")
    return image


def tile_size_problem(path: str | Path, array: np.ndarray) -> str | None:
    """Why a tile's image, DEM or mask is too small to train on (None when it is not)."""
    height, width = array.shape[:2]
    if min(height, width) < MIN_TILE_SIDE:
        return f"{path}: {width}x{height} px; tiles must be at least {MIN_TILE_SIDE} px a side"
    return None


def decode_rgb(path: Path) -> tuple[np.ndarray, list[str]]:
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


def decode_dem(path: Path) -> tuple[np.ndarray, list[str]]:
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


def decode_mask(path: Path) -> tuple[np.ndarray, list[str]]:
    mask = _decode_png(path)
    notes: list[str] = []
    if mask.ndim == 3:
        mask = np.maximum.reduce([mask[..., c] for c in range(min(mask.shape[2], 3))])
    values = np.unique(mask)
    unexpected = values[(values != 0) & (values != 255)]
    if unexpected.size:
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
        notes.append(
            f"{path}: mask values {{{shown}}} other than 0/255, binarized at > 0 (> 0 = landslide)"
        )
    return (mask > 0).astype(np.uint8), notes


_tally: dict[str, list[str]] | None = None  # kind of note -> files, inside summarized_notes()


def warn(notes: Sequence[str]) -> None:
    for note in notes:
        if _tally is None:
            logger.warning("%s", note)
            continue
        path, _, kind = note.partition(": ")
        _tally.setdefault(re.sub(r"\{[^}]*\}", "{...}", kind), []).append(path)
        logger.debug("%s", note)


@contextlib.contextmanager
def summarized_notes() -> Iterator[None]:
    """Count the readers' notes inside the block; log one line per kind of note at the end."""
    global _tally
    if _tally is not None:  # nested: the outer block reports
        yield
        return
    _tally = {}
    try:
        yield
    finally:
        tally, _tally = _tally, None
        for kind, paths in tally.items():
            if len(paths) == 1:
                logger.warning("%s: %s", paths[0], kind)
            else:
                logger.warning(
                    "%s files: %s (e.g. %s; --verbose 2 lists every file)",
                    f"{len(paths):,}",
                    kind,
                    paths[0],
                )


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an RGB tile.

    RGBA drops the alpha channel (warning); a grayscale PNG is refused, since a one-channel
    file in ``image/`` is far more likely a misplaced DEM than a real image.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        DataError: missing, empty, non-PNG, corrupt or grayscale file.
    """
    rgb, notes = decode_rgb(Path(path))
    warn(notes)
    return rgb


def read_dem(path: str | Path) -> np.ndarray:
    """Read a DEM PNG (8- or 16-bit grayscale; dark = low) as float elevation values.

    Returns:
        ``(H, W)`` float32 with the raw PNG values (0..255 or 0..65535).

    Raises:
        DataError: missing, empty, non-PNG or corrupt file.
    """
    dem, notes = decode_dem(Path(path))
    warn(notes)
    return dem


def read_mask(path: str | Path) -> np.ndarray:
    """Read a ground-truth mask; any value > 0 is landslide (values other than 0/255 warn).

    Returns:
        ``(H, W)`` uint8 in {0, 1}.

    Raises:
        DataError: missing, empty, non-PNG or corrupt file.
    """
    mask, notes = decode_mask(Path(path))
    warn(notes)
    return mask
