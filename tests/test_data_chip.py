"""``python -m landslide_tf.data chip``: georeferenced chips that lie exactly on the scene."""

import errno
import json
import logging
import os
import shutil
import stat
import subprocess

import numpy as np
import pytest
from band_data import blob_mask, write_tif

from landslide_tf import files
from landslide_tf.data.chip import chip_scene, progress_line, starts
from landslide_tf.errors import DataError, UserError

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import from_origin  # noqa: E402

SCENE_TRANSFORM = from_origin(400000.0, 3100000.0, 5.0, 5.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A synthetic labelled 1500x1500 3-band scene, nodata 0 in its top-left corner."""
    root = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    truth = np.zeros((1500, 1500), np.uint8)
    for cy, cx in ((300, 900), (800, 300), (1200, 1200)):
        truth[cy - 100 : cy + 100, cx - 100 : cx + 100] |= blob_mask(rng, 200)
    image = rng.integers(1, 255, (1500, 1500, 3)).astype(np.uint8)
    image[:400, :400] = 0
    write_tif(root / "scene.tif", image, transform=SCENE_TRANSFORM, nodata=0)
    write_tif(root / "labels.tif", truth, transform=SCENE_TRANSFORM)
    return root, image, truth


def test_starts_end_flush():
    assert starts(1500, 256, 128)[-1] == 1500 - 256
    assert starts(100, 256, 128) == [0]


def test_chips_lie_exactly_on_the_scene(scene, tmp_path):
    root, image, truth = scene
    out = tmp_path / "chips"
    result = chip_scene(
        root / "scene.tif", out, mask=root / "labels.tif", size=256, stride=128, negatives=0.5
    )
    chips = sorted((out / "images").glob("*.tif"))
    assert len(chips) == result.landslide + result.negatives and result.landslide > 0
    assert result.negatives == round(0.5 * result.landslide)
    assert result.skipped_nodata > 0  # the nodata corner
    for path in chips:
        with rasterio.open(path) as chip, rasterio.open(out / "masks" / path.name) as m:
            col, row = ~SCENE_TRANSFORM * (chip.transform.c, chip.transform.f)
            row, col = int(round(row)), int(round(col))
            assert chip.transform.almost_equals(
                SCENE_TRANSFORM * rasterio.Affine.translation(col, row)
            )
            assert chip.crs == "EPSG:32645" and chip.nodata == 0 and chip.shape == (256, 256)
            window = (slice(row, row + 256), slice(col, col + 256))
            np.testing.assert_array_equal(np.moveaxis(chip.read(), 0, -1), image[window])
            np.testing.assert_array_equal(m.read(1), truth[window])
            assert m.transform == chip.transform


def test_polygon_labels_are_rasterised_onto_the_grid(scene, tmp_path):
    root, _, _ = scene
    x0, y0 = SCENE_TRANSFORM * (1050, 1050)  # pixel (col 1050, row 1050): one chip
    x1, y1 = SCENE_TRANSFORM * (1150, 1130)
    polygon = {
        "type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
    }
    labels = tmp_path / "labels.geojson"
    labels.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "geometry": polygon, "properties": {}}],
            }
        )
    )
    out = tmp_path / "chips"
    result = chip_scene(root / "scene.tif", out, labels=labels, size=256, stride=256, negatives=0)
    assert result.landslide == 1 and result.negatives == 0
    with rasterio.open(next((out / "masks").glob("*.tif"))) as m:
        assert m.read(1).sum() == 100 * 80


def test_mask_that_does_not_overlap_the_image(scene, tmp_path):
    root, _, truth = scene
    far = from_origin(900000.0, 3100000.0, 5.0, 5.0)
    write_tif(tmp_path / "far.tif", truth, transform=far)
    with pytest.raises(DataError, match=r"far\.tif: the mask .* does not overlap the image"):
        chip_scene(root / "scene.tif", tmp_path / "chips", mask=tmp_path / "far.tif")
    assert not (tmp_path / "chips").exists()


def _small_scene(root):
    """A 128 px 3-band scene on ``SCENE_TRANSFORM`` (no nodata)."""
    image = np.random.default_rng(0).integers(1, 255, (128, 128, 3)).astype(np.uint8)
    return write_tif(root / "small.tif", image, transform=SCENE_TRANSFORM)


def test_a_mask_with_nan_nodata_is_background(tmp_path):
    image = _small_scene(tmp_path)
    truth = np.zeros((128, 128), np.float32)
    truth[20:40, 20:40] = 1
    truth[100:] = np.nan  # nodata
    mask = write_tif(tmp_path / "nan.tif", truth, transform=SCENE_TRANSFORM, nodata=np.nan)
    out = tmp_path / "chips"
    result = chip_scene(image, out, mask=mask, size=64, stride=64, negatives=1)
    assert result.landslide == 1 and result.negatives == 1
    for path in (out / "masks").glob("*.tif"):
        with rasterio.open(path) as ds:
            assert set(np.unique(ds.read(1)).tolist()) <= {0, 1}


@pytest.mark.parametrize(
    ("crs", "origin", "message"),
    [
        ("EPSG:32645", (900000.0, 3100000.0), r"dem\.tif: the DEM .* does not overlap the image"),
        (None, (400000.0, 3100000.0), r"dem\.tif: the DEM has no CRS"),
    ],
)
def test_a_dem_off_the_image_or_without_crs_stops_before_writing(tmp_path, crs, origin, message):
    image = _small_scene(tmp_path)
    truth = np.zeros((128, 128), np.uint8)
    truth[20:40, 20:40] = 1
    mask = write_tif(tmp_path / "labels.tif", truth, transform=SCENE_TRANSFORM)
    on_scene = from_origin(400000.0, 3100000.0, 10.0, 10.0)
    good = write_tif(
        tmp_path / "good.tif", np.full((64, 64), 300.0, np.float32), transform=on_scene
    )
    chip_scene(image, tmp_path / "ok", mask=mask, dem=good, size=64, stride=64)
    with rasterio.open(next((tmp_path / "ok" / "dem").glob("*.tif"))) as ds:
        assert np.isfinite(ds.read(1)).all()  # a DEM on the scene (at 10 m) is warped onto it
    dem = write_tif(
        tmp_path / "dem.tif",
        np.full((64, 64), 300.0, np.float32),
        transform=from_origin(*origin, 10.0, 10.0),
        crs=crs,
    )
    before = sorted(tmp_path.iterdir())
    with pytest.raises(DataError, match=message):
        chip_scene(image, tmp_path / "chips", mask=mask, dem=dem, size=64, stride=64)
    assert sorted(tmp_path.iterdir()) == before  # nothing written, no temporary folder left


def test_chip_refuses_a_non_empty_out(scene, tmp_path):
    root, _, _ = scene
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="not empty"):
        chip_scene(root / "scene.tif", tmp_path / "chips", mask=root / "labels.tif")
    assert (tmp_path / "chips" / "mine.txt").read_text() == "keep"


@pytest.mark.slow
def test_train_on_chips(scene, tmp_path):
    from landslide_tf.cli.data import main as data_main
    from landslide_tf.cli.train import main as train_main

    root, _, _ = scene
    chips = tmp_path / "chips"
    args = ["chip", "--image", str(root / "scene.tif"), "--mask", str(root / "labels.tif")]
    assert data_main([*args, "--out", str(chips), "--size", "256", "--stride", "256"]) == 0
    run = tmp_path / "run"
    argv = ["--data", str(chips), "--run-dir", str(run), "--epochs", "1", "--image-size", "32"]
    argv += ["--base-filters", "4", "--depth", "2", "--model", "unet", "--batch-size", "2"]
    assert train_main([*argv, "--verbose", "0"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data_format"] == "folder" and config["bands"] == ["1", "2", "3"]


def _boxes(paths):
    out = {}
    for path in paths:
        with rasterio.open(path) as ds:
            out[path.stem] = tuple(ds.bounds)
    return out


def _touch_or_overlap(a, b, gap=0.0):
    return (max(a[0], b[0]) - min(a[2], b[2]) <= gap) and (max(a[1], b[1]) - min(a[3], b[3]) <= gap)


def test_overlapping_chips_never_straddle_splits(tmp_path):
    """Issue 22 item 2: half-overlapping chips of one scene get a blocked spatial split with a
    one-chip buffer: no train chip overlaps or touches a val or test chip."""
    from landslide_tf.data.formats import find_format_samples, plan_splits

    rng = np.random.default_rng(1)
    size = 2048
    truth = np.zeros((size, size), np.uint8)
    for _ in range(40):
        cy, cx = rng.integers(100, size - 100, 2)
        truth[cy - 40 : cy + 40, cx - 40 : cx + 40] |= blob_mask(rng, 80)
    image = rng.integers(1, 255, (size, size, 3)).astype(np.uint8)
    write_tif(tmp_path / "scene.tif", image, transform=SCENE_TRANSFORM)
    write_tif(tmp_path / "labels.tif", truth, transform=SCENE_TRANSFORM)
    out = tmp_path / "chips"
    chip_scene(tmp_path / "scene.tif", out, mask=tmp_path / "labels.tif", size=128, stride=64,
               negatives=1.0)  # fmt: skip
    samples = find_format_samples("folder", out)
    split = plan_splits("folder", samples, seed=0)
    assert all(split[name] for name in ("train", "val", "test"))
    boxes = _boxes(sorted((out / "images").glob("*.tif")))
    chip_w = 128 * 5.0
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        for s in split[a]:
            for t in split[b]:
                assert not _touch_or_overlap(boxes[s.stem], boxes[t.stem]), (a, s.stem, b, t.stem)
    # the buffer is one chip: the closest chips of two splits are at least a chip width apart
    gaps = [
        max(max(boxes[s.stem][0], boxes[t.stem][0]) - min(boxes[s.stem][2], boxes[t.stem][2]),
            max(boxes[s.stem][1], boxes[t.stem][1]) - min(boxes[s.stem][3], boxes[t.stem][3]))
        for s in split["train"] for t in split["test"]
    ]  # fmt: skip
    assert min(gaps) >= chip_w - 1e-6
    # the same seed gives the same split; data check reports exactly this split
    again = plan_splits("folder", find_format_samples("folder", out), seed=0)
    assert {k: [s.stem for s in v] for k, v in again.items()} == {
        k: [s.stem for s in v] for k, v in split.items()
    }


def test_data_check_warns_on_a_hand_made_leaking_split(tmp_path, capsys):
    """Issue 22 item 2: given split lists that put overlapping chips in different splits."""
    from landslide_tf.cli.data import main as data_main

    rng = np.random.default_rng(2)
    truth = np.zeros((512, 512), np.uint8)
    truth[200:300, 200:300] = blob_mask(rng, 100)
    write_tif(tmp_path / "scene.tif", rng.integers(1, 255, (512, 512, 3)).astype(np.uint8),
              transform=SCENE_TRANSFORM)  # fmt: skip
    write_tif(tmp_path / "labels.tif", truth, transform=SCENE_TRANSFORM)
    out = tmp_path / "chips"
    chip_scene(tmp_path / "scene.tif", out, mask=tmp_path / "labels.tif", size=128, stride=64,
               negatives=1.0)  # fmt: skip
    stems = sorted(p.stem for p in (out / "images").glob("*.tif"))
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("\n".join(stems[0::2]) + "\n")
    (lists / "val.txt").write_text("\n".join(stems[1::2]) + "\n")
    data_main(["check", str(out), "--split-dir", str(lists)])
    shown = capsys.readouterr()
    assert "overlap on the ground across the train and val splits" in shown.out + shown.err


# --- review fixes: malformed labels, --negatives, damaged rasters, progress, staging --------


def _labelled(root):
    """The small scene and a mask with one landslide square (64 px chips: 1 of 4 positive)."""
    truth = np.zeros((128, 128), np.uint8)
    truth[20:40, 20:40] = 1
    return _small_scene(root), write_tif(root / "labels.tif", truth, transform=SCENE_TRANSFORM)


def _truncate(path):
    """Cut a GeoTIFF's bytes in half: its header still opens, its pixels cannot be read."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _square():
    x0, y0 = SCENE_TRANSFORM * (10, 10)
    x1, y1 = SCENE_TRANSFORM * (40, 40)
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (  # a string for coordinates segfaulted rasterio.features.bounds
            {
                "features": [
                    {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "x"}}
                ]
            },
            r"feature 0: geometry \(Polygon\): coordinates is the string 'x'; expected a list",
        ),
        ({"features": [1, 2]}, r"feature 0 is the number 1; expected a GeoJSON object"),
        ({"features": "abc"}, r'"features" is the string \'abc\'; expected a list'),
        (
            {"features": [{"type": "Feature", "geometry": None}, {"geometry": "Polygon"}]},
            r"feature 1: geometry is the string 'Polygon'",
        ),
        (
            {"features": [{"geometry": {"type": "Polygon", "coordinates": []}}]},
            r"feature 0: geometry \(Polygon\): coordinates has 0 items; expected at least 1",
        ),
        (
            {"features": [{"geometry": {"type": "Point", "coordinates": [1.0]}}]},
            r"feature 0: .*coordinates is a list of 1; expected an \[x, y\] position",
        ),
        (
            {"features": [{"geometry": {"type": "Blob", "coordinates": [1.0, 2.0]}}]},
            r"feature 0: geometry \"type\" is the string 'Blob'; expected one of Point, ",
        ),
        (
            {
                "type": "GeometryCollection",
                "geometries": [{"type": "Polygon", "coordinates": [[]]}],
            },
            r"the geometry: geometry\.geometries\[0\] \(Polygon\): coordinates\[0\] has 0 items",
        ),
        ([1, 2], r"the GeoJSON is a list of 2; expected an object"),
    ],
)
def test_malformed_geojson_labels_stop_naming_the_file_and_feature(tmp_path, data, message):
    """Review item 1: malformed GeoJSON crashed rasterio (a segfault, AttributeError,
    IndexError); every shape is now checked first and named in one DataError."""
    image = _small_scene(tmp_path)
    labels = tmp_path / "slides.geojson"
    labels.write_text(json.dumps(data))
    before = sorted(tmp_path.iterdir())
    with pytest.raises(DataError, match=r"slides\.geojson: " + message):
        chip_scene(image, tmp_path / "chips", labels=labels, size=64, stride=64)
    assert sorted(tmp_path.iterdir()) == before


