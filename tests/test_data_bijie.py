"""Tests for the Bijie layout reader, the PNG readers, zip handling and loading one tile."""

import logging
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from bijie_options import load_sample

from landslide_tf.data import (
    Sample,
    find_samples,
    open_dataset,
    read_dem,
    read_mask,
    read_rgb,
    safe_extract,
)
from landslide_tf.errors import DataError, UserError


def _copy_tiles(src: Path, dst: Path, count: int = 3, negatives: int = 0) -> Path:
    """A small dataset made of the first tiles of ``src``."""
    groups = [("landslide", ("image", "dem", "mask"), count)]
    groups.append(("non-landslide", ("image", "dem"), negatives))
    for group, subs, n in groups:
        stems = sorted(p.stem for p in (src / group / "image").glob("*.png"))[:n]
        for sub in subs:
            (dst / group / sub).mkdir(parents=True, exist_ok=True)
            for stem in stems:
                shutil.copy(src / group / sub / f"{stem}.png", dst / group / sub / f"{stem}.png")
    return dst


@pytest.fixture
def small(synth_dir, tmp_path) -> Path:
    return _copy_tiles(synth_dir, tmp_path / "ds", count=3, negatives=2)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------ find_samples


def test_find_samples_landslide_only_by_default(synth_dir):
    samples = find_samples(synth_dir)
    assert len(samples) == 24
    assert all(s.landslide and s.mask is not None and s.dem is not None for s in samples)
    assert [s.stem for s in samples] == sorted(s.stem for s in samples)
    assert samples[0].image == synth_dir / "landslide" / "image" / f"{samples[0].stem}.png"


def test_find_samples_negatives_on_and_ratio(synth_dir):
    every = find_samples(synth_dir, negatives="on")
    negs = [s for s in every if not s.landslide]
    assert len(negs) == 6 and all(s.mask is None for s in negs)
    assert sum(not s.landslide for s in find_samples(synth_dir, negatives="0.125")) == 3
    assert sum(not s.landslide for s in find_samples(synth_dir, negatives=0.125)) == 3
    with pytest.raises(DataError, match="negatives"):
        find_samples(synth_dir, negatives="some")


def test_find_samples_rgb_on_real_sample(bijie_sample):
    samples = find_samples(bijie_sample, modalities="rgb")
    assert len(samples) == 20
    assert all(s.dem is None for s in samples)


def test_missing_folder_shows_expected_layout(tmp_path):
    with pytest.raises(DataError) as exc:
        find_samples(tmp_path)
    message = _one_line(exc)
    assert "landslide/{image,dem,mask}" in message and str(tmp_path) in message


def test_missing_dem_folder_for_rgb_dem(bijie_sample):
    with pytest.raises(DataError, match=r"landslide/dem: folder not found"):
        find_samples(bijie_sample)


def test_rgb_tiles_without_a_dem_folder_are_told_to_train_on_rgb(small, capsys):
    """The commonest real dataset (images and masks, no elevation) hears how to use it as it
    is, from train and from ``data check`` alike; ``--modalities rgb`` then reads it."""
    from landslide_tf.cli.train import main as train
    from landslide_tf.data.check import check_dataset

    shutil.rmtree(small / "landslide" / "dem")
    with pytest.raises(DataError) as exc:
        find_samples(small)
    message = _one_line(exc)
    assert "landslide/dem: folder not found" in message and "--modalities rgb" in message
    report = check_dataset(small)
    assert not report.ok and any("--modalities rgb" in p for p in report.problems)
    assert train(["--data", str(small), "--epochs", "1", "--run-dir", str(small / "r")]) == 2
    assert "--modalities rgb" in capsys.readouterr().err and not (small / "r").exists()
    assert len(find_samples(small, modalities="rgb")) == 3
    assert check_dataset(small, "rgb").usable["landslide"] == 3  # (too few for a val split)


def test_image_without_dem_names_the_file(small):
    (small / "landslide" / "dem" / "syn0001.png").unlink()
    with pytest.raises(DataError) as exc:
        find_samples(small)
    message = _one_line(exc)
    assert "no DEM for syn0001" in message and "dem/syn0001.png" in message
    assert len(find_samples(small, modalities="rgb")) == 3  # the DEM is not needed for rgb


