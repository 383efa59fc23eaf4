"""Tests for the synthetic Bijie-like generator and the default dataset."""

import json

import cv2
import numpy as np
import pytest

from landslide_tf.data import default_data_dir, ensure_default_dataset, synthesize
from landslide_tf.data.synthetic import make_tile


def _steepness(dem: np.ndarray) -> np.ndarray:
    """Relief-independent steepness of an 8-bit DEM (change per tile width / relief)."""
    dem = cv2.GaussianBlur(dem.astype(np.float32), (0, 0), 1.5)
    gy, gx = np.gradient(dem)
    return np.hypot(gx, gy) * max(dem.shape) / max(float(np.ptp(dem)), 1.0)


def test_layout_and_formats(synth_dir):
    for group, subs, count in (
        ("landslide", ("image", "dem", "mask"), 24),
        ("non-landslide", ("image", "dem"), 6),  # default negatives: n // 4
    ):
        for sub in subs:
            assert len(list((synth_dir / group / sub).glob("*.png"))) == count
    assert not (synth_dir / "non-landslide" / "mask").exists()
    image = cv2.imread(str(synth_dir / "landslide/image/syn0000.png"), cv2.IMREAD_UNCHANGED)
    dem = cv2.imread(str(synth_dir / "landslide/dem/syn0000.png"), cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(str(synth_dir / "landslide/mask/syn0000.png"), cv2.IMREAD_UNCHANGED)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    assert dem.ndim == 2 and dem.dtype == np.uint8 and dem.shape == image.shape[:2]
    assert set(np.unique(mask)) == {0, 255} and mask.shape == image.shape[:2]
    info = json.loads((synth_dir / "synthetic.json").read_text())
    assert (info["n"], info["negatives"], info["seed"]) == (24, 6, 0)


def test_sizes_vary_within_range(synth_dir):
    shapes = [cv2.imread(str(p)).shape[:2] for p in (synth_dir / "landslide/image").glob("*.png")]
    sides = np.array(shapes)
    assert sides.min() >= 80 and sides.max() <= 300
    assert sides.max() - sides.min() > 100


def test_landslide_share(synth_dir):
    shares = [
        (cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0).mean()
        for p in (synth_dir / "landslide/mask").glob("*.png")
    ]
    assert all(0.02 < s < 0.35 for s in shares)
    assert 0.07 < np.mean(shares) < 0.2


def test_scars_on_slopes_lookalikes_on_flat_ground(synth_dir):
    scar_steep, bare_steep, negative_bare = [], [], []
    for group in ("landslide", "non-landslide"):
        for path in sorted((synth_dir / group / "image").glob("*.png")):
            rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(int)
            steep = _steepness(cv2.imread(str(synth_dir / group / "dem" / path.name), 0))
            bare = rgb[..., 0] > rgb[..., 1] + 15  # soil is redder than vegetation
            scar = np.zeros(bare.shape, bool)
            if group == "landslide":
                scar = cv2.imread(str(synth_dir / group / "mask" / path.name), 0) > 0
                scar_steep.append(np.median(steep[scar]))
            fake = bare & ~cv2.dilate(scar.astype(np.uint8), np.ones((5, 5))).astype(bool)
            if fake.sum() > 20:
                bare_steep.append(np.median(steep[fake]))
            if group == "non-landslide":
                negative_bare.append(fake.mean())
    # Scars sit on steep slopes; look-alike bare soil sits on (nearly) flat ground.
    assert np.median(scar_steep) > 4 * np.median(bare_steep)
    assert len(bare_steep) > 20  # look-alikes in most tiles, landslide ones included
    assert all(share > 0 for share in negative_bare)


def test_scar_and_lookalike_colours_match(synth_dir):
    scar_colours, fake_colours = [], []
    for path in sorted((synth_dir / "landslide" / "image").glob("*.png")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(float)
        scar = cv2.imread(str(synth_dir / "landslide/mask" / path.name), 0) > 0
        core = cv2.erode(scar.astype(np.uint8), np.ones((3, 3))).astype(bool)
        bare = (rgb[..., 0] > rgb[..., 1] + 15) & ~cv2.dilate(
            scar.astype(np.uint8), np.ones((5, 5))
        ).astype(bool)
        if core.sum() > 20:
            scar_colours.append(rgb[core].mean(axis=0))
        if bare.sum() > 20:
            fake_colours.append(rgb[bare].mean(axis=0))
    difference = np.abs(np.mean(scar_colours, axis=0) - np.mean(fake_colours, axis=0))
    assert difference.max() < 15  # same bare-soil palette on average (0..255 scale)


def test_deterministic_and_prefix(tmp_path):
    a = synthesize(tmp_path / "a", n=3, seed=5, negatives=1, max_size=120)
    b = synthesize(tmp_path / "b", n=3, seed=5, negatives=1, max_size=120)
    c = synthesize(tmp_path / "c", n=2, seed=5, negatives=0, max_size=120)
    d = synthesize(tmp_path / "d", n=2, seed=6, negatives=0, max_size=120)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 3 * 3 + 2
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    for rel in sorted(p.relative_to(c) for p in c.rglob("*.png")):
        assert (a / rel).read_bytes() == (c / rel).read_bytes()  # a smaller n is a prefix
    rel = "landslide/image/syn0000.png"
    assert (c / rel).read_bytes() != (d / rel).read_bytes()


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_smaller_set_replaces_a_larger_one_as_a_whole(tmp_path):
    out = tmp_path / "data"
    synthesize(out, n=6, seed=1, max_size=40, min_size=32)
    synthesize(out, n=2, seed=2, max_size=40, min_size=32)
    alone = _tree(synthesize(tmp_path / "alone", n=2, seed=2, max_size=40, min_size=32))
    assert _tree(out) == alone  # the n=2 set only: no tile of the seed-1 set left
    assert json.loads((out / "synthetic.json").read_text())["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "data"]  # no staging left


def test_a_folder_with_other_files_is_refused_and_untouched(tmp_path):
    from landslide_tf.errors import UserError

    out = synthesize(tmp_path / "data", n=2, seed=0, negatives=0, max_size=40, min_size=32)
    (out / "landslide" / "mask" / "my_fix.png").write_bytes(b"mine")
    before = _tree(out)
    with pytest.raises(UserError, match="holds more than a synthetic set") as exc:
        synthesize(out, n=3, seed=0, max_size=40, min_size=32)
    assert "my_fix.png" in str(exc.value) and "\n" not in str(exc.value)
    assert _tree(out) == before
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="nothing was written"):
        synthesize(user, n=1)
    assert _tree(user) == {"notes.txt": b"mine"}
    with pytest.raises(UserError, match="is a file"):
        synthesize(user / "notes.txt", n=1)


def test_make_tile_sizes():
    rgb, dem, mask = make_tile(np.random.default_rng(0), True, min_size=40, max_size=50)
    assert 40 <= rgb.shape[0] <= 50 and rgb.shape[:2] == dem.shape == mask.shape
    _, _, empty = make_tile(np.random.default_rng(1), False, min_size=40, max_size=50)
    assert empty.max() == 0


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        synthesize(tmp_path, n=0)
    with pytest.raises(ValueError, match="tile sizes"):
        synthesize(tmp_path, n=1, min_size=100, max_size=50)


def test_default_dataset_generated_once(tmp_path, monkeypatch):
    target = tmp_path / "default"
    monkeypatch.setenv("LANDSLIDE_TF_DATA", str(target))
    assert default_data_dir() == target
    root = ensure_default_dataset(n=2, seed=0)
    assert root == target
    assert len(list((root / "landslide/image").glob("*.png"))) == 2
    marker = root / "synthetic.json"
    before = marker.stat().st_mtime_ns
    assert ensure_default_dataset(n=2, seed=0) == root
    assert marker.stat().st_mtime_ns == before
    assert not list(tmp_path.glob(".default.tmp-*"))


def test_default_dir_without_env(monkeypatch, tmp_path):
    monkeypatch.delenv("LANDSLIDE_TF_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "landslide_tf" / "synthetic-v1"


def test_links_and_empty_folders_of_the_user_are_refused_and_kept(tmp_path):
    """A folder holding only a user's link or empty folder is not empty: refused, kept; a
    linked --out is refused rather than replaced by a folder."""
    from landslide_tf.errors import UserError

    target = tmp_path / "userdata"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / "mylink").symlink_to(target)
    (out / "emptysub").mkdir()
    with pytest.raises(UserError, match="holds more than a synthetic set"):
        synthesize(out, n=1)
    assert sorted(p.name for p in out.iterdir()) == ["emptysub", "mylink"]
    assert (out / "mylink").is_symlink() and (target / "keep.txt").read_text() == "mine"
    linked = tmp_path / "linked"
    linked.symlink_to(target)
    with pytest.raises(UserError, match="is a symbolic link"):
        synthesize(linked, n=1)
    assert linked.is_symlink() and sorted(p.name for p in target.iterdir()) == ["keep.txt"]
    # a set of our own with no negatives (empty non-landslide folders) is still replaced
    own = synthesize(tmp_path / "own", n=2, negatives=0, max_size=40, min_size=32)
    assert synthesize(own, n=3, negatives=0, max_size=40, min_size=32) == own