def test_a_geometry_collection_and_unlocated_features_are_labels(tmp_path):
    image = _small_scene(tmp_path)
    labels = tmp_path / "slides.geojson"
    polygon = {"type": "Polygon", "coordinates": _square()}
    collection = {"type": "GeometryCollection", "geometries": [polygon]}
    features = [{"type": "Feature", "geometry": None}, {"type": "Feature", "geometry": collection}]
    labels.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    out = tmp_path / "chips"
    result = chip_scene(image, out, labels=labels, size=64, stride=64, negatives=0)
    assert result.landslide == 1
    with rasterio.open(next((out / "masks").glob("*.tif"))) as m:
        assert m.read(1).sum() == 30 * 30


@pytest.mark.parametrize("negatives", [float("nan"), float("inf"), -1.0])
def test_negatives_must_be_a_finite_number(tmp_path, negatives):
    """Review item 2: NaN passed ``negatives < 0`` and crashed in ``int(round(...))``."""
    image, mask = _labelled(tmp_path)
    with pytest.raises(UserError, match=r"--negatives .*expected a finite number >= 0"):
        chip_scene(image, tmp_path / "chips", mask=mask, size=64, stride=64, negatives=negatives)
    assert not (tmp_path / "chips").exists()


def test_a_huge_negatives_keeps_every_negative(tmp_path):
    image, mask = _labelled(tmp_path)
    result = chip_scene(image, tmp_path / "chips", mask=mask, size=32, stride=32, negatives=1e308)
    assert (result.landslide, result.negatives) == (4, 12)  # 1e308 * 4 overflowed to inf


