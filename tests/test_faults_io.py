"""Faults round 3 (issue 23) for the writers and the export, and the ensemble export (21).

Every case asserts the exit code, the one error line and the file tree before and after:
a failed or short write (a full disk: simulated ENOSPC everywhere, a real small tmpfs where
the platform allows mounting one) removes what it started and exits 2 naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_predict import make_run, raw_inputs

from landslide_tf.cli.export import main as export_main
from landslide_tf.files import STAGING_MARK
from landslide_tf.inference.predictor import Predictor


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (relative, sorted), hidden ones included."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def small_disk(tmp_path):
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


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """Three hand-made RGB+DEM runs with different weights (ensemble members)."""
    import keras

    root = tmp_path_factory.mktemp("members")
    made = []
    for i in range(3):
        keras.utils.set_random_seed(100 + i)
        made.append(make_run(root / f"m{i}", threshold=0.4 + 0.05 * i))
    return made


def batch(n: int = 2, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    pairs = [raw_inputs(size, size, seed=i) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


# --- case 9: an all-NaN DEM is nodata in the SavedModel too ------------------------------


def test_saved_model_returns_nodata_for_an_all_nan_dem(runs, tmp_path):
    out = tmp_path / "sm"
    assert export_main([str(runs[0]), "--out", str(out), "--dem-nodata", "-9999"]) == 0
    images, dems = batch(3)
    dems[1] = np.nan  # no valid cell: nothing to predict from
    dems[2] = -9999.0  # the baked-in nodata value everywhere: the same
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    got = serve(image=tf.constant(images), dem=tf.constant(dems))
    prob, mask = got["probability"].numpy(), got["mask"].numpy()
    assert np.isfinite(prob[0]).all()
    assert np.isnan(prob[1]).all() and np.isnan(prob[2]).all()
    assert (mask[1:] == 0).all()
    # the in-package predictor (predict, scene) applies the same rule
    inside = Predictor.load(runs[0], nodata=-9999.0).predict_batch(images, dems)
    assert np.isnan(inside[1:]).all()
    np.testing.assert_allclose(prob[0], inside[0], atol=1e-5)


# --- case 12 and case 1 (export): a full disk is one line, nothing left -----------------


def test_export_on_a_simulated_full_disk_is_one_line(runs, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "write failed: No space left")

    monkeypatch.setattr(tf.saved_model, "save", full)
    (tmp_path / "keep.txt").write_text("x")
    before = tree(tmp_path)
    out = tmp_path / "sm"
    assert export_main([str(runs[0]), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(out) in line and "No space left on device" in line and "free some" in line
    assert "Traceback" not in line and "ResourceExhausted" not in line
    assert tree(tmp_path) == before


def test_export_on_a_real_full_disk_is_one_line(runs, small_disk, capsys):
    out = small_disk / "sm"
    assert tree(small_disk) == []
    assert export_main([str(runs[0]), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert str(out) in line and "No space left on device" in line
    assert tree(small_disk) == []


# --- case 16: a killed export's staging folder is removed by the next export ------------


def test_next_export_removes_a_killed_exports_staging_and_only_that(runs, tmp_path, capsys):
    out = tmp_path / "sm"
    code = textwrap.dedent(
        f"""
        import os, signal
        import tensorflow as tf
        from landslide_tf.inference import serving

        def killed(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of the save

        serving.tf.saved_model.save = killed
        from landslide_tf.cli.export import main
        main([{str(runs[0])!r}, "--out", {str(out)!r}])
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(".sm.")]
    assert len(stale) == 1 and (stale[0] / STAGING_MARK).is_file()
    foreign = tmp_path / ".sm.someone.staging"  # no marker: not ours, kept
    foreign.mkdir()
    (foreign / "data.txt").write_text("theirs")
    assert export_main([str(runs[0]), "--out", str(out)]) == 0
    capsys.readouterr()
    assert not stale[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".sm.someone.staging", "sm"]
    assert (foreign / "data.txt").read_text() == "theirs"
    assert (out / "saved_model.pb").is_file()


# --- issue 21: an ensemble exports as ONE SavedModel -------------------------------------


