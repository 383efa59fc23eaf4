"""Reading the Landslide4Sense benchmark (Ghorbanzadeh et al. 2022) in its official HDF5 layout.

::

    <root>/TrainData/img/image_1.h5     dataset 'img'  (128, 128, 14) float: B1..B12, slope, DEM
    <root>/TrainData/mask/mask_1.h5     dataset 'mask' (128, 128) 0/1
    <root>/ValidData/img/...  [ValidData/mask/...]
    <root>/TestData/img/...   [TestData/mask/...]

Folder names ``img``/``image``/``images`` and ``mask``/``masks`` are all accepted, and images
and masks are paired by the number in their file names. The dataset's own splits are used
as given; a split without masks (the official validation and test labels were withheld for
years) is not used, and ``split_given`` explains what takes its place.

h5py (the ``.h5`` reader) is installed with TensorFlow.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.data.bands import L4S_BANDS
from landslide_tf.data.sample import Sample
from landslide_tf.errors import DataError, require_module

logger = logging.getLogger(__name__)

SPLIT_DIRS = {
    "train": ("TrainData", "train"),
    "val": ("ValidData", "ValData", "ValidationData", "val"),
    "test": ("TestData", "test"),
}
IMAGE_DIRS = ("img", "image", "images")
MASK_DIRS = ("mask", "masks", "label", "labels")
IMAGE_KEY = "img"
MASK_KEY = "mask"

_NO_H5PY = (
    "reading Landslide4Sense .h5 files needs h5py, which TensorFlow installs; this "
    "environment lacks it: pip install h5py"
)


def require_h5py() -> Any:
    """Import h5py or raise a one-line ``UserError`` telling how to install it."""
    return require_module("h5py", _NO_H5PY)


def expected_layout(root: str | Path) -> str:
    """One line describing the layout (for error messages)."""
    return (
        f"expected the Landslide4Sense layout {root}/TrainData/img/image_N.h5 + "
        f"{root}/TrainData/mask/mask_N.h5 (and optional ValidData/, TestData/)"
    )


def _child(folder: Path, names: tuple[str, ...]) -> Path | None:
    if not folder.is_dir():
        return None
    lower = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def detect(root: Path) -> bool:
    """Whether ``root`` looks like the Landslide4Sense layout."""
    train = _child(root, SPLIT_DIRS["train"])
    images = _child(train, IMAGE_DIRS) if train is not None else None
    return images is not None and any(images.glob("*.h5"))


def _numbered(folder: Path) -> dict[int, Path]:
    """Tile number -> path of the ``.h5`` files in ``folder``; the name must end in the number.

    Hidden files are skipped, as in the other formats (macOS leaves ``._image_1.h5`` beside
    ``image_1.h5`` on FAT/exFAT drives)."""
    files: dict[int, Path] = {}
    for path in sorted(folder.glob("*.h5")):
        if path.name.startswith("."):
            continue
        match = re.fullmatch(r".*?(\d+)", path.stem)
        if match is None:
            raise DataError(
                f"{path}: the file name does not end in its tile number; expected image_N.h5 / "
                "mask_N.h5 (a copy such as 'image_10 (1).h5'? remove or rename it)"
            )
        number = int(match.group(1))
        if number in files:
            raise DataError(
                f"{path}: tile number {number} again (also {files[number].name}) in {folder}; "
                "remove or rename one of them"
            )
        files[number] = path
    return files


def _dataset_info(path: Path, key: str) -> tuple[tuple[int, ...], list[str]]:
    """Shape of dataset ``key`` in ``path`` (or ``()`` when absent) and the keys found."""
    h5py = require_h5py()
    try:
        with h5py.File(path, "r") as f:
            keys = sorted(f.keys())
            return (tuple(f[key].shape) if key in f else ()), keys
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None


def check_image(path: Path) -> tuple[int, int]:
    """Validate an image file's key and shape; return its ``(height, width)``."""
    shape, keys = _dataset_info(path, IMAGE_KEY)
    return _check_image_shape(path, shape, keys)


