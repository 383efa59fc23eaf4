"""Checked, atomic writes: a failed write leaves nothing behind and names the target."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from landslide_tf import files


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (root only); skipped with the reason where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "a.json"
    files.atomic_write_json(target, {"x": 1})
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_staged_failure_removes_the_temporary_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "m.png"
    target.write_bytes(b"old")
    with pytest.raises(OSError) as info, files.staged(target) as tmp:
        tmp.write_bytes(b"")  # a writer that "succeeded" with nothing written
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]


def test_real_full_disk_is_one_oserror_naming_the_file(tiny_disk):
    target = tiny_disk / "big.bin"
    with pytest.raises(OSError) as info:
        files.atomic_write_bytes(target, os.urandom(256 * 1024))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tiny_disk.iterdir()) == []
    image = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(OSError) as info:
        files.encode_image(tiny_disk / "m.png", image)
    assert info.value.filename == str(tiny_disk / "m.png")
    assert list(tiny_disk.iterdir()) == []


def test_staged_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), files.staged_dir(target) as stage:
        (stage / "half").write_text("x")
        raise RuntimeError("export failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (target / "keep.txt").read_text() == "old"
    with files.staged_dir(target) as stage:
        (stage / "saved_model.pb").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["saved_model.pb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_stale_staging_of_a_killed_process_is_removed_and_nothing_else(tmp_path):
    code = (
        "import os, signal, sys\n"
        "from landslide_tf import files\n"
        f"with files.staged_dir({str(tmp_path / 'out')!r}) as stage:\n"
        "    (stage / 'partial').write_text('x')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    user = tmp_path / ".out.mine.staging"  # looks like ours but has no marker: not ours
    user.mkdir()
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert len(left) == 2
    removed = files.remove_stale_staging(tmp_path, "out")
    assert len(removed) == 1 and user.is_dir()
    with files.staged_dir(tmp_path / "live") as stage:  # a live process's stage is kept
        assert files.remove_stale_staging(tmp_path, "live") == [] and stage.is_dir()


def test_staged_dir_gets_the_permissions_of_a_made_folder(tmp_path):
    """mkdtemp's 0700 would make a dataset or SavedModel renamed into place private."""
    import os
    import stat

    from landslide_tf.files import staged_dir

    with staged_dir(tmp_path / "out") as stage:
        (stage / "a.txt").write_text("a")
    made = tmp_path / "made"
    made.mkdir()
    mode = stat.S_IMODE(os.stat(tmp_path / "out").st_mode)
    assert mode == stat.S_IMODE(os.stat(made).st_mode) and mode & 0o044