def test_ensemble_exports_one_saved_model_with_the_mean_probability(runs, tmp_path, capsys):
    out = tmp_path / "ensemble"
    argv = [*map(str, runs), "--out", str(out)]
    assert export_main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    images, dems = batch(2, size=36)
    members = [Predictor.load(r).predict_batch(images, dems) for r in runs]
    assert np.abs(members[0] - members[1]).max() > 1e-4  # members really differ
    expected = np.mean(members, axis=0)
    loaded = tf.saved_model.load(str(out))  # plain TensorFlow
    serve = loaded.signatures["serving_default"]
    single = tf.saved_model.load(str(_single_export(runs[0], tmp_path)))
    assert serve.structured_input_signature == (
        single.signatures["serving_default"].structured_input_signature
    )
    got = serve(image=tf.constant(images), dem=tf.constant(dems))
    np.testing.assert_allclose(got["probability"].numpy(), expected, atol=1e-5)
    card = json.loads((out / "assets" / "model_card.json").read_text())
    assert [m["run_dir"] for m in card["ensemble"]["members"]] == [str(r) for r in runs]
    threshold = card["threshold"]
    assert threshold == pytest.approx(np.mean([0.4, 0.45, 0.5]))
    np.testing.assert_array_equal(got["mask"].numpy(), (expected >= threshold).astype(np.uint8))
    markdown = (out / "assets" / "MODEL_CARD.md").read_text()
    assert all(str(r) in markdown for r in runs) and "## Ensemble (3 members" in markdown
    # the ensemble SavedModel is a model like any other for the predictor
    again = Predictor.load(out).predict_batch(images, dems)
    np.testing.assert_allclose(again, expected, atol=1e-5)


