"""Opening a Bijie dataset given as a folder or a downloaded ``.zip``, extracted safely.

``open_dataset(path)`` returns the folder holding ``landslide/``; a zip is extracted once,
next to it into ``<zip stem>/``, by ``safe_extract``, which checks every entry before writing
anything (paths, symlinks, encryption, the compression method, the declared sizes) and
verifies every entry's CRC and declared size while inflating. Extraction never deletes or
overwrites what it did not create: ``<zip stem>/`` must be new (or carry our marker from an
earlier extraction), otherwise it is refused. The marker records the zip's key (``zip_key``:
its size and a hash of its central directory, so touching the zip changes nothing) and the
entries extracted. A zip replaced by one with other content is extracted again and replaces
the earlier extraction only when that holds nothing but the earlier zip's entries: a file the
user added there (a split list, notes) stops it with one line naming the file. The start of
an extraction is logged as a warning (the ``data`` command shows warnings only), then its
progress every ``PROGRESS_EVERY_S`` seconds. The uncompressed size is bounded
(``unzip_budget``) before and while inflating. Import these names from ``landslide_tf.data``
(or ``landslide_tf.data.bijie``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from landslide_tf.errors import DataError
from landslide_tf.files import STAGING_MARK, make_temp_dir, new_staging_dir, remove_stale_staging

logger = logging.getLogger(__name__)

LANDSLIDE = "landslide"
#: Marker written after a zip file was fully extracted: the zip's name, its ``zip_key`` and
#: the JSON list of the entries extracted (what a later extraction may replace).
EXTRACTED_MARKER = ".landslide_tf_extracted"
#: Log the progress of an extraction every this many seconds (as ``load_tiles`` does).
PROGRESS_EVERY_S = 10.0


def zip_key(zip_path: str | Path) -> str:
    """What identifies a zip's content: its size and a hash of its central directory.

    The central directory lists every entry's name, CRC-32, sizes and offset, so a different
    zip with the same name (and even the same size) gets a different key, while the same zip
    copied or touched (a new mtime) keeps its key and is not extracted again.
    """
    zip_path = Path(zip_path)
    digest = hashlib.sha256()
    try:
        size = zip_path.stat().st_size
        with zipfile.ZipFile(zip_path) as archive:
            for info in archive.infolist():
                digest.update(
                    f"{info.filename}\0{info.CRC}\0{info.compress_size}\0{info.file_size}\0"
                    f"{info.header_offset}\n".encode()
                )
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{zip_path}: not a readable zip file ({exc}); download it again") from None
    return f"size={size} central_directory_sha256={digest.hexdigest()}"


def _same_zip(recorded: str, key: str) -> bool:
    """True when two keys name the same content (an mtime in an older key is ignored)."""

    def fields(text: str) -> dict[str, str]:
        pairs = dict(part.partition("=")[::2] for part in text.split())
        pairs.pop("mtime_ns", None)
        return pairs

    return bool(recorded) and fields(recorded) == fields(key)


def _read_marker(target: Path) -> tuple[str, list[str] | None] | None:
    """The key and the entries recorded by our earlier extraction into ``target``.

    None: no marker (not ours). The key is "" for a marker without one, the entries None for
    a marker without their list (both written by older versions)."""
    try:
        lines = (target / EXTRACTED_MARKER).read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    key = lines[1] if len(lines) > 1 else ""
    try:
        entries = json.loads(lines[2]) if len(lines) > 2 else None
    except ValueError:
        entries = None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        entries = None
    return key, entries


def _entry_path(info: zipfile.ZipInfo) -> PurePosixPath:
    return PurePosixPath(info.filename.replace("\\", "/"))


def _foreign_files(target: Path, entries: list[str]) -> list[Path]:
    """Files and folders in ``target`` that neither ``entries`` (an earlier zip's) nor the
    marker account for: the user's, never to be deleted."""
    ours = {EXTRACTED_MARKER}
    for name in entries:
        path = PurePosixPath(name)
        ours.update(p.as_posix() for p in (path, *path.parents))
    foreign = []
    for folder, dirs, names in os.walk(target):  # symbolic links are listed, never followed
        rel = Path(folder).relative_to(target)
        dirs.sort()
        for name in list(dirs):
            if (rel / name).as_posix() not in ours:
                foreign.append(Path(folder) / name)
                dirs.remove(name)  # reported as a whole
        foreign.extend(Path(folder) / n for n in sorted(names) if (rel / n).as_posix() not in ours)
    return foreign


def _refuse_foreign(path: Path, target: Path, entries: list[str] | None) -> None:
    """Raise unless ``target`` (our earlier extraction) holds only what the zip put there."""
    if entries is None:
        raise DataError(
            f"{path} changed since it was extracted into {target}, by an older landslide_tf "
            "that kept no list of the files it wrote, so files of yours there cannot be told "
            f"apart: move what you want to keep out of {target}, remove {target} and rerun "
            "(or rename the zip to extract it into a new folder)"
        )
    foreign = _foreign_files(target, entries)
    if foreign:
        raise DataError(
            f"{path} changed since it was extracted into {target}, which also holds "
            f"{len(foreign)} file(s) the zip did not put there (first: {foreign[0]}); "
            "extracting again would delete them: move them out of it and rerun (or rename "
            "the zip to extract it into a new folder)"
        )


def expected_layout(root: str | Path) -> str:
    """One-line description of the expected folder layout under ``root``."""
    return (
        f"expected {root}/landslide/{{image,dem,mask}}/*.png and optionally "
        f"{root}/non-landslide/{{image,dem}}/*.png (files matched by stem)"
    )


def missing_folder(root: str | Path, folder: Path) -> str:
    """The one line for a missing ``image``/``dem``/``mask`` folder of the layout: RGB tiles
    without elevation (the commonest real case) are told how to use them as they are."""
    if folder.name == "dem" and (folder.parent / "image").is_dir():
        return (
            f"{folder}: folder not found: this dataset has images but no DEM; train on the "
            "images alone with --modalities rgb, or add dem/<stem>.png beside image/"
        )
    return f"{folder}: folder not found; {expected_layout(root)}"


#: Compression methods Python's zipfile reads (bzip2 and LZMA where Python has them).
READABLE_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
#: Names of the other methods (APPNOTE 4.4.5), for the message.
_METHOD_NAMES = {
    1: "Shrink",
    6: "Implode",
    9: "Deflate64",
    10: "PKWARE Implode",
    93: "Zstandard",
    95: "XZ",
    96: "JPEG",
    97: "WavPack",
    98: "PPMd",
    99: "AES encryption",
}
_REZIP = (
    "extract it with 7-Zip or unzip and pass the folder, or re-zip it with standard "
    "deflate (zip -r, or Python's zipfile)"
)


def _zip_member_problem(info: zipfile.ZipInfo, target: Path) -> tuple[str, str] | None:
    """Why a zip entry must not be extracted into ``target`` and what to do (None: safe)."""
    name = info.filename
    pure = _entry_path(info)
    inside = f"expected entries inside {target}"
    if pure.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "absolute path", inside
    if ".." in pure.parts:
        return "'..' path component", inside
    mode = (info.external_attr >> 16) & 0o170000
    if mode and stat.S_ISLNK(mode):
        return "symbolic link", inside
    dest = (target / pure).resolve()
    base = target.resolve()
    if dest != base and base not in dest.parents:
        return "lands outside the target folder", inside
    if info.flag_bits & 0x41 or info.compress_type == 99:  # bit 6: strong encryption
        return "encrypted", f"{_REZIP} without a password"
    if info.compress_type not in READABLE_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, "an unknown method")
        return f"compressed with {method}, method {info.compress_type}, unreadable here", _REZIP
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


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{zip_path}: not a readable zip file ({exc}); download it again") from None


