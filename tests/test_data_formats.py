"""Dataset formats: detection, the l4s and folder readers, --bands, statistics, bad input."""

import sys

import numpy as np
import pytest
from band_data import make_geotiff_folder, make_l4s, write_tif

from landslide_tf.data import bands as lbands
from landslide_tf.data import formats
from landslide_tf.data.l4s import find_l4s_samples, read_l4s_image, read_l4s_mask
from landslide_tf.data.spec import multiband_spec
from landslide_tf.errors import DataError, UserError
from landslide_tf.training.config import TrainConfig

pytest.importorskip("h5py")
pytest.importorskip("rasterio")


@pytest.fixture(scope="module")
def l4s_dir(tmp_path_factory):
    return make_l4s(tmp_path_factory.mktemp("l4s") / "L4S", size=128)


@pytest.fixture(scope="module")
def tif_dir(tmp_path_factory):
    return make_geotiff_folder(tmp_path_factory.mktemp("tif") / "tiles", n=6, size=32)


def test_detect_format(l4s_dir, tif_dir, synth_dir, tmp_path):
    assert formats.detect_format(l4s_dir) == "l4s"
    assert formats.detect_format(tif_dir) == "folder"
    assert formats.detect_format(synth_dir) == "bijie"
    with pytest.raises(DataError, match="no known dataset layout.*l4s: TrainData"):
        formats.detect_format(tmp_path)


def test_l4s_reader_uses_the_given_splits(l4s_dir):
    samples = find_l4s_samples(l4s_dir)
    assert [s.split for s in samples].count("train") == 4
    assert {s.split for s in samples} == {"train", "val", "test"}
    image = read_l4s_image(samples[0].image)
    mask = read_l4s_mask(samples[0].mask)
    assert image.shape == (128, 128, 14) and image.dtype == np.float32
    assert mask.shape == (128, 128) and set(np.unique(mask)) <= {0, 1}
    split = formats.plan_splits("l4s", samples, seed=0, out_dir=l4s_dir.parent / "split")
    assert {k: len(v) for k, v in split.items()} == {"train": 4, "val": 2, "test": 2}
    assert all(s.split == "val" for s in split["val"])


def test_l4s_without_test_labels_tests_on_validdata(tmp_path):
    root = make_l4s(tmp_path / "L4S", counts=(("TrainData", 10), ("ValidData", 3)), size=16)
    split = formats.plan_splits("l4s", find_l4s_samples(root), seed=0, out_dir=tmp_path / "s")
    assert [s.split for s in split["test"]] == ["val"] * 3
    assert len(split["train"]) == 8 and len(split["val"]) == 2
    assert all(s.split == "train" for s in split["val"])


def test_folder_reader_honours_nodata_and_appends_dem(tif_dir):
    samples = formats.find_format_samples("folder", tif_dir)
    names = formats.available_bands("folder", tif_dir)
    assert names == ["1", "2", "3", "4", "dem"] and len(samples) == 6
    image, mask = formats.read_bands(samples[0], "folder", [0, 4])
    assert image.shape == (32, 32, 2) and mask.shape == (32, 32)
    assert np.isnan(image[0, 0, 0]) and not np.isnan(image[0, 0, 1])  # nodata 0 -> NaN


def test_folder_band_descriptions_are_names(tmp_path):
    arr = np.ones((8, 8, 3), np.float32)
    write_tif(tmp_path / "images" / "a.tif", arr, descriptions=["red", "green", "nir"])
    write_tif(tmp_path / "masks" / "a.tif", np.zeros((8, 8), np.uint8))
    names = formats.available_bands("folder", tmp_path)
    assert names == ["red", "green", "nir"]
    assert lbands.resolve_bands(["nir", "1"], names, "folder") == ["nir", "red"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, list(lbands.L4S_BANDS)),
        (["B2", "B3", "B4", "slope", "dem"], ["B2", "B3", "B4", "slope", "dem"]),
        (["rgb"], ["B4", "B3", "B2"]),
        (["rgb+dem"], ["B4", "B3", "B2", "dem"]),
        (["14", "1"], ["dem", "B1"]),
        (["b8"], ["B8"]),
    ],
)
def test_resolve_l4s_bands(spec, expected):
    assert lbands.resolve_bands(spec, lbands.L4S_BANDS, "l4s") == expected


