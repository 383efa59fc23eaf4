"""Run directories and SavedModels written by release 0.1.0 still load, evaluate, predict and
export with today's code, and give the probabilities the release gave (fixtures made by
tests/fixtures/legacy_0_1/make_fixtures.py at commit 367116a)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LEGACY = Path(__file__).parent / "fixtures" / "legacy_0_1"
#: The release computed these in float32 on this kind of CPU; oneDNN may reorder sums.
ATOL = 1e-4


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return dict(np.load(LEGACY / "expected.npz"))


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(LEGACY / name, target)
    return target


def _inputs(kind: str, expected: dict[str, np.ndarray]) -> tuple:
    if kind == "bijie":
        return expected["image"], expected["dem"]
    return expected["bands"], None


@pytest.mark.parametrize("kind", ["bijie", "folder"])
def test_release_run_dir_predicts_as_the_release_did(kind, expected, tmp_path):
    from landslide_tf.inference.predictor import Predictor

    run = _copy(tmp_path, f"{kind}_run")
    images, dems = _inputs(kind, expected)
    prob = Predictor.load(run).predict_batch(images, dems)
    np.testing.assert_allclose(prob, expected[f"{kind}_run"], atol=ATOL)


@pytest.mark.parametrize("kind", ["bijie", "folder"])
def test_release_saved_model_predicts_as_the_release_did(kind, expected, tmp_path):
    from landslide_tf.inference.predictor import Predictor

    saved = _copy(tmp_path, f"{kind}_saved_model")
    images, dems = _inputs(kind, expected)
    prob = Predictor.load(saved).predict_batch(images, dems)
    np.testing.assert_allclose(prob, expected[f"{kind}_saved_model"], atol=ATOL)


@pytest.mark.parametrize("kind", ["bijie", "folder"])
def test_release_run_dir_evaluates_and_exports(kind, expected, tmp_path):
    import tensorflow as tf

    run = _copy(tmp_path, f"{kind}_run")
    data = _copy(tmp_path, f"{kind}_data")
    env = {"PYTHONPATH": str(Path(__file__).parents[1])}
    cmd = [sys.executable, "-m", "landslide_tf.evaluate", str(run), "--data", str(data)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), **env})
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0 and metrics["n_tiles"] >= 1

    out = tmp_path / "exported"
    cmd = [sys.executable, "-m", "landslide_tf.export", str(run), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**_env(), **env})
    assert done.returncode == 0, done.stderr
    serving = tf.saved_model.load(str(out)).signatures["serving_default"]
    images, dems = _inputs(kind, expected)
    if kind == "bijie":
        spec = serving.structured_input_signature[1]
        assert spec["image"].dtype == tf.uint8 and spec["dem"].dtype == tf.float32
        got = serving(image=tf.constant(images), dem=tf.constant(dems))
    else:
        assert serving.structured_input_signature[1]["image"].dtype == tf.float32
        got = serving(image=tf.constant(images))
    np.testing.assert_allclose(got["probability"].numpy(), expected[f"{kind}_run"], atol=ATOL)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)
