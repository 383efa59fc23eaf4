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


# --- case 2: a replaced zip is extracted again; a damaged entry stops in one line -------------


def _tiny_bijie(root: Path, n: int = 3, seed: int = 0) -> Path:
    from landslide_tf.data import synthesize

    synthesize(root, n, seed, 0, 32, 32)
    return root


def _zip(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    import zipfile

    with zipfile.ZipFile(zip_path, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, prefix + path.relative_to(folder).as_posix())
    return zip_path


def test_a_zip_replaced_by_another_with_the_same_name_is_extracted_again(tmp_path, capsys):
    from landslide_tf.data import archive

    first = _tiny_bijie(tmp_path / "a", n=6, seed=0)  # 6 and 8: check finds no empty split
    second = _tiny_bijie(tmp_path / "b", n=8, seed=1)
    data = tmp_path / "data"
    data.mkdir()
    zip_path = _zip(first, data / "X.zip")
    assert call(data_cli.main, ["check", str(zip_path)]) == 0
    old = tree(data / "X")
    assert sum(1 for p in old if p.startswith("landslide/image/")) == 6

    _zip(second, data / "X.zip")  # same name, other content
    os.utime(zip_path, ns=(1, (data / "X").stat().st_mtime_ns))  # even an older mtime
    assert call(data_cli.main, ["check", str(zip_path)]) == 0
    new = tree(data / "X")
    assert sum(1 for p in new if p.startswith("landslide/image/")) == 8
    assert new != old
    marker = (data / "X" / archive.EXTRACTED_MARKER).read_text().splitlines()
    assert marker[1] == archive.zip_key(zip_path)
    assert sorted(p.name for p in data.iterdir()) == ["X", "X.zip"]  # no staging left

    key = archive.zip_key(zip_path)  # unchanged zip: reused as it is
    (data / "X" / "mine.txt").write_text("kept")
    assert archive.open_dataset(zip_path) == data / "X" and archive.zip_key(zip_path) == key
    assert (data / "X" / "mine.txt").is_file()


def _damaged_zip(tmp_path: Path, how: str) -> Path:
    """A one-tile Bijie zip whose image entry fails its CRC or declares a false size."""
    import zipfile

    folder = _tiny_bijie(tmp_path / "src", n=1)
    zip_path = tmp_path / "bad.zip"
    method = zipfile.ZIP_STORED if how == "crc" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(zip_path, "w", compression=method) as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder).as_posix())
    with zipfile.ZipFile(zip_path) as z:
        info = next(i for i in z.infolist() if i.filename.startswith("landslide/image/"))
    data = bytearray(zip_path.read_bytes())
    if how == "crc":  # flip a byte inside the stored image data
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        data[start + info.file_size // 2] ^= 0xFF
    else:  # the sizes in the local header and the central directory claim 100 bytes more
        real = info.file_size.to_bytes(4, "little")
        fake = (info.file_size + 100).to_bytes(4, "little")
        assert data.count(real) >= 2
        data = bytearray(bytes(data).replace(real, fake))
    zip_path.write_bytes(bytes(data))
    return zip_path


@pytest.mark.parametrize(
    ("how", "reason"), [("crc", "Bad CRC-32"), ("size", "declares")], ids=["crc", "size"]
)
def test_a_damaged_zip_entry_stops_naming_it_and_is_not_marked_extracted(
    how, reason, tmp_path, capsys
):
    zip_path = _damaged_zip(tmp_path, how)
    before = tree(tmp_path)
    assert call(data_cli.main, ["check", str(zip_path)]) == 1  # check lists it as a problem
    out = capsys.readouterr().out
    assert "landslide/image/" in out and reason in out and "download" in out, out
    assert tree(tmp_path) == before  # nothing extracted, nothing marked complete
    from landslide_tf.cli import train as train_cli

    rc = call(train_cli.main, ["--data", str(zip_path), "--run-dir", str(tmp_path / "run")])
    line = one_error_line(capsys)
    assert rc == 2 and "landslide/image/" in line and reason in line, line
    assert tree(tmp_path) == before


# --- case 15: layout messages ----------------------------------------------------------------


def test_a_zip_with_the_layout_three_folders_deep_is_found_and_said(tmp_path, caplog):
    from landslide_tf.data import archive

    folder = _tiny_bijie(tmp_path / "src", n=2)
    zip_path = _zip(folder, tmp_path / "deep.zip", prefix="a/b/c/")
    with caplog.at_level("WARNING"):
        root = archive.open_dataset(zip_path)
    assert root == tmp_path / "deep" / "a" / "b" / "c"
    assert "3 folders deep" in caplog.text and str(root) in caplog.text


def test_a_zip_without_the_layout_says_where_it_looked_and_what_to_pass(tmp_path, capsys):
    src = tmp_path / "src" / "x" / "y"
    src.mkdir(parents=True)
    (src / "readme.txt").write_text("no tiles")
    zip_path = _zip(tmp_path / "src", tmp_path / "empty.zip")
    assert call(data_cli.main, ["check", str(zip_path)]) == 1
    out = capsys.readouterr().out
    assert "no landslide/ folder within 4 folder levels" in out, out
    assert "pass the folder that holds landslide/" in out


def test_check_on_images_and_dem_without_masks_names_masks(tmp_path, capsys):
    root = tmp_path / "d"
    for sub in ("images", "dem"):
        (root / sub).mkdir(parents=True)
        (root / sub / "a.tif").write_bytes(b"II*\0")
    before = tree(tmp_path)
    assert call(data_cli.main, ["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'masks'}: folder not found" in out, out
    assert "landslide/" not in out  # not the Bijie layout
    assert tree(tmp_path) == before


# --- case 11: a JPEG named .png or a grayscale image: exit 2, not an abort -------------------


def _spoil_one_image(root: Path, how: str) -> Path:
    import cv2

    path = sorted((root / "landslide" / "image").glob("*.png"))[1]
    rgb = cv2.imread(str(path))
    if how == "jpeg":
        path.write_bytes(cv2.imencode(".jpg", rgb)[1].tobytes())
    else:
        path.write_bytes(cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY))[1].tobytes())
    return path


@pytest.mark.parametrize(
    ("how", "message"),
    [("jpeg", "a JPEG file; expected a PNG image"), ("gray", "grayscale image (1 channel)")],
)
def test_the_pipeline_checks_a_bad_image_before_any_iterator_decodes(
    how, message, tmp_path, monkeypatch
):
    from landslide_tf.data import bijie_spec, find_samples, pipeline
    from landslide_tf.errors import DataError

    root = _tiny_bijie(tmp_path / "d", n=3)
    bad = _spoil_one_image(root, how)

    def never(*args):  # the decode threads must not even start
        raise AssertionError("decoded before the files were checked")

    monkeypatch.setattr(pipeline.TileReader, "__call__", never)
    with pytest.raises(
        DataError, match=f"{bad}: {message}".replace("(", r"\(").replace(")", r"\)")
    ):
        pipeline.make_dataset(find_samples(root), bijie_spec(32))


@pytest.mark.parametrize(
    ("how", "message"),
    [("jpeg", "a JPEG file; expected a PNG image"), ("gray", "grayscale image (1 channel)")],
)
def test_train_on_a_bad_image_exits_2_without_aborting(how, message, tmp_path):
    root = _tiny_bijie(tmp_path / "d", n=12)
    bad = _spoil_one_image(root, how)
    before = tree(root)
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "landslide_tf.train", "--model", "unet", "--data", str(root),
         "--run-dir", str(run), "--epochs", "1", "--image-size", "32", "--base-filters", "4",
         "--depth", "2", "--batch-size", "4", "--verbose", "0"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad}: {message}"), errors
    assert "terminate called" not in done.stderr and "Traceback" not in done.stderr
    assert tree(root) == before  # the data is untouched