def _check_entries(archive: zipfile.ZipFile, zip_path: Path, target: Path, budget: int) -> int:
    """Refuse an unsafe or unreadable entry or a zip bomb (nothing written); return the
    declared uncompressed size. Messages name ``target``, where the entries would go."""
    declared = 0
    for info in archive.infolist():
        problem = _zip_member_problem(info, target)
        if problem:
            raise DataError(
                f"{zip_path}: refused to extract entry {info.filename!r} ({problem[0]}); "
                f"{problem[1]}"
            )
        declared += info.file_size
        if declared > budget:
            raise _too_big(zip_path, declared, budget)
    return declared


def safe_extract(zip_path: str | Path, target: str | Path, max_bytes: int | None = None) -> Path:
    """Extract a zip file into ``target``, refusing unsafe entries and zip bombs.

    Every entry is checked before anything is written (paths, symlinks, encryption, the
    compression method, the declared sizes against ``max_bytes``); while inflating, each entry
    is streamed in 1 MiB pieces and stopped as soon as it outgrows its declared size or the
    budget. Progress is logged every ``PROGRESS_EVERY_S`` seconds. On any failure, the files
    written so far are removed (``target`` too, when this call created it).

    Args:
        zip_path: the archive.
        target: destination folder (created).
        max_bytes: uncompressed-size budget; default ``unzip_budget(zip_path)``.

    Returns:
        ``target`` as a Path.

    Raises:
        DataError: bad zip file, an entry with an absolute path, ``..`` or a symlink, an
            encrypted entry or one compressed with a method Python cannot read (Deflate64),
            a damaged entry, or more uncompressed bytes than the budget.
    """
    zip_path, target = Path(zip_path), Path(target)
    archive = _open_zip(zip_path)
    budget = unzip_budget(zip_path) if max_bytes is None else max_bytes
    with archive:
        declared = _check_entries(archive, zip_path, target, budget)
        created = not target.exists()
        written: list[Path] = []
        try:
            target.mkdir(parents=True, exist_ok=True)
            _inflate(archive, zip_path, target, budget, written, declared)
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


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _inflate(
    archive: zipfile.ZipFile,
    zip_path: Path,
    target: Path,
    budget: int,
    written: list[Path],
    declared: int,
) -> None:
    """Stream every entry into ``target``, recording each path created in ``written``."""
    total = done = 0
    infos = archive.infolist()
    files = sum(not info.is_dir() for info in infos)
    start = last = time.monotonic()
    for info in infos:
        dest = target / _entry_path(info)
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
        with _open_entry(archive, zip_path, info) as src, open(dest, "xb") as out:
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
                now = time.monotonic()
                if now - last >= PROGRESS_EVERY_S:  # also inside one large entry
                    logger.warning(
                        "extracting %s: %d/%d files, %s of %s (%.0f s)",
                        zip_path.name,
                        done,
                        files,
                        _mb(total),
                        _mb(declared),
                        now - start,
                    )
                    last = now
        done += 1
        if size != info.file_size:
            raise DataError(
                f"{zip_path}: entry {info.filename!r} holds {size:,} bytes but declares "
                f"{info.file_size:,}; the zip is damaged: download it again"
            )