def test_image_without_mask(small):
    (small / "landslide" / "mask" / "syn0002.png").unlink()
    with pytest.raises(DataError, match="no mask for syn0002"):
        find_samples(small)


def test_no_usable_tile(tmp_path):
    for sub in ("image", "dem", "mask"):
        (tmp_path / "landslide" / sub).mkdir(parents=True)
    with pytest.raises(DataError, match="no usable tile"):
        find_samples(tmp_path)


def test_non_png_file_in_folder(small):
    (small / "landslide" / "image" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes.txt: not a .png file"):
        find_samples(small)


def test_hint_when_pointing_at_parent(small):
    with pytest.raises(DataError, match="did you mean"):
        find_samples(small.parent)


# ------------------------------------------------------------------------------ readers


def test_read_rgb_is_rgb_order(tmp_path):
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out = read_rgb(path)
    assert out.shape == (5, 6, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [200, 0, 0]


def test_rgba_drops_alpha_with_warning(tmp_path, caplog):
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), np.full((4, 4, 4), 100, np.uint8))
    with caplog.at_level(logging.WARNING):
        out = read_rgb(path)
    assert out.shape == (4, 4, 3)
    assert "alpha channel dropped" in caplog.text and "rgba.png" in caplog.text


def test_grayscale_image_is_refused(tmp_path):
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), np.full((4, 4), 100, np.uint8))
    with pytest.raises(DataError) as exc:
        read_rgb(path)
    assert "gray.png: grayscale image" in _one_line(exc)


def test_16bit_dem_read_as_float(tmp_path):
    path = tmp_path / "dem16.png"
    dem = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    cv2.imwrite(str(path), dem)
    out = read_dem(path)
    assert out.dtype == np.float32 and out.max() == 57000.0
    np.testing.assert_array_equal(out, dem.astype(np.float32))


def test_colour_dem_with_equal_channels_is_gray(tmp_path):
    path = tmp_path / "dem3.png"
    cv2.imwrite(str(path), np.full((3, 3, 3), 77, np.uint8))
    assert read_dem(path).shape == (3, 3)


def test_mask_values_binarized_with_warning(tmp_path, caplog):
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), np.array([[0, 1], [128, 255]], np.uint8))
    with caplog.at_level(logging.WARNING):
        out = read_mask(path)
    assert out.tolist() == [[0, 1], [1, 1]]
    assert "binarized at > 0" in caplog.text and "mask.png" in caplog.text


def test_mask_0_255_no_warning(tmp_path, caplog):
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), np.array([[0, 255]], np.uint8))
    with caplog.at_level(logging.WARNING):
        assert read_mask(path).tolist() == [[0, 1]]
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"\xff\xd8\xff\xe0JFIF....", "a JPEG file; expected a PNG"),
        (b"hello world, not an image", "not a PNG file"),
    ],
)
def test_empty_and_non_png(tmp_path, content, expected):
    path = tmp_path / "tile.png"
    path.write_bytes(content)
    for reader in (read_rgb, read_dem, read_mask):
        with pytest.raises(DataError) as exc:
            reader(path)
        message = _one_line(exc)
        assert expected in message and str(path) in message


