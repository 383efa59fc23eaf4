"""Opening a Bijie dataset given as a folder or a downloaded ``.zip``, extracted safely.

``open_dataset(path)`` returns the folder holding ``landslide/``; a zip is extracted once,
next to it into ``<zip stem>/``, by ``safe_extract``, which checks every entry before writing
anything and verifies every entry's CRC and declared size while inflating. Extraction never
deletes or overwrites what it did not create: ``<zip stem>/`` must be new (or carry our marker
from an earlier extraction), otherwise it is refused. The marker records the zip's key
(``zip_key``: size, mtime and a hash of the central directory): a zip replaced by another one
with the same name is extracted again (the earlier extraction, ours, is replaced). The
uncompressed size is bounded (``unzip_budget``) before and while inflating. Import these names from ``landslide_tf.data`` (or ``landslide_tf.data.bijie``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from landslide_tf.errors import DataError

logger = logging.getLogger(__name__)

LANDSLIDE = "landslide"
#: Marker written after a zip file was fully extracted.
EXTRACTED_MARKER = ".landslide_tf_extracted"


def zip_key(zip_path: str | Path) -> str:
    """What identifies a zip's content: size, mtime and a hash of its central directory.

    The central directory lists every entry's name, CRC-32, sizes and offset, so a different
    zip with the same name (and even the same size) gets a different key.
    """
    zip_path = Path(zip_path)
    st = zip_path.stat()
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                digest.update(
                    f"{info.filename}\0{info.CRC}\0{info.compress_size}\0{info.file_size}\0"
                    f"{info.header_offset}\n".encode()
                )
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{zip_path}: not a readable zip file ({exc}); download it again") from None
    return (
        f"size={st.st_size} mtime_ns={st.st_mtime_ns} central_directory_sha256={digest.hexdigest()}"
    )


def _marker_key(target: Path) -> str | None:
    """The key recorded by an earlier extraction into ``target`` (None: not ours)."""
    try:
        lines = (target / EXTRACTED_MARKER).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[1] if len(lines) > 1 else ""  # "" = an older marker without a key


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


#: Environment variable raising (or lowering) the uncompressed-size budget, in bytes.
MAX_UNZIP_ENV = "LANDSLIDE_TF_MAX_UNZIP_BYTES"
#: The budget is at least this many bytes ...
MIN_UNZIP_BUDGET = 1 << 30  # 1 GiB
#: ... or this many times the zip's own size, whichever is larger.
UNZIP_RATIO_BUDGET = 100
_CHUNK = 1 << 20  # bytes read and written at a time: memory stays bounded


def unzip_budget(zip_path: str | Path) -> int:
    """Most bytes a zip may inflate to: ``$LANDSLIDE_TF_MAX_UNZIP_BYTES`` if set, else
    ``max(1 GiB, 100 x the zip's size)`` (PNG tiles hardly compress; bombs do)."""
    raw = os.environ.get(MAX_UNZIP_ENV)
    if raw:
        try:
            value = int(float(raw))
        except ValueError:
            raise DataError(f"{MAX_UNZIP_ENV}={raw!r}: expected a number of bytes") from None
        if value < 1:
            raise DataError(f"{MAX_UNZIP_ENV}={raw!r}: expected a positive number of bytes")
        return value
    return max(MIN_UNZIP_BUDGET, UNZIP_RATIO_BUDGET * Path(zip_path).stat().st_size)


def _too_big(zip_path: Path, size: int, budget: int) -> DataError:
    return DataError(
        f"{zip_path}: inflates to more than {budget:,} bytes ({size:,} and counting); "
        f"refused as a possible zip bomb (raise the limit with {MAX_UNZIP_ENV}=BYTES)"
    )


def safe_extract(zip_path: str | Path, target: str | Path, max_bytes: int | None = None) -> Path:
    """Extract a zip file into ``target``, refusing unsafe entries and zip bombs.

    Every entry is checked before anything is written (paths, symlinks, the declared sizes
    against ``max_bytes``); while inflating, each entry is streamed in 1 MiB pieces and
    stopped as soon as it outgrows its declared size or the budget. On any failure, the files
    written so far are removed (``target`` too, when this call created it).

    Args:
        zip_path: the archive.
        target: destination folder (created).
        max_bytes: uncompressed-size budget; default ``unzip_budget(zip_path)``.

    Returns:
        ``target`` as a Path.

    Raises:
        DataError: bad zip file, an entry with an absolute path, ``..`` or a symlink, or more
            uncompressed bytes than the budget.
    """
    zip_path, target = Path(zip_path), Path(target)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{zip_path}: not a readable zip file ({exc}); download it again") from None
    budget = unzip_budget(zip_path) if max_bytes is None else max_bytes
    with archive:
        declared = 0
        for info in archive.infolist():
            problem = _zip_member_problem(info, target)
            if problem:
                raise DataError(
                    f"{zip_path}: refused to extract entry {info.filename!r} ({problem}); "
                    f"expected entries inside {target}"
                )
            declared += info.file_size
            if declared > budget:
                raise _too_big(zip_path, declared, budget)
        created = not target.exists()
        written: list[Path] = []
        try:
            target.mkdir(parents=True, exist_ok=True)
            _inflate(archive, zip_path, target, budget, written)
        except BaseException as exc:
            for path in reversed(written):  # only what this call wrote
                if path.is_dir():
                    _rmdir_quiet(path)
                else:
                    path.unlink(missing_ok=True)
            if created:
                _rmdir_quiet(target)
            if isinstance(exc, (zipfile.BadZipFile, EOFError, zlib.error)):
                raise DataError(f"{zip_path}: damaged archive ({exc}); download it again") from None
            raise
    return target


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _inflate(
    archive: zipfile.ZipFile, zip_path: Path, target: Path, budget: int, written: list[Path]
) -> None:
    """Stream every entry into ``target``, recording each path created in ``written``."""
    total = 0
    for info in archive.infolist():
        dest = target / PurePosixPath(info.filename.replace("\\", "/"))
        missing = [p for p in [dest, *dest.parents] if p != target and target in p.parents]
        for folder in reversed(missing if info.is_dir() else missing[1:]):
            if not folder.exists():
                folder.mkdir()
                written.append(folder)
        if info.is_dir():
            continue
        if dest.exists():
            raise DataError(f"{zip_path}: entry {info.filename!r} appears twice; refused")
        written.append(dest)
        size = 0
        with archive.open(info) as src, open(dest, "xb") as out:
            while chunk := _read_entry(src, zip_path, info):
                size += len(chunk)
                total += len(chunk)
                if size > info.file_size:
                    raise DataError(
                        f"{zip_path}: entry {info.filename!r} inflates beyond its declared "
                        f"{info.file_size:,} bytes; refused as damaged or malicious"
                    )
                if total > budget:
                    raise _too_big(zip_path, total, budget)
                out.write(chunk)
        if size != info.file_size:
            raise DataError(
                f"{zip_path}: entry {info.filename!r} holds {size:,} bytes but declares "
                f"{info.file_size:,}; the zip is damaged: download it again"
            )


def _read_entry(src: Any, zip_path: Path, info: zipfile.ZipInfo) -> bytes:
    """The next piece of an entry; a CRC or deflate error as one line naming the entry."""
    try:
        return src.read(_CHUNK)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{zip_path}: entry {info.filename!r} is damaged ({exc}); download the zip again"
        ) from None