def _check_image_shape(path: Path, shape: tuple[int, ...], keys: list[str]) -> tuple[int, int]:
    """``check_image`` on a shape already read (``()``: no image dataset) and the file's keys."""
    if not shape:
        raise DataError(
            f"{path}: no dataset {IMAGE_KEY!r} (keys found: {', '.join(keys) or 'none'}); "
            f"expected {IMAGE_KEY!r} of shape (H, W, {len(L4S_BANDS)})"
        )
    if len(shape) != 3 or shape[-1] != len(L4S_BANDS):
        raise DataError(
            f"{path}: dataset {IMAGE_KEY!r} has shape {shape} (keys found: {', '.join(keys)}); "
            f"expected (H, W, {len(L4S_BANDS)}): {len(L4S_BANDS)} bands "
            f"{', '.join(L4S_BANDS)}"
        )
    return shape[0], shape[1]


def check_mask(path: Path, image_hw: tuple[int, int], image: Path) -> None:
    """Validate a mask file's key and that its size matches its image."""
    shape, keys = _dataset_info(path, MASK_KEY)
    if not shape:
        raise DataError(
            f"{path}: no dataset {MASK_KEY!r} (keys found: {', '.join(keys) or 'none'}); "
            f"expected {MASK_KEY!r} of shape {image_hw}"
        )
    hw = shape[:2]
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[-1] != 1) or hw != image_hw:
        raise DataError(
            f"{path}: mask shape {shape} does not match its image {image.name} "
            f"{image_hw}; expected {image_hw}"
        )


def find_l4s_samples(root: str | Path, validate: bool = True) -> list[Sample]:
    """List the labelled tiles of a Landslide4Sense folder, each tagged with its given split.

    Args:
        root: the folder holding ``TrainData/`` (and ``ValidData/``, ``TestData/``).
        validate: open every file and check keys and shapes (cheap: no pixels are read).

    Raises:
        DataError: missing layout, an image without its mask, a file without the expected
            dataset key or with the wrong band count or size.
    """
    root = Path(root)
    if not detect(root):
        raise DataError(f"{root}: not a Landslide4Sense folder; {expected_layout(root)}")
    samples: list[Sample] = []
    for split, names in SPLIT_DIRS.items():
        folder = _child(root, names)
        images = _child(folder, IMAGE_DIRS) if folder is not None else None
        if images is None:
            continue
        masks = _child(folder, MASK_DIRS)
        if masks is None:
            logger.info("%s has no mask folder: its tiles are unlabelled and not used", folder)
            continue
        image_files, mask_files = _numbered(images), _numbered(masks)
        for number, image in sorted(image_files.items()):
            mask = mask_files.get(number)
            if mask is None:
                raise DataError(f"{image}: no mask; expected {masks}/mask_{number}.h5")
            if validate:
                check_mask(mask, check_image(image), image)
            samples.append(Sample(f"{split}_{number}", image, mask=mask, split=split))
    if not any(s.split == "train" for s in samples):
        raise DataError(f"{root}: no labelled training tile; {expected_layout(root)}")
    return samples


def read_l4s_image(path: str | Path) -> np.ndarray:
    """The 14 bands of ``image_N.h5`` as ``(H, W, 14)`` float32 (non-finite -> NaN)."""
    h5py = require_h5py()
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:  # validated inside the one open
            shape = tuple(f[IMAGE_KEY].shape) if IMAGE_KEY in f else ()
            _check_image_shape(path, shape, sorted(f.keys()))
            return np.asarray(f[IMAGE_KEY][()], np.float32)
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None


def read_l4s_mask(path: str | Path) -> np.ndarray:
    """``mask_N.h5`` as ``(H, W)`` uint8 in {0, 1} (> 0 is landslide)."""
    h5py = require_h5py()
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if MASK_KEY not in f:
                keys = ", ".join(sorted(f.keys())) or "none"
                raise DataError(f"{path}: no dataset {MASK_KEY!r} (keys found: {keys})")
            mask = np.asarray(f[MASK_KEY][()])
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
    if mask.ndim == 3:
        mask = mask[..., 0]
    return (mask > 0).astype(np.uint8)
