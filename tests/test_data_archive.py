"""Tests for ``landslide_tf.data.archive``: zip datasets that cannot be read, re-extraction
that keeps the user's files, progress lines, messages naming the real target, permissions.

Every zip here is a few bytes made with ``zipfile`` in ``tmp_path``; entries need not be real
PNG files, ``open_dataset`` only extracts and finds ``landslide/``.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from landslide_tf.cli import data as data_cli
from landslide_tf.data import archive
from landslide_tf.errors import DataError

TILES = {"landslide/image/a.png": b"image a", "landslide/mask/a.png": b"mask a"}


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as out:  # stored: the bytes are easy to patch
        for name, data in entries.items():
            out.writestr(name, data)
    return path


def patch_entry(path: Path, name: str, *, flags: int = 0, method: int | None = None) -> Path:
    """Set general-purpose flag bits (``flags``) and the compression method of entry ``name``
    in its local header and its central-directory record."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    data = bytearray(path.read_bytes())
    record = data.index(b"PK\x01\x02")  # the central directory follows the (tiny) data
    while data[record + 46 : record + 46 + len(name)] != name.encode():
        record = data.index(b"PK\x01\x02", record + 4)
    # local header: flags at +6, method at +8; central directory record: at +8, +10
    for at in (info.header_offset + 6, record + 8):
        old_flags, old_method = struct.unpack_from("<HH", data, at)
        struct.pack_into(
            "<HH", data, at, old_flags | flags, old_method if method is None else method
        )
    path.write_bytes(bytes(data))
    return path


