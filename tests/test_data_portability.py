"""Datasets that pass through other systems: macOS zips and hidden files, Windows split lists,
an extraction killed half-way."""

from __future__ import annotations

import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from landslide_tf.data import archive, find_samples
from landslide_tf.data.check import check_dataset
from landslide_tf.data.l4s import find_l4s_samples
from landslide_tf.data.sample import Sample
from landslide_tf.data.split import read_split
from landslide_tf.errors import DataError


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


# --- zips made by macOS Finder ("Compress"): a __MACOSX/ twin of every folder -------------


def test_a_macos_zip_opens_the_real_dataset_not_its_macosx_twin(tmp_path):
    """Finder adds ``__MACOSX/<folder>/._<file>`` (resource forks) for every file. The
    search for ``landslide/`` went into ``__MACOSX/`` first (``_`` sorts before lower-case
    letters) and returned a twin holding only hidden ``._*.png`` files: no usable tile."""
    image = cv2.imencode(".png", np.full((16, 16, 3), 90, np.uint8))[1].tobytes()
    mask = cv2.imencode(".png", np.full((16, 16), 255, np.uint8))[1].tobytes()
    zip_path = tmp_path / "slides.zip"
    with zipfile.ZipFile(zip_path, "w") as out:
        for name, data in (
            ("bijie/landslide/image/t1.png", image),
            ("bijie/landslide/mask/t1.png", mask),
        ):
            out.writestr(name, data)
            folder, _, file = name.rpartition("/")
            out.writestr(f"__MACOSX/{folder}/._{file}", b"\x00\x05\x16\x07 resource fork")
    root = archive.open_dataset(zip_path)
    assert root == tmp_path / "slides" / "bijie"
    assert [s.stem for s in find_samples(zip_path, modalities="rgb")] == ["t1"]


# --- split lists that are not UTF-8 (Windows PowerShell 5 writes UTF-16 with `>`) -----------


def utf16_lists(folder: Path, stems: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cut = len(stems) * 3 // 5
    for name, part in (("train", stems[:cut]), ("val", stems[cut:]), ("test", stems[:0])):
        if part:
            (folder / f"{name}.txt").write_text("\r\n".join(part) + "\r\n", encoding="utf-16")
    return folder


def test_a_split_list_that_is_not_utf8_is_one_line_naming_it(tmp_path):
    """``read_split`` let ``UnicodeDecodeError`` escape: the command line printed "a damaged
    file" without saying which one."""
    samples = [Sample(f"t{i}", tmp_path / f"t{i}.png") for i in range(5)]
    lists = utf16_lists(tmp_path / "lists", [s.stem for s in samples])
    with pytest.raises(DataError) as exc:
        read_split(lists, samples)
    assert str(lists / "train.txt") in str(exc.value) and "\n" not in str(exc.value)


def test_data_check_reports_a_split_list_that_is_not_utf8_instead_of_raising(
    tmp_path, bijie_sample
):
    """``check_dataset`` promises never to raise: it raised ``UnicodeDecodeError``."""
    stems = sorted(p.stem for p in (bijie_sample / "landslide" / "image").glob("*.png"))
    lists = utf16_lists(tmp_path / "lists", stems)
    report = check_dataset(bijie_sample, modalities="rgb", split_dir=lists)
    assert not report.ok
    assert any(str(lists / "train.txt") in p for p in report.problems), report.problems


# --- Landslide4Sense copied from a Mac onto a FAT/exFAT drive: ._image_N.h5 files ------------


def test_l4s_skips_hidden_files_as_the_other_formats_do(tmp_path):
    """macOS writes an AppleDouble ``._<name>`` beside every file it copies to a FAT/exFAT
    drive. Bijie and folder skip hidden files; l4s took ``._image_1.h5`` for tile 1 and
    refused the dataset ("tile number 1 again")."""
    h5py = pytest.importorskip("h5py")
    for split in ("TrainData", "ValidData"):
        for number in (1, 2):
            for folder, key, name, shape in (
                ("img", "img", f"image_{number}.h5", (8, 8, 14)),
                ("mask", "mask", f"mask_{number}.h5", (8, 8)),
            ):
                path = tmp_path / split / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                with h5py.File(path, "w") as f:
                    f.create_dataset(key, data=np.zeros(shape, np.float32))
                (path.parent / f"._{name}").write_bytes(b"\x00\x05\x16\x07 resource fork")
    samples = find_l4s_samples(tmp_path)
    assert sorted(s.stem for s in samples) == ["train_1", "train_2", "val_1", "val_2"]
    assert all(not s.image.name.startswith(".") for s in samples)


# --- an extraction killed half-way (SIGKILL, out of memory, a notebook restart) -------------

KILLED_EXTRACTION = """
import os, signal, sys
from landslide_tf.data import archive
real = archive.safe_extract
def killed(zip_path, target, *args, **kwargs):
    real(zip_path, target, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)  # no finally runs, as with the OOM killer
archive.safe_extract = killed
archive.open_dataset(sys.argv[1])
"""


def test_the_copy_a_killed_extraction_left_is_removed_by_the_next_one(tmp_path):
    """The temporary copy of a killed extraction (a whole dataset, hidden beside the zip)
    was never removed: every killed attempt left one more."""
    zip_path = tmp_path / "slides.zip"
    with zipfile.ZipFile(zip_path, "w") as out:
        out.writestr("landslide/image/t1.png", b"image")
        out.writestr("landslide/mask/t1.png", b"mask")
    done = subprocess.run([sys.executable, "-c", KILLED_EXTRACTION, str(zip_path)], check=False)
    assert done.returncode == -signal.SIGKILL
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # the leftover
    assert archive.open_dataset(zip_path) == tmp_path / "slides"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slides", "slides.zip"]
    assert (tmp_path / "slides" / "landslide" / "image" / "t1.png").read_bytes() == b"image"
