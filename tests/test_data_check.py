"""Tests for check_dataset: every problem listed, one line each, usable or not."""

import shutil
from pathlib import Path

import cv2
import numpy as np

from landslide_tf.data import check_dataset


def _copy(src: Path, dst: Path, count: int = 4, negatives: int = 1) -> Path:
    for group, subs, n in (
        ("landslide", ("image", "dem", "mask"), count),
        ("non-landslide", ("image", "dem"), negatives),
    ):
        stems = sorted(p.stem for p in (src / group / "image").glob("*.png"))[:n]
        for sub in subs:
            (dst / group / sub).mkdir(parents=True, exist_ok=True)
            for stem in stems:
                shutil.copy(src / group / sub / f"{stem}.png", dst / group / sub / f"{stem}.png")
    return dst


def test_synthetic_is_ok(synth_dir):
    report = check_dataset(synth_dir)
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.usable == {"landslide": 24, "non-landslide": 6}
    assert report.counts["landslide/mask"] == 24 and report.counts["non-landslide/dem"] == 6
    assert 80 <= min(report.size_min) and max(report.size_max) <= 300
    assert 0.05 < report.landslide_share < 0.25
    text = report.format()
    assert "usable tiles: 24 landslide, 6 non-landslide" in text and "result: OK" in text


def test_real_sample_rgb_is_ok(bijie_sample):
    report = check_dataset(bijie_sample, modalities="rgb")
    assert report.ok, report.format()
    assert report.usable["landslide"] == 20
    assert "non-landslide" in " ".join(report.notes)  # absent negatives: a note, not a problem
    assert not check_dataset(bijie_sample).ok  # rgb+dem needs landslide/dem


def test_lists_every_problem(synth_dir, tmp_path):
    root = _copy(synth_dir, tmp_path / "ds")
    image_dir, dem_dir, mask_dir = (root / "landslide" / s for s in ("image", "dem", "mask"))
    data = (image_dir / "syn0000.png").read_bytes()
    (image_dir / "syn0000.png").write_bytes(data[: len(data) // 2])  # corrupt
    (dem_dir / "syn0001.png").write_bytes(b"")  # empty
    (mask_dir / "syn0002.png").unlink()  # image without mask
    gray = cv2.imread(str(image_dir / "syn0003.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(image_dir / "syn0003.png"), gray)  # grayscale image
    (image_dir / "extra.jpg").write_bytes(b"\xff\xd8\xff")  # non-PNG file
    report = check_dataset(root)
    assert not report.ok
    joined = "\n".join(report.problems)
    assert len(report.problems) == 6, joined
    assert "syn0000.png: corrupt PNG (truncated inside chunk IDAT)" in joined
    assert "syn0001.png: empty file" in joined
    assert "no mask for syn0002" in joined
    assert "syn0003.png: grayscale image" in joined
    assert "extra.jpg: not a .png file" in joined
    assert "no usable landslide tile" in report.problems[-1]
    assert all("\n" not in p for p in report.problems)
    assert report.usable["landslide"] == 0
    assert "result: NOT USABLE" in report.format()


def test_fixable_oddities_are_warnings(synth_dir, tmp_path):
    root = _copy(synth_dir, tmp_path / "ds", count=6, negatives=0)  # 6: no empty split
    mask_path = root / "landslide/mask/syn0000.png"
    mask = cv2.imread(str(mask_path), 0)
    cv2.imwrite(str(mask_path), (mask > 0).astype(np.uint8))  # 0/1 mask
    dem_path = root / "landslide/dem/syn0001.png"
    dem = cv2.imread(str(dem_path), 0)
    cv2.imwrite(str(dem_path), cv2.resize(dem, (50, 40)))  # another size
    image_path = root / "landslide/image/syn0002.png"
    image = cv2.imread(str(image_path))
    cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))  # RGBA
    (root / "landslide/dem/orphan.png").write_bytes(dem_path.read_bytes())
    report = check_dataset(root)
    assert report.ok, report.format()
    joined = "\n".join(report.warnings)
    assert "binarized at > 0" in joined
    assert "syn0001.png: 50x40 px but the image is" in joined
    assert "alpha channel dropped" in joined
    assert "orphan.png: no image" in joined


def test_mixed_dem_bit_depths_warn(synth_dir, tmp_path):
    root = _copy(synth_dir, tmp_path / "ds", count=6, negatives=0)  # 6: no empty split
    path = root / "landslide/dem/syn0000.png"
    cv2.imwrite(str(path), cv2.imread(str(path), 0).astype(np.uint16) * 256)
    report = check_dataset(root)
    assert report.ok and any("8-bit and 16-bit" in w for w in report.warnings)


def test_missing_root_and_layout(tmp_path):
    report = check_dataset(tmp_path / "absent")
    assert not report.ok and "no such file or folder" in report.problems[0]
    report = check_dataset(tmp_path)
    assert not report.ok
    assert any("landslide: folder not found" in p for p in report.problems)


def test_unknown_modalities(synth_dir):
    report = check_dataset(synth_dir, modalities="rgbd")
    assert not report.ok and "unknown modalities" in report.problems[0]


def test_split_is_the_one_train_plans_with_the_same_negatives(synth_dir, tmp_path, capsys):
    from landslide_tf.cli.data import main
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.fit import prepare_splits

    counts = {}
    for negatives in ("on", "0.1"):
        config = TrainConfig(data=str(synth_dir), negatives=negatives, seed=3, batch_size=1)
        planned = prepare_splits(config, synth_dir, tmp_path / negatives)[0]
        counts[negatives] = {name: len(tiles) for name, tiles in planned.items()}
        report = check_dataset(synth_dir, seed=3, negatives=negatives)
        assert report.splits == counts[negatives]
        assert sum(report.splits.values()) > 24  # negatives included
    assert main(["check", str(synth_dir), "--seed", "3", "--negatives", "on"]) == 0
    shown = ", ".join(f"{k} {v}" for k, v in counts["on"].items())
    assert f"split used by train (seed 3, negatives on): {shown}" in capsys.readouterr().out
    assert check_dataset(synth_dir, negatives="bogus").problems[0].startswith("negatives='bogus'")
