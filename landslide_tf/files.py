"""Writing files so that a failure leaves nothing behind: the one way this package writes.

Every output (run files, checkpoints, chips, masks, probability maps, polygons, previews,
SavedModels, study tables) is written to a temporary name beside its target and moved into
place with ``os.replace`` only once it is complete, so a reader never sees half a file and a
failed write (a full disk, a read-only folder, an encoder that reports failure by a return
value) removes what it started and raises ``OSError`` naming the target and the reason. The
command-line edge turns that into one ``error: <path>: <reason> (<hint>)`` line and exit 2.

- ``atomic_write_text`` / ``atomic_write_bytes`` / ``atomic_write_json``: small files;
- ``staged(path)``: a context manager yielding the temporary path for writers that want a
  file name (rasterio, keras ``model.save``, matplotlib ``savefig``); it checks the result
  is not empty, then moves it into place;
- ``staged_dir(path)``: the same for folders (SavedModels);
- ``encode_image(path, array)``: OpenCV encodes in memory (``cv2.imwrite`` reports a full
  disk only by returning False), then ``atomic_write_bytes``.

Temporary names start with ``.`` and end with ``.tmp`` (files) or carry ``STAGING_MARK``
(folders), so ``remove_stale_staging`` can clear the leftovers of a killed process, and only
those: nothing else is ever deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

#: File inside a staging folder that says this package made it (and may remove it).
STAGING_MARK = ".landslide_tf_staging"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


#: ``_tmp_name``'s pattern read back: ``.NAME.PID.tmp.SUFFIX`` (SUFFIX that of NAME).
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?P<suffix>\.[^.]*)?$")


def temporary_of(path: str | Path) -> tuple[str, int] | None:
    """``(NAME, PID)`` when ``path`` is a temporary file ``staged`` writes for NAME in
    process PID (``temporary_path``), else None."""
    match = _TMP_NAME.match(Path(path).name)
    if match is None or match["suffix"] != (Path(match["name"]).suffix or None):
        return None
    return match["name"], int(match["pid"])


def temporary_path(path: str | Path) -> Path:
    """The temporary name beside ``path`` that ``staged`` writes (``.NAME.PID.tmp.SUFFIX``),
    for writers that keep a file open across calls (a GeoTIFF written strip by strip)."""
    return _tmp_name(Path(path))


def write_error(exc: BaseException, path: str | Path) -> OSError:
    """An ``OSError`` naming ``path`` for a writer's failure (``exc``): ENOSPC when the
    reason says the disk is full, else the errno of an ``OSError`` or EIO, with the reason."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno is not None:
        return OSError(exc.errno, exc.strerror or text, str(path))
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:  # GDAL: "Write failed" caused by the reason
        chain.append(" ".join(str(seen).split()))
        seen = seen.__cause__ or seen.__context__
    if any("No space left" in t or "ENOSPC" in t for t in chain) or _nearly_full(path):
        return no_space(path)
    return OSError(errno.EIO, f"the file could not be written ({'; '.join(chain)})", str(path))


#: A write that failed on a file system with less free space than this failed for a full disk
#: (libtiff says so only on stderr, GDAL raises "Write failed").
FULL_BELOW_BYTES = 1 << 20


def _nearly_full(path: str | Path) -> bool:
    try:
        return shutil.disk_usage(Path(path).parent).free < FULL_BELOW_BYTES
    except OSError:
        return False


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def no_space(path: str | Path, reason: str = "No space left on device") -> OSError:
    """An ``OSError(ENOSPC)`` naming ``path`` (for writers that report failure otherwise)."""
    return OSError(errno.ENOSPC, reason, str(path))


