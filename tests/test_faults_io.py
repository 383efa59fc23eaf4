"""Faults round 3 (issue 23) for the writers and the export, and the ensemble export (21).

Every case asserts the exit code, the one error line and the file tree before and after:
a failed or short write (a full disk: simulated ENOSPC everywhere, a real small tmpfs where
the platform allows mounting one) removes what it started and exits 2 naming the path.
"""

from __future__ import annotations

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