def test_unknown_band_lists_the_valid_names():
    with pytest.raises(UserError, match=r"'B13'.*valid names: B1, B2, .*slope, dem"):
        lbands.resolve_bands(["B2", "B13"], lbands.L4S_BANDS, "l4s")
    with pytest.raises(UserError, match="twice"):
        lbands.resolve_bands(["B2", "2"], lbands.L4S_BANDS, "l4s")


def test_resolve_data_config(l4s_dir, synth_dir):
    config = formats.resolve_data_config(TrainConfig(bands=["rgb", "dem"]), l4s_dir)
    assert config.data_format == "l4s" and config.bands == ["B4", "B3", "B2", "dem"]
    assert config.channels == 4
    bijie = formats.resolve_data_config(TrainConfig(bands=["rgb"]), synth_dir)
    assert bijie.data_format is None and bijie.modalities == "rgb" and bijie.bands is None
    with pytest.raises(UserError, match="bijie data has the band sets"):
        formats.resolve_data_config(TrainConfig(bands=["B2"]), synth_dir)
    with pytest.raises(UserError, match="does not have the folder layout"):
        formats.resolve_data_config(TrainConfig(data_format="folder"), l4s_dir)


def test_multiband_config_records_only_the_channels_it_applies(l4s_dir, synth_dir):
    """Issue 22 item 6: the quick preset's slope channel is a Bijie DEM channel; an L4S run
    does not derive it, so its config.json must not say it does."""
    quick = TrainConfig(derived=["slope"])
    assert formats.resolve_data_config(quick, l4s_dir).derived == []
    assert formats.resolve_data_config(quick, synth_dir).derived == ["slope"]


def test_band_statistics_standard_and_percentile():
    rng = np.random.default_rng(0)
    arrays = [rng.normal([10, 100], [2, 20], (16, 16, 2)) for _ in range(4)]
    arrays[0][0, 0, 0] = np.nan
    std = lbands.band_statistics(arrays, "standard")
    stacked = np.concatenate([a.reshape(-1, 2) for a in arrays])
    assert np.allclose(std["params"][0], [np.nanmean(stacked[:, 0]), np.nanstd(stacked[:, 0])])
    pct = lbands.band_statistics(arrays, "percentile")
    lo, hi = pct["params"][1]
    assert lo < 100 < hi and pct["method"] == "percentile"


def test_band_preprocessing_matches_numpy():
    from keras import ops

    from landslide_tf.data.preprocess import normalize_image
    from landslide_tf.data.spec import multiband_spec

    x = np.array([[[1.0, np.nan], [3.0, 50.0]]], np.float32)  # (1, 2, 2)
    for norm in (
        {"method": "standard", "params": [[2.0, 2.0], [10.0, 5.0]]},
        {"method": "percentile", "params": [[0.0, 2.0], [0.0, 10.0]]},
    ):
        bands = multiband_spec(["a", "b"], norm["method"], norm["params"]).image_bands
        got = ops.convert_to_numpy(normalize_image(x, bands))
        assert np.allclose(got, lbands.normalize_numpy(x, norm))
        assert np.isfinite(got).all()


# ----------------------------------------------------------------------------- bad input


def _h5(path, **datasets):
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)


def test_h5_without_the_img_key_names_file_keys_and_count(tmp_path):
    _h5(tmp_path / "TrainData" / "img" / "image_1.h5", data=np.zeros((8, 8, 14)))
    _h5(tmp_path / "TrainData" / "mask" / "mask_1.h5", mask=np.zeros((8, 8)))
    with pytest.raises(DataError, match=r"image_1\.h5: no dataset 'img' \(keys found: data\).*14"):
        find_l4s_samples(tmp_path)


def test_h5_with_the_wrong_band_count(tmp_path):
    _h5(tmp_path / "TrainData" / "img" / "image_1.h5", img=np.zeros((8, 8, 12)))
    _h5(tmp_path / "TrainData" / "mask" / "mask_1.h5", mask=np.zeros((8, 8)))
    with pytest.raises(
        DataError, match=r"image_1\.h5: .*shape \(8, 8, 12\).*keys found: img.*14 bands"
    ):
        find_l4s_samples(tmp_path)