def test_corrupt_png(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = good.read_bytes()
    bad = tmp_path / "bad.png"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as exc:
        read_rgb(bad)
    assert "corrupt PNG" in _one_line(exc) and "bad.png" in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_rgb(tmp_path / "nope.png")


# ------------------------------------------------------------------------------ load_sample


def test_load_sample_shapes_and_ranges(synth_dir):
    sample = find_samples(synth_dir)[0]
    x, y = load_sample(sample, image_size=32)
    assert x.shape == (32, 32, 4) and y.shape == (32, 32, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x[..., 3].min() == 0.0 and x[..., 3].max() == pytest.approx(1.0)  # per-tile minmax
    assert set(np.unique(y)) <= {0.0, 1.0} and y.sum() > 0


@pytest.mark.parametrize(
    ("modalities", "derived", "channels"),
    [("rgb", (), 3), ("dem", (), 1), ("rgb+dem", ("slope", "hillshade"), 6)],
)
def test_load_sample_modalities(synth_dir, modalities, derived, channels):
    sample = find_samples(synth_dir, modalities=modalities)[0]
    x, _ = load_sample(sample, 16, modalities=modalities, derived=derived)
    assert x.shape == (16, 16, channels)


def test_load_sample_dataset_norm(synth_dir):
    sample = find_samples(synth_dir)[0]
    dem = read_dem(sample.dem)
    x, _ = load_sample(sample, 16, dem_norm="dataset", dem_stats=(100.0, 50.0))
    assert x[..., 3].min() < 0 or x[..., 3].max() > 1  # standardized, not min-max
    assert abs(float(x[..., 3].mean()) - (float(dem.mean()) - 100) / 50) < 0.1
    with pytest.raises(UserError, match="dem_stats"):  # the InputSpec refuses it
        load_sample(sample, 16, dem_norm="dataset")


def test_load_sample_negative_has_empty_mask(synth_dir):
    negative = next(s for s in find_samples(synth_dir, negatives="on") if not s.landslide)
    x, y = load_sample(negative, 16)
    assert x.shape == (16, 16, 4) and y.sum() == 0


def test_load_sample_real_rgb(bijie_sample):
    sample = find_samples(bijie_sample, modalities="rgb")[0]
    x, y = load_sample(sample, 32, modalities="rgb")
    assert x.shape == (32, 32, 3) and 0 < y.mean() < 1


def test_size_mismatch_is_resampled_and_reported(small, caplog):
    sample = find_samples(small)[0]
    dem = cv2.imread(str(sample.dem), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(sample.dem), cv2.resize(dem, (dem.shape[1] // 2, dem.shape[0] // 2)))
    mask = cv2.imread(str(sample.mask), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(sample.mask), cv2.resize(mask, (40, 30), interpolation=cv2.INTER_NEAREST))
    with caplog.at_level(logging.WARNING):
        x, y = load_sample(sample, 16)
    assert x.shape == (16, 16, 4) and y.shape == (16, 16, 1)
    assert caplog.text.count("resampled onto the image grid") == 2
    assert f"{sample.stem}.png: DEM is" in caplog.text


def test_load_sample_corrupt_file_is_one_line_data_error(small):
    sample = find_samples(small)[0]
    sample.dem.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError) as exc:
        load_sample(sample, 16)
    assert "corrupt PNG" in _one_line(exc) and str(sample.dem) in str(exc.value)


def test_sample_is_a_dataclass():
    sample = Sample("a", Path("i.png"), None, None, False)
    assert (sample.stem, sample.dem, sample.mask, sample.landslide) == ("a", None, None, False)


# ------------------------------------------------------------------------------ zip


def _zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return zip_path


def test_open_dataset_zip_extracts_once(small, tmp_path):
    zip_path = _zip_folder(small, tmp_path / "Bijie.zip", prefix="Bijie-landslide-dataset/")
    root = open_dataset(zip_path)
    assert root == tmp_path / "Bijie" / "Bijie-landslide-dataset"
    assert len(find_samples(zip_path)) == 3
    marker = next((tmp_path / "Bijie").glob(".landslide_tf_extracted"))
    before = marker.stat().st_mtime_ns
    assert open_dataset(zip_path) == root
    assert marker.stat().st_mtime_ns == before  # not extracted again


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil_abs.txt"])
def test_zip_path_traversal_refused(tmp_path, name):
    zip_path = tmp_path / "data.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("landslide/image/ok.txt", "fine")
        archive.writestr(name, "evil")
    with pytest.raises(DataError) as exc:
        open_dataset(zip_path)
    message = _one_line(exc)
    assert "refused to extract" in message and name in message
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "data").exists()  # nothing extracted at all


def test_zip_symlink_refused(tmp_path):
    zip_path = tmp_path / "link.zip"
    info = zipfile.ZipInfo("landslide/link")
    info.external_attr = (0o120777 << 16) | 0
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract(zip_path, tmp_path / "out")


def test_bad_zip(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        open_dataset(path)


def test_zip_without_layout(tmp_path):
    zip_path = tmp_path / "other.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("readme.txt", "nothing here")
    with pytest.raises(DataError, match="no landslide/ folder"):
        open_dataset(zip_path)


def test_open_dataset_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        open_dataset(tmp_path / "absent")


def test_bit_flip_is_a_checksum_error(tmp_path):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.full((16, 16, 3), 90, np.uint8))
    data = bytearray(good.read_bytes())
    data[-20] ^= 0xFF  # inside the image data
    bad = tmp_path / "flip.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"flip.png: corrupt PNG \(checksum error in chunk"):
        read_rgb(bad)
