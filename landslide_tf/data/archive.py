"""Opening a Bijie dataset given as a folder or a downloaded ``.zip``, extracted safely.

``open_dataset(path)`` returns the folder holding ``landslide/``; a zip is extracted once,
next to it into ``<zip stem>/``, by ``safe_extract``, which checks every entry before writing
anything. Import these names from ``landslide_tf.data`` (or ``landslide_tf.data.bijie``).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

LANDSLIDE = "landslide"
#: Marker written after a zip file was fully extracted.
EXTRACTED_MARKER = ".landslide_tf_extracted"


def expected_layout(root: str | Path) -> str:
    """One-line description of the expected folder layout under ``root``."""
    return (
        f"expected {root}/landslide/{{image,dem,mask}}/*.png and optionally "
        f"{root}/non-landslide/{{image,dem}}/*.png (files matched by stem)"
    )


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