def test_mask_h5_of_another_size(tmp_path):
    _h5(tmp_path / "TrainData" / "img" / "image_1.h5", img=np.zeros((8, 8, 14)))
    _h5(tmp_path / "TrainData" / "mask" / "mask_1.h5", mask=np.zeros((16, 16)))
    with pytest.raises(DataError, match=r"mask_1\.h5: mask shape \(16, 16\) does not match"):
        find_l4s_samples(tmp_path)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["image_1.h5", "image_10.h5", "image_10 (1).h5"],
            r"image_10 \(1\)\.h5: the file name does",
        ),
        (["image_1.h5", "image_10.h5", "image_010.h5"], r"image_10\.h5: tile number 10 again"),
    ],
)
def test_l4s_copies_and_clashing_numbers_are_refused(tmp_path, names, message):
    for name in names:
        _h5(tmp_path / "TrainData" / "img" / name, img=np.zeros((8, 8, 14)))
    for number in (1, 10):
        _h5(tmp_path / "TrainData" / "mask" / f"mask_{number}.h5", mask=np.zeros((8, 8)))
    with pytest.raises(DataError, match=message):
        find_l4s_samples(tmp_path)


def test_l4s_image_is_opened_once_per_read(tmp_path, monkeypatch):
    import h5py

    path = tmp_path / "image_1.h5"
    _h5(path, img=np.ones((8, 8, 14)))
    opened = []

    class Counting(h5py.File):
        def __init__(self, name, *args, **kwargs):
            opened.append(name)
            super().__init__(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", Counting)
    assert read_l4s_image(path).shape == (8, 8, 14)
    assert len(opened) == 1
    _h5(tmp_path / "bad.h5", data=np.zeros((8, 8, 14)))
    with pytest.raises(DataError, match=r"bad\.h5: no dataset 'img' \(keys found: data\)"):
        read_l4s_image(tmp_path / "bad.h5")


def test_folder_images_that_disagree_in_band_count(tmp_path):
    write_tif(tmp_path / "images" / "a.tif", np.ones((8, 8, 4), np.uint16))
    write_tif(tmp_path / "images" / "b.tif", np.ones((8, 8, 3), np.uint16))
    for stem in "ab":
        write_tif(tmp_path / "masks" / f"{stem}.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"b\.tif: 3 band\(s\) but a\.tif has 4"):
        formats.find_format_samples("folder", tmp_path)


def test_folder_images_that_disagree_in_crs(tmp_path):
    write_tif(tmp_path / "images" / "a.tif", np.ones((8, 8, 2), np.uint16))
    write_tif(tmp_path / "images" / "b.tif", np.ones((8, 8, 2), np.uint16), crs="EPSG:4326")
    for stem in "ab":
        write_tif(tmp_path / "masks" / f"{stem}.tif", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"b\.tif: CRS EPSG:4326 but a\.tif has EPSG:32645"):
        formats.find_format_samples("folder", tmp_path)


def test_image_and_mask_with_different_transforms(tmp_path):
    from rasterio.transform import from_origin

    write_tif(tmp_path / "images" / "a.tif", np.ones((8, 8, 2), np.uint16))
    shifted = from_origin(500100.0, 3000000.0, 10.0, 10.0)
    write_tif(tmp_path / "masks" / "a.tif", np.zeros((8, 8), np.uint8), transform=shifted)
    with pytest.raises(DataError, match=r"masks/a\.tif: mask grid .* differs from its image"):
        formats.find_format_samples("folder", tmp_path)


def test_folder_skips_gis_side_cars_and_os_files(tmp_path):
    write_tif(tmp_path / "images" / "t000.tif", np.ones((8, 8, 2), np.uint16))
    write_tif(tmp_path / "masks" / "t000.tif", np.zeros((8, 8), np.uint8))
    side = ["t000.tfw", "t000.tif.aux.xml", "t000.prj", "t000.pgw", "Thumbs.db", "desktop.ini"]
    for folder in ("images", "masks"):
        for name in side:
            (tmp_path / folder / name).write_text("x")
    samples = formats.find_format_samples("folder", tmp_path)
    assert [s.stem for s in samples] == ["t000"]


def test_folder_colour_mask_counts_every_colour_channel(tmp_path):
    import cv2

    from landslide_tf.data.folder import read_folder_mask
    from landslide_tf.data.readers import read_mask

    mask = np.zeros((8, 8, 4), np.uint8)
    mask[..., 3] = 255  # opaque alpha: not a label
    mask[2:4, 2:4, 0] = 255  # blue (OpenCV writes BGR): no red at all
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), mask)
    got = read_folder_mask(path)
    assert got.sum() == 4 and got[2:4, 2:4].all()
    assert (got == read_mask(path)).all()  # the Bijie reader agrees


