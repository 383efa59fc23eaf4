"""Shared test setup: quiet, seeded, small CPU TensorFlow; paths to shared sample data."""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIJIE_SAMPLE = ROOT.parent / "shared" / "data" / "bijie-sample"


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same seeds."""
    import keras

    keras.utils.set_random_seed(0)  # also seeds Python's and NumPy's global generators
    yield
    # a benchmark script run in-process may silence logging for its own output: undo it, so
    # a later test's caplog sees the package's warnings
    logging.disable(logging.NOTSET)


@pytest.fixture
def bijie_sample() -> Path:
    """The 20 real Bijie tiles (RGB + mask) in ../shared; the test skips where absent."""
    if not (BIJIE_SAMPLE / "landslide" / "image").is_dir():
        pytest.skip(f"real Bijie sample not found at {BIJIE_SAMPLE}")
    return BIJIE_SAMPLE


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A small synthetic Bijie-layout dataset (24 landslide + negatives), made once."""
    from landslide_tf.data import synthesize

    out = tmp_path_factory.mktemp("synth") / "bijie"
    synthesize(out, n=24, seed=0)
    return out
