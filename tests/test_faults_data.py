"""Faults round 3 (issue 23), the data side: every case ends in a correct result or one line.

Each test asserts the exit code, the message and the file tree before and after. Cases:
1 (``data chip`` on a full disk), 2 (a replaced or damaged dataset zip), 5 (DEM nodata),
7 (a band NaN in every file), 8 (chips of a zero border, multi-class masks), 11 (a JPEG
named .png, a grayscale image: exit 2, not an abort) and 15 (layout messages).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landslide_tf import files
from landslide_tf.cli import data as data_cli


def call(main, argv: list[str]) -> int:
    """``main(argv)``, turning argparse's SystemExit into its exit code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def one_error_line(capsys) -> str:
    """The single ``error: ...`` line a CLI printed on stderr."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (relative, sorted), hidden ones included."""
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*"))


# --- case 1: data chip on a full disk ------------------------------------------------------


def _chip_scene(root: Path, size: int = 256, half: bool = False) -> tuple[Path, Path]:
    """A random (incompressible) 3-band scene with two labelled squares (or its left half)."""
    from band_data import write_tif

    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, (size, size, 3)).astype(np.uint8)
    truth = np.zeros((size, size), np.uint8)
    truth[20:60, 20:60] = 1
    truth[150:200, 150:220] = 1
    if half:
        truth[:, : size // 2] = 1
    return write_tif(root / "scene.tif", image), write_tif(root / "labels.tif", truth)


def _chip_argv(image: Path, mask: Path, out: Path, *extra: str) -> list[str]:
    return [
        "chip",
        "--image",
        str(image),
        "--mask",
        str(mask),
        "--out",
        str(out),
        "--size",
        "32",
        "--stride",
        "32",
        "--negatives",
        "1",
        *extra,
    ]


def test_chip_on_a_full_disk_removes_what_it_started(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rasterio")
    image, mask = _chip_scene(tmp_path / "in")
    work = tmp_path / "work"
    work.mkdir()
    real = files.atomic_write_bytes
    written = []

    def fill_up(path, data):
        if len(written) >= 5:  # the disk fills after five chips
            with open(path.with_name(f".{path.name}.partial"), "wb") as f:
                f.write(data[:10])  # what a real full disk leaves behind, removed below
            raise files.no_space(path)
        written.append(path)
        real(path, data)

    monkeypatch.setattr(files, "atomic_write_bytes", fill_up)
    rc = call(data_cli.main, _chip_argv(image, mask, work / "chips"))
    line = one_error_line(capsys)
    assert rc == 2
    assert "No space left on device" in line and "free some disk space" in line
    assert str(work) in line and ".tif" in line, line  # the path that failed
    assert len(written) == 5
    assert tree(work) == []  # the staging folder and the five chips are gone


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return done.returncode == 0


def test_chip_on_a_real_full_tmpfs_exits_2_and_leaves_nothing(tmp_path, capsys):
    pytest.importorskip("rasterio")
    image, mask = _chip_scene(tmp_path / "in", size=768, half=True)  # ~1.7 MB on a 1 MB disk
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "1m"):
        pytest.skip(
            "cannot mount a small tmpfs here (needs Linux and root): the simulated "
            "ENOSPC test covers the code path"
        )
    try:
        before = tree(disk)
        rc = call(
            data_cli.main, _chip_argv(image, mask, disk / "chips", "--size", "64", "--stride", "64")
        )
        line = one_error_line(capsys)
        assert rc == 2
        assert "No space left on device" in line and str(disk) in line, line
        assert tree(disk) == before == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)