def call(main, argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


# --- 1: encrypted entries and compression methods Python cannot read ---------------------


@pytest.mark.parametrize(
    ("flags", "method", "said"),
    [
        (0x1, None, "encrypted"),  # ZipCrypto: RuntimeError "password required" before
        (0x0, 9, "Deflate64, method 9,"),  # Windows Explorer: NotImplementedError before
        (0x0, 98, "PPMd, method 98,"),
        (0x0, 77, "an unknown method, method 77,"),
    ],
    ids=["encrypted", "deflate64", "ppmd", "unknown"],
)
def test_an_unreadable_entry_is_refused_in_one_line_before_anything_is_written(
    tmp_path, flags, method, said
):
    zip_path = patch_entry(
        make_zip(tmp_path / "X.zip", TILES), "landslide/mask/a.png", flags=flags, method=method
    )
    with pytest.raises(DataError) as exc:
        archive.open_dataset(zip_path)
    message = str(exc.value)
    assert "\n" not in message
    assert str(zip_path) in message and "'landslide/mask/a.png'" in message and said in message
    assert "re-zip it with standard deflate" in message
    assert tree(tmp_path) == ["X.zip"]  # not even a staging folder was made
    with pytest.raises(DataError, match="refused to extract entry 'landslide/mask/a.png'"):
        archive.safe_extract(zip_path, tmp_path / "out")
    assert tree(tmp_path) == ["X.zip"]


def test_check_and_train_report_an_encrypted_zip_in_one_line(tmp_path, capsys):
    zip_path = patch_entry(make_zip(tmp_path / "X.zip", TILES), "landslide/image/a.png", flags=1)
    assert call(data_cli.main, ["check", str(zip_path)]) == 1  # listed as the problem
    out = capsys.readouterr().out
    assert "'landslide/image/a.png' (encrypted)" in out and "without a password" in out, out
    from landslide_tf.cli import train as train_cli

    rc = call(train_cli.main, ["--data", str(zip_path), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "'landslide/image/a.png' (encrypted)" in errors[0], err
    assert tree(tmp_path) == ["X.zip"]


def test_an_entry_zipfile_refuses_while_reading_is_one_line_naming_it(tmp_path):
    # "compressed patched data" (flag bit 5) passes the checks, then zipfile raises
    # NotImplementedError when the entry is opened
    zip_path = patch_entry(make_zip(tmp_path / "X.zip", TILES), "landslide/mask/a.png", flags=0x20)
    with pytest.raises(DataError) as exc:
        archive.open_dataset(zip_path)
    message = str(exc.value)
    assert "cannot read entry 'landslide/mask/a.png'" in message and "flag bit 5" in message
    assert "re-zip it with standard deflate" in message
    assert tree(tmp_path) == ["X.zip"]  # what was written is removed, nothing marked


# --- 2: re-extraction keeps what the user added ------------------------------------------


def test_touching_the_zip_does_not_extract_it_again(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    root = archive.open_dataset(zip_path)
    (root / "train.txt").write_text("a\n")  # a split list kept beside the data
    marker = root / archive.EXTRACTED_MARKER
    before = marker.stat().st_mtime_ns
    os.utime(zip_path, ns=(before + 10**9, before + 10**9))  # same content, new mtime
    assert archive.open_dataset(zip_path) == root
    assert (root / "train.txt").read_text() == "a\n"
    assert marker.stat().st_mtime_ns == before  # not extracted again
    assert "mtime" not in archive.zip_key(zip_path)


def test_an_older_marker_with_an_mtime_in_its_key_still_matches(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    root = archive.open_dataset(zip_path)
    key = archive.zip_key(zip_path).split()
    size, digest = key[0], key[-1]  # size=..., central_directory_sha256=...
    marker = root / archive.EXTRACTED_MARKER
    marker.write_text(f"X.zip\n{size} mtime_ns=12345 {digest}\n")  # as written before
    (root / "train.txt").write_text("a\n")
    assert archive.open_dataset(zip_path) == root
    assert (root / "train.txt").is_file() and "mtime_ns=12345" in marker.read_text()


def test_a_changed_zip_is_refused_while_the_extraction_holds_user_files(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    root = archive.open_dataset(zip_path)
    (root / "train.txt").write_text("a\n")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("kept")
    before = tree(tmp_path)
    make_zip(zip_path, {**TILES, "landslide/image/b.png": b"image b"})  # new content
    with pytest.raises(DataError) as exc:
        archive.open_dataset(zip_path)
    message = str(exc.value)
    assert f"changed since it was extracted into {root}" in message
    assert f"2 file(s) the zip did not put there (first: {root / 'mine'})" in message
    assert "move them out of it" in message and "rename the zip" in message
    assert tree(tmp_path) == before  # nothing extracted, nothing deleted
    assert (root / "train.txt").read_text() == "a\n"


def test_a_changed_zip_replaces_an_extraction_holding_only_its_entries(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", {**TILES, "landslide/image/old.png": b"old"})
    root = archive.open_dataset(zip_path)
    (root / "landslide" / "mask" / "a.png").write_bytes(b"edited")  # the zip's own file
    make_zip(zip_path, {**TILES, "landslide/image/b.png": b"image b"})
    assert archive.open_dataset(zip_path) == root
    assert sorted(p.name for p in (root / "landslide" / "image").iterdir()) == ["a.png", "b.png"]
    assert (root / "landslide" / "mask" / "a.png").read_bytes() == b"mask a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X", "X.zip"]  # nothing aside


def test_a_user_file_added_while_extracting_again_is_kept(tmp_path, monkeypatch):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    root = archive.open_dataset(zip_path)
    make_zip(zip_path, {**TILES, "landslide/image/b.png": b"image b"})
    real = archive.safe_extract

    def slow_extract(*args, **kwargs):  # the user saves a file during a long extraction
        (root / "val.txt").write_text("b\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(archive, "safe_extract", slow_extract)
    with pytest.raises(DataError, match=r"did not put there \(first: .*val\.txt\)"):
        archive.open_dataset(zip_path)
    assert (root / "val.txt").read_text() == "b\n"
    assert not (root / "landslide" / "image" / "b.png").exists()  # the old extraction stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X", "X.zip"]  # staging removed


def test_a_changed_zip_over_a_marker_without_a_file_list_is_refused(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    root = archive.open_dataset(zip_path)
    (root / archive.EXTRACTED_MARKER).write_text("X.zip\nsize=1 mtime_ns=2\n")  # older version
    make_zip(zip_path, {**TILES, "landslide/image/b.png": b"image b"})
    before = tree(tmp_path)
    with pytest.raises(DataError, match="older landslide_tf that kept no list"):
        archive.open_dataset(zip_path)
    assert tree(tmp_path) == before


# --- 3: the user sees the extraction start, and its progress -----------------------------


def test_the_start_of_an_extraction_is_a_warning_and_progress_follows(
    tmp_path, monkeypatch, caplog
):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    monkeypatch.setattr(archive, "PROGRESS_EVERY_S", float("inf"))
    with caplog.at_level(logging.WARNING, logger="landslide_tf"):
        archive.open_dataset(zip_path)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    start = f"extracting {zip_path} (2 files, 0.0 MB) into {tmp_path / 'X'} once"
    assert lines == [f"{start}; later runs reuse it"]
    caplog.clear()
    make_zip(zip_path, {**TILES, "landslide/image/b.png": b"image b"})
    monkeypatch.setattr(archive, "PROGRESS_EVERY_S", 0.0)  # a line after every piece written
    with caplog.at_level(logging.WARNING, logger="landslide_tf"):
        archive.open_dataset(zip_path)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines[0].startswith(f"{zip_path} changed since it was extracted into ")
    assert lines[0].endswith("extracting it again (3 files, 0.0 MB)")
    progress = [line for line in lines[1:] if line.startswith("extracting X.zip: ")]
    assert [line.split(": ")[1].split(",")[0] for line in progress] == [
        "0/3 files",
        "1/3 files",
        "2/3 files",
    ]


def test_data_check_shows_the_extraction_line(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    done = subprocess.run(
        [sys.executable, "-m", "landslide_tf.data", "check", str(zip_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert f"extracting {zip_path} (2 files" in done.stderr, done.stderr


# --- 4, 5: messages name the real target; the extracted folder is not private ------------


def test_a_refused_entry_names_the_real_target(tmp_path):
    zip_path = tmp_path / "data.zip"
    with zipfile.ZipFile(zip_path, "w") as out:
        out.writestr("landslide/image/a.png", b"a")
        out.writestr("../evil.png", b"evil")
    with pytest.raises(DataError) as exc:
        archive.open_dataset(zip_path)
    message = str(exc.value)
    assert message.endswith(f"expected entries inside {tmp_path / 'data'}")
    assert ".extracting-" not in message
    assert tree(tmp_path) == ["data.zip"]


def test_the_extracted_folder_follows_the_umask(tmp_path):
    zip_path = make_zip(tmp_path / "X.zip", TILES)
    old = os.umask(0o022)
    try:
        archive.open_dataset(zip_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "X").stat().st_mode) == 0o755


@pytest.mark.parametrize(
    "names, found",
    [(["L4S/TrainData/img/image_1.h5"], False),
     (["images/a.tif", "masks/a.tif"], False),
     (["a/b/c/d/landslide/image/x.png"], True),
     (["a/b/c/d/e/landslide/image/x.png"], False),  # deeper than the search after extraction
     ([".hidden/landslide/image/x.png"], False),
     (["Bijie/landslide/"], True)],
)  # fmt: skip
def test_has_layout_looks_where_the_search_after_extraction_looks(names, found):
    assert archive._has_layout(names) is found


def test_a_zip_without_the_bijie_layout_is_refused_before_extraction(tmp_path, capsys):
    """An l4s or folder dataset zipped: one line saying zips are read as Bijie, and no
    extracted folder left behind (it used to extract everything, then fail)."""
    zip_path = make_zip(tmp_path / "L4S.zip", {"TrainData/img/image_1.h5": b"h5"})
    with pytest.raises(DataError, match="a zip is read as the Bijie layout") as exc:
        archive.open_dataset(zip_path)
    assert "nothing extracted" in str(exc.value) and "\n" not in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["L4S.zip"]