@pytest.mark.parametrize("damaged", ["image", "mask", "dem"])
def test_a_truncated_raster_is_named_before_anything_is_written(tmp_path, damaged):
    """Review item 3: "Read failed. See previous exception for details." named no file, and a
    truncated DEM failed only while chips were being written."""
    image, mask = _labelled(tmp_path)
    elevation = np.random.default_rng(1).normal(300, 20, (64, 64)).astype(np.float32)
    dem = write_tif(
        tmp_path / "dem.tif", elevation, transform=from_origin(400000.0, 3100000.0, 10.0, 10.0)
    )
    _truncate({"image": image, "mask": mask, "dem": dem}[damaged])
    before = sorted(tmp_path.iterdir())
    name = {"image": "small", "mask": "labels", "dem": "dem"}[damaged]
    with pytest.raises(DataError, match=rf"{name}\.tif: unreadable raster \(.*\)"):
        chip_scene(image, tmp_path / "chips", mask=mask, dem=dem, size=64, stride=64)
    assert sorted(tmp_path.iterdir()) == before  # no chip, no staging folder


def test_a_truncated_image_is_one_error_line_from_the_cli(tmp_path, capsys):
    from landslide_tf.cli.data import main as data_main

    image, mask = _labelled(tmp_path)
    _truncate(image)
    argv = ["chip", "--image", str(image), "--mask", str(mask), "--out", str(tmp_path / "c")]
    assert data_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {image}: unreadable raster"), err