@pytest.mark.parametrize(
    ("dem_crs", "dem_origin", "message"),
    [
        (
            "EPSG:4326",
            (500000.0, 3000000.0),
            r"dem/a\.tif: DEM CRS EPSG:4326 but its image .*a\.tif",
        ),
        ("EPSG:32645", (501000.0, 3000000.0), r"dem/a\.tif: DEM bounds .* differ from its image"),
    ],
)
def test_folder_dem_on_another_grid_is_refused(tmp_path, dem_crs, dem_origin, message):
    from rasterio.transform import from_origin

    write_tif(tmp_path / "images" / "a.tif", np.ones((8, 8, 2), np.uint16))
    write_tif(tmp_path / "masks" / "a.tif", np.zeros((8, 8), np.uint8))
    dem = tmp_path / "dem" / "a.tif"
    coarse = from_origin(500000.0, 3000000.0, 20.0, 20.0)  # the image's extent, 2x the pixel
    write_tif(dem, np.full((4, 4), 7.0, np.float32), transform=coarse)
    samples = formats.find_format_samples("folder", tmp_path)
    image, _ = formats.read_bands(samples[0], "folder", [0, 2])
    assert image.shape == (8, 8, 2) and np.allclose(image[..., 1], 7.0)  # resampled: fine
    elsewhere = from_origin(*dem_origin, 20.0, 20.0)
    write_tif(dem, np.full((4, 4), 7.0, np.float32), transform=elsewhere, crs=dem_crs)
    with pytest.raises(DataError, match=message):
        formats.find_format_samples("folder", tmp_path)


def test_missing_h5py_says_what_to_install(tmp_path, monkeypatch):
    from landslide_tf.data import l4s

    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(UserError, match=r"which TensorFlow installs; .* pip install h5py"):
        l4s.require_h5py()


def test_data_check_lists_the_format(l4s_dir, capsys):
    from landslide_tf.cli.data import main

    assert main(["check", str(l4s_dir)]) == 0
    out = capsys.readouterr().out
    assert "format l4s" in out and "bands (14)" in out and "train 4, val 2, test 2" in out


def test_train_cli_unknown_band_exit_2_and_writes_nothing(l4s_dir, tmp_path, capsys):
    from landslide_tf.cli.train import main

    run = tmp_path / "run"
    assert main(["--data", str(l4s_dir), "--bands", "B2,NIR", "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --bands 'NIR'") and "valid names: B1, B2" in err
    assert len(err.strip().splitlines()) == 1
    assert not run.exists()


@pytest.mark.parametrize("r", range(8))
def test_band_augmentation_moves_image_and_mask_together(r):
    import tensorflow as tf

    from landslide_tf.data.augment import augment_pair

    x = np.arange(32, dtype=np.float32).reshape(4, 4, 2)
    y = (x[..., :1] > 10).astype(np.float32)
    a, b = augment_pair(tf.constant(x), tf.constant(y), tf.constant(r, tf.int64))
    np.testing.assert_array_equal(a.numpy()[..., :1] > 10, b.numpy() > 0.5)
    assert sorted(a.numpy().ravel()) == sorted(x.ravel())


def test_runs_from_before_the_formats_still_resume(tmp_path):
    """A config.json without data_format/bands/band_norm is the same Bijie run."""
    import dataclasses
    import json

    from landslide_tf.training.rundir import check_same_config

    config = TrainConfig(data="/data/bijie").resolved()
    old = {
        k: v for k, v in config.to_dict().items() if k not in ("data_format", "bands", "band_norm")
    }
    (tmp_path / "config.json").write_text(json.dumps(old))
    assert check_same_config(tmp_path, config.to_dict())["model"] == config.model
    changed = dataclasses.replace(config, band_norm="percentile").to_dict()
    with pytest.raises(UserError, match="band_norm"):
        check_same_config(tmp_path, changed)


def test_png_folder_reads_rgb_in_order(tmp_path):
    import cv2

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "images" / "a.png"), rgb[..., ::-1])  # OpenCV writes BGR
    mask = np.zeros((6, 6), np.uint8)
    mask[2:4, 2:4] = 255
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), mask)
    samples = formats.find_format_samples("folder", tmp_path)
    assert formats.available_bands("folder", tmp_path) == ["1", "2", "3"]
    image, got = formats.read_bands(samples[0], "folder", [0, 1, 2])
    assert image[0, 0].tolist() == [200.0, 0.0, 0.0] and got.sum() == 4