#: What zipfile raises on an entry it cannot decode: damage, a password it lacks, a method it
#: does not have (Deflate64), bzip2's "Invalid data stream" (an OSError).
_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    OSError,
)


def _open_entry(archive: zipfile.ZipFile, zip_path: Path, info: zipfile.ZipInfo) -> Any:
    """``archive.open(info)``; what zipfile raises as one line naming the entry."""
    try:
        return archive.open(info)
    except _ENTRY_ERRORS as exc:
        raise _unreadable(zip_path, info, exc) from None


def _read_entry(src: Any, zip_path: Path, info: zipfile.ZipInfo) -> bytes:
    """The next piece of an entry; a CRC or decompression error as one line naming it."""
    try:
        return src.read(_CHUNK)
    except _ENTRY_ERRORS as exc:
        raise _unreadable(zip_path, info, exc) from None


def _unreadable(zip_path: Path, info: zipfile.ZipInfo, exc: BaseException) -> DataError:
    if isinstance(exc, (RuntimeError, NotImplementedError)):  # a password, a method
        return DataError(f"{zip_path}: cannot read entry {info.filename!r} ({exc}); {_REZIP}")
    return DataError(
        f"{zip_path}: entry {info.filename!r} is damaged ({exc}); download the zip again"
    )


#: How many folder levels inside an extracted zip are searched for ``landslide/``.
LAYOUT_SEARCH_DEPTH = 4
#: Folders never searched for ``landslide/``: macOS Finder's zips hold a ``__MACOSX/`` twin
#: of every folder with only ``._*`` resource forks (it sorts before lower-case names).
SKIPPED_FOLDERS = frozenset({"__MACOSX"})


def _has_layout(names: list[str]) -> bool:
    """Whether a zip's entry ``names`` hold a ``landslide/`` folder where
    ``find_layout_root`` looks for it after extraction (at most ``LAYOUT_SEARCH_DEPTH`` deep,
    no hidden or ``SKIPPED_FOLDERS`` folder on the way)."""
    for name in names:
        parts = name.replace("\\", "/").split("/")[:-1]  # the folders of the entry
        for part in parts[: LAYOUT_SEARCH_DEPTH + 1]:
            if part == LANDSLIDE:
                return True
            if part.startswith(".") or part in SKIPPED_FOLDERS:
                break
    return False