# --- case 7: a band NaN in every file stops check and train with its name ------------------


def _l4s_with_a_dead_band(root: Path, band: int = 12) -> Path:
    h5py = pytest.importorskip("h5py")
    from band_data import make_l4s

    make_l4s(root, counts=(("TrainData", 6), ("ValidData", 2), ("TestData", 2)), size=32)
    for path in root.rglob("image_*.h5"):
        with h5py.File(path, "r+") as f:
            data = f["img"][...]
            data[..., band] = np.nan
            f["img"][...] = data
    return root


def test_a_band_nan_in_every_file_stops_check_and_train_with_its_name(tmp_path, capsys):
    from landslide_tf.cli import train as train_cli
    from landslide_tf.data.bands import L4S_BANDS

    root = _l4s_with_a_dead_band(tmp_path / "l4s")
    name = L4S_BANDS[12]
    before = tree(root)
    assert call(data_cli.main, ["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"band {name}: no valid value in the training split" in out, out
    assert "--bands" in out
    run = tmp_path / "run"
    argv = ["--data", str(root), "--run-dir", str(run), "--image-size", "32", "--epochs", "1"]
    rc = call(train_cli.main, argv)
    line = one_error_line(capsys)
    assert rc == 2 and f"band {name}: no valid value in the training split" in line, line
    assert tree(root) == before
    assert not any(run.glob("*.keras"))  # stopped before training


def test_a_band_nan_in_every_folder_file_is_named_too(tmp_path):
    pytest.importorskip("rasterio")
    from band_data import make_geotiff_folder

    from landslide_tf.data import check_dataset

    root = make_geotiff_folder(tmp_path / "f", n=6, size=16, bands=3, dem=False)
    rasterio = pytest.importorskip("rasterio")
    for path in (root / "images").glob("*.tif"):
        with rasterio.open(path, "r+") as ds:
            data = ds.read()
            data[1] = 0  # band 2 is nodata (0) everywhere
            ds.write(data)
    report = check_dataset(root)
    assert not report.ok
    assert any("band 2: no valid value in the training split" in p for p in report.problems)


# --- case 8: chips of a zero border; a mask with several classes -----------------------------


def _bordered_scene(root: Path) -> tuple[Path, Path]:
    """A 3-band 128 px scene whose outer ring is 0 in every band, with no nodata tag."""
    from band_data import write_tif

    rng = np.random.default_rng(0)
    image = np.zeros((128, 128, 3), np.uint8)
    image[32:96, 32:96] = rng.integers(1, 255, (64, 64, 3))
    truth = np.zeros((128, 128), np.uint8)
    truth[40:60, 40:60] = 1
    return write_tif(root / "scene.tif", image), write_tif(root / "labels.tif", truth)


def test_chip_of_a_zero_border_warns_and_skip_empty_leaves_it_out(tmp_path, capsys, caplog):
    pytest.importorskip("rasterio")
    image, mask = _bordered_scene(tmp_path / "in")
    argv = _chip_argv(image, mask, tmp_path / "a", "--negatives", "10")
    with caplog.at_level("WARNING"):
        assert call(data_cli.main, argv) == 0
    assert "are 0 in every band" in caplog.text and "--skip-empty" in caplog.text
    kept = tree(tmp_path / "a")
    caplog.clear()
    argv = _chip_argv(image, mask, tmp_path / "b", "--negatives", "10", "--skip-empty")
    with caplog.at_level("WARNING"):
        assert call(data_cli.main, argv) == 0
    assert "--skip-empty" not in caplog.text
    out = capsys.readouterr().out
    assert "all-zero" in out
    rasterio = pytest.importorskip("rasterio")
    chips = sorted((tmp_path / "b" / "images").glob("*.tif"))
    assert chips and len(chips) < len([p for p in kept if p.startswith("images/")])
    for path in chips:
        with rasterio.open(path) as ds:
            assert ds.read().any()  # no all-zero chip


def test_chip_mask_with_several_classes_stops_unless_mapped(tmp_path, capsys):
    rasterio = pytest.importorskip("rasterio")
    from band_data import write_tif

    image, _ = _chip_scene(tmp_path / "in", size=128)
    truth = np.zeros((128, 128), np.uint8)
    truth[10:40, 10:40] = 1
    truth[70:100, 70:100] = 2
    mask = write_tif(tmp_path / "in" / "classes.tif", truth)
    before = tree(tmp_path)
    rc = call(data_cli.main, _chip_argv(image, mask, tmp_path / "out"))
    line = one_error_line(capsys)
    assert rc == 2 and "mask values {0, 1, 2}" in line and "--mask-classes" in line, line
    assert tree(tmp_path) == before

    argv = _chip_argv(image, mask, tmp_path / "two", "--mask-classes", "2", "--negatives", "0")
    assert call(data_cli.main, argv) == 0
    for path in (tmp_path / "two" / "masks").glob("*.tif"):
        with rasterio.open(path) as ds:
            assert set(np.unique(ds.read(1)).tolist()) <= {0, 1}
    names = [p.name for p in (tmp_path / "two" / "images").glob("*.tif")]
    assert names and all(int(n.split("_r")[1][:5]) >= 32 for n in names)  # class 2's chips only


# --- case 5: one DEM nodata rule in check, train, evaluate and predict ------------------------


def _bijie_with_spiked_dems(root: Path, value: int = 65535) -> Path:
    """A tiny Bijie dataset whose DEMs are 16-bit PNGs with a ``value`` block, no tag."""
    import cv2

    _tiny_bijie(root, n=6)
    for path in sorted((root / "landslide" / "dem").glob("*.png")):
        dem = np.linspace(1200, 1800, 32 * 32).reshape(32, 32).astype(np.uint16)
        dem[:8, :8] = value
        cv2.imwrite(str(path), dem)
    return root


def test_a_16_bit_dem_spike_stops_train_and_the_loader_with_the_flag_to_pass(tmp_path, capsys):
    from landslide_tf.cli import train as train_cli
    from landslide_tf.data import bijie_spec, find_samples, pipeline, training_statistics
    from landslide_tf.errors import DataError

    root = _bijie_with_spiked_dems(tmp_path / "d")
    before = tree(root)
    assert call(data_cli.main, ["check", str(root)]) == 0  # check warns ...
    assert "likely nodata; train with --dem-nodata 65535" in capsys.readouterr().out
    run = tmp_path / "run"
    rc = call(train_cli.main, ["--data", str(root), "--run-dir", str(run), "--epochs", "1"])
    line = one_error_line(capsys)  # ... train stops
    assert rc == 2 and "65535" in line and "--dem-nodata 65535" in line, line
    assert tree(root) == before and not any(run.glob("*.keras"))
    samples = find_samples(root)
    with pytest.raises(DataError, match="--dem-nodata 65535"):  # evaluate's loader too
        pipeline.load_tile(samples[0], bijie_spec(32))
    x, _ = pipeline.load_tile(samples[0], bijie_spec(32, nodata=65535.0))
    assert np.isfinite(x).all()
    stats = training_statistics(samples, nodata=65535.0)["dem_stats"]
    assert 1200 <= stats[0] <= 1800  # the spike is not elevation


def _folder_with_dem(root: Path, dem_value: float, tag: float | None = None) -> Path:
    rasterio = pytest.importorskip("rasterio")
    from band_data import make_geotiff_folder, write_tif

    make_geotiff_folder(root, n=6, size=16, bands=2, dem=True)
    for path in (root / "dem").glob("*.tif"):
        elevation = np.linspace(1000, 1100, 16 * 16).reshape(16, 16).astype(np.float32)
        elevation[:4, :4] = dem_value
        with rasterio.open(root / "images" / path.name) as ds:
            transform = ds.transform  # on its image's grid (a DEM elsewhere is refused)
        write_tif(path, elevation, transform=transform, nodata=tag)
    return root


def test_dem_nodata_is_applied_to_folder_data(tmp_path, capsys):
    from landslide_tf.cli import train as train_cli
    from landslide_tf.data import training_statistics
    from landslide_tf.data.formats import default_spec, find_format_samples, read_tile
    from landslide_tf.errors import DataError

    root = _folder_with_dem(tmp_path / "f", -9999.0)
    before = tree(root)
    assert call(data_cli.main, ["check", str(root)]) == 0
    assert "--dem-nodata -9999" in capsys.readouterr().out
    run = tmp_path / "run"
    argv = ["--data", str(root), "--run-dir", str(run), "--epochs", "1", "--image-size", "16"]
    rc = call(train_cli.main, argv)
    line = one_error_line(capsys)
    assert rc == 2 and "-9999" in line and "--dem-nodata -9999" in line, line
    assert tree(root) == before
    samples = find_format_samples("folder", root)
    with_flag = training_statistics(samples, "folder", root=root, nodata=-9999.0)
    dem_mean, _ = with_flag["band_stats"]["params"][-1]
    assert 1000 <= dem_mean <= 1100  # -9999 left out: the flag is applied, not just recorded
    spec = default_spec("folder", root, size=16)
    with pytest.raises(DataError, match="--dem-nodata -9999"):
        read_tile(samples[0], spec)
    image, _, _, _ = read_tile(samples[0], spec.replace(nodata=-9999.0))
    assert np.isnan(image[:4, :4, -1]).all() and np.isfinite(image[4:, 4:, -1]).all()


def test_a_geotiff_nodata_tag_is_enough(tmp_path):
    from landslide_tf.data import training_statistics
    from landslide_tf.data.formats import find_format_samples

    root = _folder_with_dem(tmp_path / "f", -9999.0, tag=-9999.0)
    samples = find_format_samples("folder", root)
    dem_mean, _ = training_statistics(samples, "folder", root=root)["band_stats"]["params"][-1]
    assert 1000 <= dem_mean <= 1100


def test_predict_scene_dem_with_a_spike_stops_unless_flagged(tmp_path):
    pytest.importorskip("rasterio")
    from band_data import write_tif

    from landslide_tf.data.spec import bijie_spec
    from landslide_tf.errors import DataError
    from landslide_tf.inference.scene_io import open_scene

    elevation = np.linspace(1000, 1100, 64 * 64).reshape(64, 64).astype(np.float32)
    elevation[:, :20] = -9999.0
    dem = write_tif(tmp_path / "dem.tif", elevation)
    spec = bijie_spec(32, modalities="dem")
    with pytest.raises(DataError, match=r"dem.tif: .*-9999.*--dem-nodata -9999"):
        open_scene(None, dem, spec=spec)
    open_scene(None, dem, spec=spec, dem_nodata=-9999.0).close()  # --dem-nodata
    open_scene(None, dem, spec=spec.replace(nodata=-9999.0)).close()  # the run's own value


def test_a_multiband_run_keeps_its_dem_nodata_for_inference():
    from keras import ops

    from landslide_tf.data.preprocess import preprocess
    from landslide_tf.data.spec import InputSpec

    config = {
        "data_format": "folder",
        "bands": ["1", "dem"],
        "band_stats": {"method": "standard", "params": [[0.0, 1.0], [1050.0, 30.0]]},
        "available_bands": ["1", "dem"],
        "band_indices": [0, 1],
        "image_size": 8,
        "dem_nodata": -9999.0,
    }
    spec = InputSpec.from_config(config)
    assert spec.nodata == -9999.0
    image = np.full((8, 8, 2), 1050.0, np.float32)
    image[:4, :, 1] = -9999.0
    x = ops.convert_to_numpy(preprocess(image, None, spec))
    np.testing.assert_allclose(x[..., 1], 0.0)  # -9999 filled like NaN, not -368 std


# --- the real data: the new checks raise no false alarm ---------------------------------------

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "l4s-rgb-dev"


@pytest.mark.skipif(not (REAL / "landslide").is_dir(), reason=f"real data absent ({REAL})")
def test_the_real_rgb_tiles_pass_the_file_checks_before_decoding():
    from landslide_tf.data import bijie_spec, find_samples, pipeline

    samples = find_samples(REAL, modalities="rgb")[:200]  # read only, never written
    pipeline.validate_files(samples, bijie_spec(128, modalities="rgb"))


# --- a damaged GeoTIFF (header intact, pixels cut off) ------------------------------------


def test_a_truncated_geotiff_is_named_by_check_and_by_the_loader(tmp_path, capsys):
    pytest.importorskip("rasterio")
    from band_data import make_geotiff_folder

    from landslide_tf.data import formats
    from landslide_tf.data.pipeline import load_tile
    from landslide_tf.errors import DataError

    root = make_geotiff_folder(tmp_path / "f", n=4, size=64, bands=3, dem=False)
    bad = root / "images" / "t02.tif"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not
    rc = call(data_cli.main, ["check", str(root)])
    out = capsys.readouterr().out
    assert rc != 0 and f"problem: {bad}: damaged GeoTIFF" in out, out
    samples = formats.find_format_samples("folder", root)
    spec = formats.default_spec("folder", root, size=32)
    with pytest.raises(DataError, match=r"t02\.tif: damaged GeoTIFF, its pixels cannot be read"):
        load_tile(samples[2], spec)