@contextlib.contextmanager
def staged(path: str | Path, *, min_bytes: int = 1) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    The block must write the temporary file. If it raises, or the file is missing or smaller
    than ``min_bytes`` (a writer that failed without raising), the temporary file is removed
    and ``OSError`` is raised naming ``path``; ``path`` itself is untouched.
    """
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        yield tmp
        if not tmp.is_file() or tmp.stat().st_size < min_bytes:
            raise no_space(path, "the file could not be written completely")
        _fsync(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None or Path(os.fsdecode(exc.filename)) == tmp:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file (``OSError`` names ``path``)."""
    with staged(path, min_bytes=0) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if tmp.stat().st_size != len(data):
            raise no_space(path, f"short write ({tmp.stat().st_size} of {len(data)} bytes)")


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, values: Mapping[str, Any] | list[Any]) -> None:
    """Write ``values`` as pretty, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def encode_image(path: str | Path, array: Any, params: list[int] | None = None) -> None:
    """Encode ``array`` with OpenCV by the suffix of ``path`` and write it atomically."""
    import cv2

    path = Path(path)
    ok, buffer = cv2.imencode(path.suffix.lower() or ".png", array, params or [])
    if not ok:
        raise OSError(errno.EINVAL, f"OpenCV cannot encode a {path.suffix} image", str(path))
    atomic_write_bytes(path, buffer.tobytes())


def missing_folders(path: str | Path) -> list[Path]:
    """``path`` and its parents that do not exist yet, deepest first: what
    ``mkdir(parents=True)`` would create, so that a failure can take away just those."""
    missing: list[Path] = []
    for folder in (Path(path), *Path(path).parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_created(folders: list[Path]) -> None:
    """Take away what ``missing_folders`` listed: the first (deepest) as a whole tree, then
    each parent while it is empty; one that is not (something else wrote there) stays."""
    if not folders:
        return
    shutil.rmtree(folders[0], ignore_errors=True)
    for parent in folders[1:]:
        try:
            parent.rmdir()
        except OSError:
            break


def make_temp_dir(parent: str | Path, prefix: str, suffix: str = "") -> Path:
    """A new folder in ``parent`` (``tempfile.mkdtemp``) with the permissions of a folder
    made by ``mkdir``: ``mkdtemp``'s 0700 would leave a dataset or a SavedModel renamed into
    place unreadable to the other users of a shared machine."""
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


def _umask() -> int:
    """The process umask, read without changing it where Linux says it (``os.umask`` can
    only be read by setting it, which other threads writing files would see)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def new_staging_dir(path: str | Path) -> Path:
    """A new staging folder beside ``path`` (``.NAME.*.staging``, ``make_temp_dir``) that
    carries ``STAGING_MARK`` with this process id, so ``remove_stale_staging`` clears it if
    the process is killed. Errors name ``path``, not the temporary folder."""
    path = Path(path)
    try:
        stage = make_temp_dir(path.parent, f".{path.name}.", ".staging")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    try:  # a full disk may fail here already: the error names path, not the marker
        (stage / STAGING_MARK).write_text(f"{os.getpid()}\n")
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None
    return stage


@contextlib.contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """Yield a new staging folder beside ``path``; on success it replaces ``path``.

    ``path`` (if it exists) is replaced only after the block succeeded; on failure the
    staging folder is removed and ``path`` is untouched. The caller decides beforehand
    whether an existing ``path`` may be replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = new_staging_dir(path)
    try:
        yield stage
        (stage / STAGING_MARK).unlink()
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.replace(path, old)
        os.replace(stage, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def remove_stale_staging(folder: str | Path, name: str) -> list[Path]:
    """Remove staging folders for ``name`` left in ``folder`` by a killed process.

    Only folders carrying ``STAGING_MARK`` whose process is gone are removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for stage in folder.glob(f".{name}.*.staging"):
        mark = stage / STAGING_MARK
        if not (stage.is_dir() and mark.is_file()):
            continue
        try:
            pid = int(mark.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if process_alive(pid):
            continue
        shutil.rmtree(stage, ignore_errors=True)
        removed.append(stage)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