def find_layout_root(folder: Path, max_depth: int = 2) -> Path | None:
    """The folder (``folder`` itself or below) that holds ``landslide/``."""
    if (folder / LANDSLIDE).is_dir():
        return folder
    if max_depth == 0:
        return None
    children = sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in SKIPPED_FOLDERS
    )
    for child in children:
        found = find_layout_root(child, max_depth - 1)
        if found is not None:
            return found
    return None


def _extract_into(path: Path, target: Path, key: str, old: list[str] | None) -> None:
    """Extract ``path`` beside itself, then move it onto ``target``.

    ``old``: the entries of our earlier extraction in ``target``, which is replaced (None:
    ``target`` must not exist). The caller checked the entries and ``target``'s content.
    The extraction goes into a staging folder (``files.new_staging_dir``): what a killed
    extraction left there is removed first (``files.remove_stale_staging``)."""
    try:
        remove_stale_staging(target.parent, target.name)
        tmp = new_staging_dir(target)
    except OSError as exc:
        raise DataError(
            f"{path}: cannot extract next to the zip into {target} ({exc.strerror})"
        ) from None
    try:
        safe_extract(path, tmp)
        with zipfile.ZipFile(path) as archive:
            entries = [_entry_path(i).as_posix() for i in archive.infolist()]
        # the marker comes last: an extraction that failed is never marked complete
        (tmp / EXTRACTED_MARKER).write_text(f"{path.name}\n{key}\n{json.dumps(entries)}\n")
        (tmp / STAGING_MARK).unlink()
        if old is not None:  # our earlier extraction of a different zip: moved aside, removed
            _refuse_foreign(path, target, old)  # again: the extraction may have taken long
            aside = make_temp_dir(target.parent, f".{target.name}.old-")
            target.rename(aside / target.name)
            try:
                tmp.rename(target)
            except OSError:
                (aside / target.name).rename(target)  # the earlier extraction stays in place
                aside.rmdir()
                raise
            shutil.rmtree(aside, ignore_errors=True)
            return
        if target.exists() or target.is_symlink():  # appeared meanwhile: never replace it
            raise DataError(f"{path}: {target} appeared while extracting; rerun")
        tmp.rename(target)
    except OSError as exc:
        raise DataError(f"{path}: cannot extract next to the zip into {target} ({exc})") from None
    finally:
        if tmp.exists():  # created by make_temp_dir above: ours to remove
            shutil.rmtree(tmp, ignore_errors=True)


def open_dataset(path: str | Path) -> Path:
    """Return the dataset folder for a folder or a downloaded ``.zip``.

    A folder is returned as is. A ``.zip`` is extracted safely once, next to it into
    ``<zip stem>/``, and the folder holding ``landslide/`` inside it is returned. A zip whose
    content changed is extracted again, replacing the earlier extraction only when that holds
    nothing but the earlier zip's entries.

    Raises:
        DataError: the path does not exist, the zip is unreadable or unsafe, ``<zip stem>/``
            exists and is not ours (or holds files of the user's and the zip changed), or the
            zip does not contain the layout.
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
    marker = _read_marker(target)
    if marker is None or not _same_zip(marker[0], key):
        if marker is None and (target.exists() or target.is_symlink()):
            raise DataError(
                f"{path}: cannot extract into {target}: it exists and was not extracted by "
                f"landslide_tf (no {EXTRACTED_MARKER}); move it away, or pass the folder itself"
            )
        with _open_zip(path) as archive:  # everything checked before anything is written
            declared = _check_entries(archive, path, target, unzip_budget(path))
            count = sum(not info.is_dir() for info in archive.infolist())
            if not _has_layout(archive.namelist()):
                raise DataError(
                    f"{path}: no landslide/ folder within {LAYOUT_SEARCH_DEPTH} folder levels "
                    "of the zip (nothing extracted): a zip is read as the Bijie layout; "
                    f"{expected_layout('<zip>')}, or pass the folder that holds landslide/ "
                    "(an l4s or folder dataset: extract it and pass its folder)"
                )
        if marker is not None:
            _refuse_foreign(path, target, marker[1])
        size = f"{count} files, {_mb(declared)}"
        if marker is None:
            logger.warning(
                "extracting %s (%s) into %s once; later runs reuse it", path, size, target
            )
        else:
            logger.warning(
                "%s changed since it was extracted into %s: extracting it again (%s)",
                path,
                target,
                size,
            )
        _extract_into(path, target, key, None if marker is None else marker[1])
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