#: How many folder levels inside an extracted zip are searched for ``landslide/``.
LAYOUT_SEARCH_DEPTH = 4


def find_layout_root(folder: Path, max_depth: int = 2) -> Path | None:
    """The folder (``folder`` itself or below) that holds ``landslide/``."""
    if (folder / LANDSLIDE).is_dir():
        return folder
    if max_depth == 0:
        return None
    children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for child in children:
        found = find_layout_root(child, max_depth - 1)
        if found is not None:
            return found
    return None


def _extract_into(path: Path, target: Path, key: str, *, replace: bool) -> None:
    """Extract ``path`` beside itself, then move it onto ``target`` (ours when ``replace``)."""
    logger.info("extracting %s into %s", path, target)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.extracting-", dir=target.parent))
    except OSError as exc:
        raise DataError(
            f"{path}: cannot extract next to the zip into {target} ({exc.strerror})"
        ) from None
    try:
        safe_extract(path, tmp)
        # the marker comes last: an extraction that failed is never marked complete
        (tmp / EXTRACTED_MARKER).write_text(f"{path.name}\n{key}\n")
        if replace:  # our earlier extraction of a different zip: moved aside, then removed
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.rename(old / target.name)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
            return
        if target.exists() or target.is_symlink():  # appeared meanwhile: never replace it
            raise DataError(f"{path}: {target} appeared while extracting; rerun")
        tmp.rename(target)
    except OSError as exc:
        raise DataError(f"{path}: cannot extract next to the zip into {target} ({exc})") from None
    finally:
        if tmp.exists():  # created by mkdtemp above: ours to remove
            shutil.rmtree(tmp, ignore_errors=True)


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
    key = zip_key(path)
    recorded = _marker_key(target)
    if recorded != key:
        if recorded is None and (target.exists() or target.is_symlink()):
            raise DataError(
                f"{path}: cannot extract into {target}: it exists and was not extracted by "
                f"landslide_tf (no {EXTRACTED_MARKER}); move it away, or pass the folder itself"
            )
        if recorded is not None:
            logger.warning(
                "%s changed since it was extracted into %s (size, date or entries differ): "
                "extracting it again",
                path,
                target,
            )
        _extract_into(path, target, key, replace=recorded is not None)
    root = find_layout_root(target, max_depth=LAYOUT_SEARCH_DEPTH)
    if root is None:
        raise DataError(
            f"{path}: no landslide/ folder within {LAYOUT_SEARCH_DEPTH} folder levels of the "
            f"zip (extracted into {target}); {expected_layout('<zip>')}, or pass the folder "
            "that holds landslide/ instead of the zip"
        )
    depth = len(root.relative_to(target).parts)
    if depth > 1:
        logger.warning(
            "%s: found the dataset layout %d folders deep, at %s; using it (pass that folder "
            "as the data to skip the search)",
            path,
            depth,
            root,
        )
    return root