def test_scene_band_plan_by_description_position_or_order():
    from landslide_tf.data.spec import multiband_spec
    from landslide_tf.inference.scene_io import band_plan

    norm = {"method": "standard", "params": [[0.0, 1.0]] * 5}
    l4s = multiband_spec(
        ("B2", "B3", "B4", "slope", "dem"), norm["method"], norm["params"], size=32,
        data_format="l4s", source_bands=lbands.L4S_BANDS,
    )  # fmt: skip
    assert band_plan(14, [None] * 14, l4s) == [2, 3, 4, 13, 14]  # position in the 14 bands
    assert band_plan(5, [None] * 5, l4s) == [1, 2, 3, 4, 5]  # exactly the model's bands
    described = ["dem", "x", "B4", "B3", "B2", "slope"]
    assert band_plan(6, described, l4s) == [5, 4, 3, 6, 1]
    with pytest.raises(DataError, match=r"the scene has 4 band\(s\) but the model needs B2, B3"):
        band_plan(4, [None] * 4, l4s)
    folder = multiband_spec(("1", "dem"), "standard", [[0, 1]] * 2, size=32,
                            data_format="folder", source_bands=("1", "2", "dem"))  # fmt: skip
    assert band_plan(2, [None, None], folder) == [1, "dem"]  # the DEM comes from --dem


# ------------------------------------------------------------- one path for every format


def _spec(data_format, root, names=None):
    from landslide_tf.data.stats import training_statistics

    samples = formats.find_format_samples(data_format, root)
    stats = training_statistics(samples, data_format, root=root, bands=names)
    available = formats.available_bands(data_format, root)
    chosen = names or available
    return samples, multiband_spec(
        chosen,
        stats["band_stats"]["method"],
        stats["band_stats"]["params"],
        size=16,
        data_format=data_format,
        source_bands=available,
        source_indices=stats["band_indices"],
    )


@pytest.mark.parametrize(
    ("data_format", "names"), [("l4s", ["B4", "B3", "B2", "dem"]), ("folder", None)]
)
def test_parallel_pipeline_equals_the_eager_loader_for_band_formats(
    data_format, names, l4s_dir, tif_dir
):
    from landslide_tf.data.pipeline import load_tiles, make_dataset

    root = l4s_dir if data_format == "l4s" else tif_dir
    samples, spec = _spec(data_format, root, names)
    old_x, old_y = load_tiles(samples, spec)
    assert old_x.shape == (len(samples), 16, 16, spec.channels) and np.isfinite(old_x).all()
    for cache in (True, False):
        batches = list(make_dataset(samples, spec, batch_size=3, cache=cache))
        np.testing.assert_allclose(np.concatenate([b[0] for b in batches]), old_x, atol=1e-5)
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), old_y)


def test_band_pipeline_streams_and_augments(tif_dir, monkeypatch):
    from landslide_tf.data.pipeline import make_dataset

    samples, spec = _spec("folder", tif_dir)
    monkeypatch.setenv("LANDSLIDE_TF_CACHE_MB", "0")  # nothing fits: cache=True streams
    x, y = next(iter(make_dataset(samples, spec, batch_size=6, augment=True, shuffle=True)))
    assert x.shape == (6, 16, 16, 5) and y.shape == (6, 16, 16, 1)