def test_progress_lines_count_the_chips(tmp_path, caplog):
    """Review item 4: a long run printed nothing; the interval is injectable (0: every chip)."""
    assert progress_line(120, 961, 10.4) == "wrote 120/961 chips (10 s)"
    image, mask = _labelled(tmp_path)
    lines = []
    result = chip_scene(
        image, tmp_path / "chips", mask=mask, size=64, stride=64, negatives=3,
        progress=lines.append, progress_every_s=0,
    )  # fmt: skip
    total = result.landslide + result.negatives
    assert [line.split(" (")[0] for line in lines] == [
        f"wrote {k}/{total} chips" for k in range(1, total + 1)
    ]
    quiet = []
    chip_scene(image, tmp_path / "again", mask=mask, size=64, stride=64, progress=quiet.append)
    assert quiet == []  # a run shorter than PROGRESS_EVERY_S reports nothing
    with caplog.at_level(logging.WARNING, logger="landslide_tf.data.chip"):
        chip_scene(image, tmp_path / "logged", mask=mask, size=64, stride=64, progress_every_s=0)
    # by default a warning: the data command shows warnings only
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["wrote 1/1 chips"]


def test_the_chip_folder_gets_the_umask_permissions(tmp_path):
    """Review item 5a: ``tempfile.mkdtemp`` left the renamed folder at 0700."""
    image, mask = _labelled(tmp_path)
    previous = os.umask(0o022)
    try:
        chip_scene(image, tmp_path / "chips", mask=mask, size=64, stride=64)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "chips").stat().st_mode) == 0o755


