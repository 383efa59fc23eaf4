"""Serving safety (code review): what ``predict`` can check from the model's settings, it
checks before the network (a run's ``best.keras`` or a SavedModel) is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import not_loaded, one_line

import landslide_tf.inference.predictor as predictor_module
from landslide_tf.cli.predict import main
from landslide_tf.data.spec import bijie_spec
from landslide_tf.errors import UserError
from landslide_tf.inference.predictor import Predictor
from landslide_tf.inference.settings import InferenceSettings


def run_dir(root: Path, modalities: str = "rgb+dem", tta: bool = False) -> Path:
    """A run directory whose config says what it takes; its network is never loaded."""
    run = root / f"run_{modalities.replace('+', '_')}"
    run.mkdir()
    config = {"modalities": modalities, "image_size": 32, "threshold": 0.5, "tta": tta}
    (run / "config.json").write_text(json.dumps(config))
    return run


def saved_model_dir(root: Path, settings: InferenceSettings) -> Path:
    """A SavedModel directory with a valid model card; its graph is never loaded."""
    saved = root / "saved"
    (saved / "assets").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"never read")
    card = {"settings": settings.to_dict()}
    (saved / "assets" / "model_card.json").write_text(json.dumps(card))
    return saved


@pytest.fixture
def tiles(tmp_path) -> dict[str, Path]:
    """An existing tile, DEM and scene (their content is never read)."""
    found = {}
    for name in ("t.png", "d.png", "s.png"):
        (tmp_path / name).write_bytes(b"not read")
        found[name] = tmp_path / name
    return found


@pytest.fixture
def no_loading(monkeypatch):
    """Loading a network (Keras or SavedModel) fails the test."""
    import tensorflow as tf

    monkeypatch.setattr(predictor_module, "load_inference_model", not_loaded)
    monkeypatch.setattr(tf.saved_model, "load", not_loaded)


# --- 1: an input the model needs but the command lacks: one line before the model loads ----
@pytest.mark.parametrize(
    "modalities, given, expected",
    [
        ("rgb+dem", ["--image", "t.png"], "needs --dem"),
        ("rgb+dem", ["--scene", "s.png"], "needs --dem"),
        ("dem", ["--image", "t.png"], "needs --dem"),
        ("rgb", ["--dem", "d.png"], "needs --image"),
    ],
)
def test_a_missing_model_input_is_refused_before_the_model_loads(
    modalities, given, expected, tmp_path, tiles, capsys, no_loading
):
    run = run_dir(tmp_path, modalities)
    out = tmp_path / "out" / "m.png"
    argv = [str(run), given[0], str(tiles[given[1]]), "--out", str(out)]
    assert main(argv) == 2
    assert expected in one_line(capsys)
    assert not out.parent.exists()


@pytest.mark.parametrize("flag", ["--image", "--dem", "--scene"])
def test_a_missing_input_file_is_refused_before_the_model_loads(
    flag, tmp_path, tiles, capsys, no_loading
):
    run = run_dir(tmp_path)
    given = {"--image": tiles["t.png"], "--dem": tiles["d.png"]}
    if flag == "--scene":
        given = {"--scene": tiles["s.png"], "--dem": tiles["d.png"]}
    given[flag] = tmp_path / "absent.png"
    argv = [str(run), "--out", str(tmp_path / "m.png")]
    for option, path in given.items():
        argv += [option, str(path)]
    assert main(argv) == 2
    assert f"{flag} {tmp_path / 'absent.png'}: no such file" in one_line(capsys)


# --- 2: what Predictor.load refuses, it refuses before it loads the network ----------------
@pytest.mark.parametrize("nodata", ["nan", "inf"])
def test_a_non_finite_dem_nodata_is_refused_before_the_model_loads(
    nodata, tmp_path, tiles, capsys, no_loading
):
    run = run_dir(tmp_path)
    argv = [str(run), "--image", str(tiles["t.png"]), "--dem", str(tiles["d.png"]),
            "--out", str(tmp_path / "m.png"), "--dem-nodata", nodata]  # fmt: skip
    assert main(argv) == 2
    assert "DEM nodata must be a finite number" in one_line(capsys)


@pytest.mark.parametrize(
    "flags, kwargs, expected",
    [
        (["--no-tta"], {"tta": False}, "was exported with flip averaging on"),
        (["--tta", "--tta-transforms", "dihedral"], {"tta": True, "tta_transforms": "dihedral"},
         "was exported with TTA transforms flips"),
    ],
)  # fmt: skip
def test_a_saved_model_refuses_other_tta_before_it_is_loaded(
    flags, kwargs, expected, tmp_path, tiles, capsys, no_loading
):
    saved = saved_model_dir(tmp_path, InferenceSettings(spec=bijie_spec(32), tta=True))
    argv = [str(saved), "--image", str(tiles["t.png"]), "--dem", str(tiles["d.png"]),
            "--out", str(tmp_path / "m.png"), *flags]  # fmt: skip
    assert main(argv) == 2
    assert expected in one_line(capsys)
    with pytest.raises(UserError, match=expected):
        Predictor.load(saved, **kwargs)