def test_data_check_reports_the_split_train_uses(tmp_path):
    """Issue 22 item 6: an L4S folder without TestData labels: check says what train uses."""
    from landslide_tf.cli.data import main

    root = make_l4s(tmp_path / "L4S", counts=(("TrainData", 10), ("ValidData", 3)), size=16)
    planned = formats.plan_splits("l4s", formats.find_format_samples("l4s", root))
    assert {k: len(v) for k, v in planned.items()} == {"train": 8, "val": 2, "test": 3}
    report = formats_check(root)
    assert report.splits == {"train": 8, "val": 2, "test": 3} and report.ok
    assert main(["check", str(root)]) == 0


def formats_check(root, **kwargs):
    from landslide_tf.data.check import check_dataset

    return check_dataset(root, **kwargs)


def test_bijie_check_reports_the_split_train_uses(synth_dir):
    from landslide_tf.data import find_samples, make_split

    report = formats_check(synth_dir, seed=7)
    expected = make_split(find_samples(synth_dir), seed=7)
    assert report.splits == {k: len(v) for k, v in expected.items()}
    assert "split used by train (seed 7): train" in report.format()


def test_check_warns_about_overlapping_chips_across_splits(tmp_path):
    from rasterio.transform import from_origin

    for i in range(10):  # 16 px chips every 8 px: neighbours overlap by half
        transform = from_origin(500000.0 + 80 * i, 3000000.0, 10.0, 10.0)
        write_tif(
            tmp_path / "images" / f"c{i}.tif", np.ones((16, 16, 2), np.uint16), transform=transform
        )
        write_tif(
            tmp_path / "masks" / f"c{i}.tif", np.ones((16, 16), np.uint8), transform=transform
        )
    # planned here, the chips are too few for a spatial split and a random one would leak
    report = formats_check(tmp_path)
    assert not report.ok
    assert any("--stride equal to --size" in p for p in report.problems), report.problems
    # the user's own lists that put overlapping chips in different splits: a warning
    lists = tmp_path / "lists"
    lists.mkdir()
    for name, stems in {"train": "c0 c1 c2 c3 c4 c5", "val": "c6 c7", "test": "c8 c9"}.items():
        (lists / f"{name}.txt").write_text("".join(f"{s}\n" for s in stems.split()))
    report = formats_check(tmp_path, split_dir=lists)
    assert report.ok, report.problems
    assert any("overlap on the ground across the" in w for w in report.warnings), report.warnings
    apart = tmp_path / "apart"
    for i in range(4):  # side by side: edges touch, no overlap
        transform = from_origin(500000.0 + 160 * i, 3000000.0, 10.0, 10.0)
        write_tif(
            apart / "images" / f"c{i}.tif", np.ones((16, 16, 2), np.uint16), transform=transform
        )
        write_tif(apart / "masks" / f"c{i}.tif", np.ones((16, 16), np.uint8), transform=transform)
    assert formats_check(apart).warnings == []


def test_landslide_fraction_of_band_samples_matches_the_training_statistics(tif_dir):
    from landslide_tf.data.pipeline import landslide_fraction
    from landslide_tf.data.stats import training_statistics

    samples = formats.find_format_samples("folder", tif_dir)
    masks = [formats.read_bands(s, "folder", [0])[1] for s in samples]
    expected = sum(float(m.sum()) for m in masks) / sum(m.size for m in masks)
    assert landslide_fraction(samples, "folder") == pytest.approx(expected)
    stats = training_statistics(samples, "folder", root=tif_dir)
    assert stats["landslide_fraction"] == pytest.approx(expected)


def test_every_format_is_one_registry_entry(l4s_dir, tif_dir, synth_dir):
    roots = {"bijie": synth_dir, "l4s": l4s_dir, "folder": tif_dir}
    assert set(formats.FORMATS) == set(roots)
    for name, root in roots.items():
        assert formats.detect_format(root) == name
        spec = formats.default_spec(name, root, size=16)
        assert spec.data_format == name and spec.channels == len(
            formats.available_bands(name, root)
        )
        sample = formats.find_format_samples(name, root)[0]
        image, dem, mask, _ = formats.read_tile(sample, spec)
        assert image.shape[-1] == spec.image_channels and mask.shape == image.shape[:2]
        assert (dem is not None) == (name == "bijie")
        split = formats.plan_splits(name, formats.find_format_samples(name, root))
        assert set(split) == {"train", "val", "test"} and all(split.values())
    with pytest.raises(UserError, match="unknown --data-format 'tiff'; expected one of bijie"):
        formats.check_format("tiff")