def _single_export(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "single"
    if not out.exists():
        assert export_main([str(run), "--out", str(out)]) == 0
    return out


def test_ensemble_members_with_another_input_are_refused(runs, tmp_path, capsys):
    rgb = make_run(tmp_path / "rgb", modalities="rgb")
    before = tree(tmp_path)
    out = tmp_path / "ensemble"
    assert export_main([str(runs[0]), str(rgb), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "must share the input spec" in line and str(rgb) in line
    assert tree(tmp_path) == before


# --- case 1: every writer detects a failed or short write --------------------------------


class FullDisk:
    """``open`` for ``landslide_tf.files`` whose files named like ``match`` take half of a
    write and then fail with ENOSPC (a disk filling up mid-file)."""

    def __init__(self, match: str) -> None:
        self.match = match
        self.failed: list[str] = []

    def __call__(self, file, mode="r", *args, **kwargs):
        handle = open(file, mode, *args, **kwargs)  # noqa: SIM115 - returned to the caller
        # the temporary name of a target NAME is .NAME.<pid>.tmp.<suffix>
        if "w" not in mode or not os.path.basename(str(file)).startswith(f".{self.match}."):
            return handle
        self.failed.append(str(file))
        return _ShortWriter(handle)


class _ShortWriter:
    """A file object that writes half of what it is given, then raises ENOSPC."""

    def __init__(self, handle) -> None:
        self.handle = handle

    def write(self, data):
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def full_disk(monkeypatch, match: str) -> FullDisk:
    from landslide_tf import files

    fake = FullDisk(match)
    monkeypatch.setattr(files, "open", fake, raising=False)
    return fake


def assert_full_disk_line(line: str, path: Path) -> None:
    assert f"{path}: No space left on device" in line, line
    assert "free some disk space" in line, line


@pytest.fixture(scope="module")
def tile(tmp_path_factory) -> tuple[Path, Path]:
    from test_predict import write_png

    folder = tmp_path_factory.mktemp("tile")
    image, dem = raw_inputs(48, 48)
    write_png(folder / "img.png", image)
    write_png(folder / "dem.png", np.clip(dem - 50, 0, 255).astype(np.uint8))
    return folder / "img.png", folder / "dem.png"


@pytest.mark.parametrize("failing", ["m.png", "p.png", "m_overlay.png"])
def test_predict_tile_on_a_full_disk_leaves_no_output(
    runs, tile, tmp_path, monkeypatch, capsys, failing
):
    from landslide_tf.cli.predict import main as predict_main

    out = tmp_path / "out"
    out.mkdir()
    disk = full_disk(monkeypatch, failing)
    argv = [str(runs[0]), "--image", str(tile[0]), "--dem", str(tile[1]),
            "--out", str(out / "m.png"), "--probability", str(out / "p.png"), "--overlay"]  # fmt: skip
    assert predict_main(argv) == 2
    assert disk.failed, "the simulated full disk was never hit"
    assert_full_disk_line(one_error_line(capsys), out / failing)
    assert tree(out) == []  # no 0-byte m.png, no m.png without its overlay


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, Path]:
    from test_scene import geo_pair

    pytest.importorskip("rasterio")
    folder = tmp_path_factory.mktemp("scene")
    img, dem_tif, *_ = geo_pair(folder, height=200, width=220)
    return img, dem_tif


def scene_argv(run: Path, scene: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    return [str(run), "--scene", str(scene[0]), "--dem", str(scene[1]), "--out", str(out),
            "--window", "64", "--quiet", *extra]  # fmt: skip


@pytest.mark.parametrize(
    "failing", ["p.png", "p.npy", "p.geojson", "v.png"], ids=["png", "npy", "polygons", "preview"]
)
def test_predict_scene_on_a_full_disk_leaves_no_output(
    runs, scene, tmp_path, monkeypatch, capsys, failing
):
    from landslide_tf.cli.predict import main as predict_main

    out = tmp_path / "out"
    out.mkdir()
    target = "p.tif" if failing in ("p.geojson", "v.png") else failing
    extra = {"p.geojson": ["--polygons", str(out / "p.geojson")],
             "v.png": ["--preview", str(out / "v.png")]}.get(failing, [])  # fmt: skip
    disk = full_disk(monkeypatch, failing)
    assert predict_main(scene_argv(runs[0], scene, out / target, *extra)) == 2
    assert disk.failed
    assert_full_disk_line(one_error_line(capsys), out / failing)
    assert tree(out) == []  # the map is removed with the polygons or preview that failed


def test_predict_scene_geotiff_write_failure_leaves_no_partial_tif(
    runs, scene, tmp_path, monkeypatch, capsys
):
    import rasterio.io
    from rasterio.errors import RasterioIOError

    from landslide_tf.cli.predict import main as predict_main

    calls = []
    real = rasterio.io.DatasetWriter.write

    def write(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the second strip does not fit
            raise RasterioIOError("TIFFAppendToStrip: Write error: No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetWriter, "write", write)
    out = tmp_path / "out"
    out.mkdir()
    assert predict_main(scene_argv(runs[0], scene, out / "p.tif")) == 2
    assert len(calls) == 2
    assert_full_disk_line(one_error_line(capsys), out / "p.tif")
    assert tree(out) == []


def test_predict_scene_on_a_real_full_disk(runs, scene, small_disk, capsys):
    import cv2

    from landslide_tf.cli.predict import main as predict_main

    failed = []
    for name in ("p.tif", "p.png"):
        out = small_disk / name
        code = predict_main(scene_argv(runs[0], scene, out, "--window", "256"))
        err = capsys.readouterr().err
        if code == 0:  # it fitted: then it is complete and readable
            assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).shape == (200, 220)
            out.unlink()
            continue
        assert code == 2 and err.count("\n") == 1, err
        assert f"{out}: No space left on device (free some disk space)" in err, err
        assert tree(small_disk) == []
        failed.append(name)
    assert "p.tif" in failed  # 176 KB of float32 GeoTIFF cannot fit in 64 KiB


def test_study_table_on_a_full_disk_leaves_neither_half(tmp_path, monkeypatch):
    from landslide_tf.experiments import tables

    full_disk(monkeypatch, "table1.csv")
    with pytest.raises(OSError) as info:
        tables.write_table(tmp_path, "table1", "| a |\n", [{"a": 1.0, "b": None}])
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "table1.csv")
    assert tree(tmp_path) == []
    monkeypatch.undo()
    tables.write_table(tmp_path, "table1", "| a |\n", [{"a": 1.0, "b": None}])
    assert (tmp_path / "table1.csv").read_text().splitlines() == ["a,b", "1.0,"]
    assert tree(tmp_path) == ["table1.csv", "table1.md"]


def test_train_checkpoint_on_a_full_disk_is_one_line_and_leaves_no_checkpoint(
    synth_dir, tmp_path, monkeypatch, capsys
):
    import keras
    from test_train import run_main, tiny_argv

    def save(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04 half a zip")  # a short write, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", save)
    run_dir = tmp_path / "run"
    assert run_main(tiny_argv(synth_dir, run_dir, **{"--epochs": "1"})) == 2
    line = one_error_line(capsys)
    assert_full_disk_line(line, run_dir / "epoch-0001.keras")
    left = tree(run_dir)
    assert not [p for p in left if p.endswith(".keras") or ".tmp" in p], left


# --- case 6: weights of another architecture are refused ---------------------------------


@pytest.fixture(scope="module")
def fake_presets(tmp_path_factory) -> dict[str, Path]:
    """keras-hub preset folders whose config.json says ResNet-18 / ResNet-50 (tiny weights:
    the architecture check reads config.json before any weight; nothing is downloaded)."""
    keras_hub = pytest.importorskip("keras_hub", reason="encoder presets need keras-hub")
    from landslide_tf.models.encoders import ENCODERS

    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 8, 8, 8], stackwise_num_blocks=[1, 1, 1, 1],
        stackwise_num_strides=[1, 2, 2, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3),
    )  # fmt: skip
    root = tmp_path_factory.mktemp("presets")
    folders = {}
    for name in ("resnet18", "resnet50"):
        folder = root / name
        backbone.save_to_preset(str(folder))
        preset = json.loads((folder / "config.json").read_text())
        preset["config"].update(ENCODERS[name].config)
        (folder / "config.json").write_text(json.dumps(preset))
        folders[name] = folder
    return folders


def test_resnet50_weights_for_resnet18_are_refused_in_one_line(
    fake_presets, synth_dir, tmp_path, capsys
):
    from test_train import run_main, tiny_argv

    from landslide_tf.models.encoder_weights import check_preset_architecture
    from landslide_tf.models.encoders import ENCODERS

    check_preset_architecture("resnet18", ENCODERS["resnet18"], fake_presets["resnet18"])
    weights = fake_presets["resnet50"]
    before = tree(weights)
    run_dir = tmp_path / "run"
    argv = tiny_argv(synth_dir, run_dir, **{"--encoder": "resnet18",
                     "--encoder-weights": str(weights), "--depth": "5"})  # fmt: skip
    assert run_main(argv) == 2
    line = one_error_line(capsys)
    assert f"--encoder-weights {weights} holds another ResNetBackbone" in line, line
    assert "not encoder resnet18: use --encoder resnet50" in line, line
    assert tree(weights) == before
    assert not run_dir.exists() or not [p for p in tree(run_dir) if p.endswith(".keras")]


def test_loss_curve_on_a_full_disk_leaves_no_half_png(tmp_path, monkeypatch):
    import matplotlib.figure

    from landslide_tf.evaluation.plots import plot_loss_curves

    def savefig(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")  # a short write, then ENOSPC
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    target = tmp_path / "loss_curve.png"
    history = {"run": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}}
    with pytest.raises(OSError) as info:
        plot_loss_curves(history, target)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert tree(tmp_path) == []


def test_export_on_a_disk_too_full_for_the_staging_marker(runs, small_disk, capsys):
    filler = small_disk / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:  # fill the disk to the last block
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    before = tree(small_disk)
    out = small_disk / "sm"
    assert export_main([str(runs[0]), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert f"{out}: No space left on device (free some disk space)" in line, line
    assert tree(small_disk) == before  # not even an empty staging folder


def test_ensemble_members_that_differ_in_tta_or_repeat_are_refused(runs, tmp_path, capsys):
    import shutil

    flipped = tmp_path / "flipped"
    shutil.copytree(runs[1], flipped)
    config = json.loads((flipped / "config.json").read_text())
    config["tta"] = True
    (flipped / "config.json").write_text(json.dumps(config))
    before = tree(tmp_path)
    out = tmp_path / "ensemble"
    assert export_main([str(runs[0]), str(flipped), "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "differ in flip averaging" in line and "pass --tta or --no-tta" in line, line
    assert export_main([str(runs[0]), str(runs[0]), "--out", str(out)]) == 2
    assert "the same run directory twice" in one_error_line(capsys)
    assert tree(tmp_path) == before
    # --no-tta makes them agree: the ensemble is exported
    assert export_main([str(runs[0]), str(flipped), "--out", str(out), "--no-tta"]) == 0
    card = json.loads((out / "assets" / "model_card.json").read_text())
    assert card["settings"]["tta"] is False and len(card["ensemble"]["members"]) == 2