def _dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_what_a_killed_chip_left_is_cleared_by_the_next_run(tmp_path, monkeypatch):
    """Review item 5b: the staging folder follows ``files.staged_dir``'s convention, so what
    a SIGKILL leaves (the folder, its mark, some chips) is removed by the next run, and
    nothing else is."""
    image, mask = _labelled(tmp_path)
    out = tmp_path / "work" / "chips"
    out.parent.mkdir()
    real = files.atomic_write_bytes
    left = []

    def killed(path, data):  # the run dies after its first chip
        real(path, data)
        stage = path.parent.parent
        shutil.copytree(stage, tmp_path / "snapshot")
        left.append(stage)
        raise OSError(errno.EIO, "killed", str(path))

    monkeypatch.setattr(files, "atomic_write_bytes", killed)
    with pytest.raises(OSError, match="killed"):
        chip_scene(image, out, mask=mask, size=64, stride=64)
    monkeypatch.undo()
    assert os.listdir(out.parent) == []  # an ordinary failure cleans up after itself
    (tmp_path / "snapshot").rename(left[0])  # what SIGKILL leaves: the folder as it was
    assert (left[0] / files.STAGING_MARK).read_text().strip() == str(os.getpid())
    (left[0] / files.STAGING_MARK).write_text(f"{_dead_pid()}\n")
    mine = [out.parent / ".chips.mine.staging", out.parent / ".chips-old"]  # no mark
    running = out.parent / ".chips.running.staging"  # a live process's
    for folder in [*mine, running]:
        folder.mkdir()
        (folder / "keep.txt").write_text("keep")
    (running / files.STAGING_MARK).write_text(f"{os.getpid()}\n")
    chip_scene(image, out, mask=mask, size=64, stride=64)
    assert not left[0].exists()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        ["chips", *(p.name for p in mine), running.name]
    )
    assert all((p / "keep.txt").read_text() == "keep" for p in [*mine, running])
    assert not (out / files.STAGING_MARK).exists() and len(list((out / "images").iterdir())) == 1


@pytest.mark.parametrize("where", ["nodir/sub", "afile.txt/sub"])
def test_out_in_a_missing_folder_names_out(tmp_path, where, capsys):
    """Review item 5c: the error named the temporary folder (``.../nodir/.sub-bqss07u0``)."""
    from landslide_tf.cli.data import main as data_main

    image, mask = _labelled(tmp_path)
    (tmp_path / "afile.txt").write_text("mine")
    out = tmp_path / where
    with pytest.raises(UserError, match=rf"--out {out}: {out.parent} (does not exist|is not a)"):
        chip_scene(image, out, mask=mask, size=64, stride=64)
    argv = ["chip", "--image", str(image), "--mask", str(mask), "--out", str(out)]
    assert data_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --out {out}: "), err
    assert (tmp_path / "afile.txt").read_text() == "mine" and not (tmp_path / "nodir").exists()
