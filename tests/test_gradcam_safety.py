"""Safety of the GradCAM path (landslide_tf.explain, python -m landslide_tf.gradcam).

Untrained tiny U-Nets (32 px, 4 filters, depth 2) on copies of the synthetic tiles: the
findings are about plumbing, not about what a trained model looks at.
"""

import math
import shutil

import keras
import numpy as np
import pytest

from landslide_tf.cli.gradcam import main as gradcam_main
from landslide_tf.explain.cam import compute_cam
from landslide_tf.explain.explain import explain_run
from landslide_tf.explain.figures import save_grid, save_overlay
from landslide_tf.training.config import TrainConfig

SIZE = 32


def tiny_unet(channels: int = 4, policy: str | None = None) -> keras.Model:
    from landslide_tf.models import build_model

    previous = keras.config.dtype_policy()
    try:
        if policy is not None:
            keras.config.set_dtype_policy(policy)
        return build_model("unet", input_shape=(SIZE, SIZE, channels), base_filters=4, depth=2)
    finally:
        keras.config.set_dtype_policy(previous)


def make_run(path, data, test, negatives="off"):
    """A run directory by the train contract, its test split = ``test`` (stems)."""
    from landslide_tf.data import find_samples

    path.mkdir()
    config = TrainConfig(
        model="unet",
        loss="bce",
        image_size=SIZE,
        base_filters=4,
        depth=2,
        data=str(data),
        run_dir=str(path),
        epochs=1,
        negatives=negatives,
    )
    config.save(path / "config.json")
    stems = sorted({s.stem for s in find_samples(data, negatives=negatives)})
    rest = [s for s in stems if s not in test]
    (path / "test.txt").write_text("".join(f"{s}\n" for s in test))
    (path / "val.txt").write_text("".join(f"{s}\n" for s in rest[:3]))
    (path / "train.txt").write_text("".join(f"{s}\n" for s in rest[3:]))
    tiny_unet().save(path / "best.keras")
    return path


@pytest.mark.parametrize(
    ("method", "layer"), [("gradcam++", None), ("scorecam", None), ("gradcam", "bottleneck")]
)
def test_compute_cam_on_a_mixed_bfloat16_model(method, layer):
    """Review finding: compute_cam handed a mixed-precision model (bfloat16 compute, as a
    study's ``load_run`` gives one trained with --precision bfloat16) to tf-keras-vis, which
    failed ("cannot compute Mul ... bfloat16 tensor", "data type not supported") for
    gradcam++, scorecam and any layer below the full-resolution head. The maps must be the
    float32 model's, and the user's model keep its policy."""
    from landslide_tf.training.precision import convert_model, model_precision

    model = tiny_unet(policy="mixed_bfloat16")
    x = np.random.default_rng(0).random((2, SIZE, SIZE, 4), dtype=np.float32)
    cams = compute_cam(model, x, method=method, layer=layer, target="all", batch_size=2)
    assert cams.shape == (2, SIZE, SIZE) and np.all(np.isfinite(cams))
    assert model_precision(model) == "bfloat16"  # the user's model is left as it was
    expected = compute_cam(
        convert_model(model, "float32"), x, method=method, layer=layer, target="all", batch_size=2
    )
    np.testing.assert_allclose(cams, expected, atol=1e-6)


def test_a_stem_that_is_landslide_and_negative_gets_two_figures(synth_dir, tmp_path):
    """Review finding: a Bijie stem present in landslide/ and non-landslide/ (the split keeps
    both in one split) wrote both figures to OUT/<stem>.png, the negative's replacing the
    landslide tile's, and energy.csv pointed both rows at the one file."""
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    for folder in ("image", "dem"):
        shutil.copy(
            data / "landslide" / folder / "syn0000.png",
            data / "non-landslide" / folder / "syn0000.png",
        )
    run = make_run(tmp_path / "run", data, ["syn0000", "syn0001"], negatives="on")
    out = tmp_path / "cams"
    summary = explain_run(run, out=out, n=10, target="all")
    rows = summary["tiles"]
    assert [(r["stem"], r["landslide"]) for r in rows] == [
        ("syn0000", True),
        ("syn0001", True),
        ("syn0000", False),
    ]
    names = [r["png"] for r in rows]
    assert len(set(names)) == 3, names
    assert rows[0]["png"] == "syn0000.png"  # the landslide tile keeps its plain name
    assert all((out / name).stat().st_size > 1000 for name in names)


def test_out_inside_the_dataset_is_refused_before_anything_is_written(synth_dir, tmp_path, capsys):
    """Review finding: --out naming the dataset's image folder replaced the input tiles
    OUT/<stem>.png with the figures (and added grid.png as a tile); it must be a one-line
    error, exit 2, with the dataset untouched."""
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    run = make_run(tmp_path / "run", data, ["syn0000", "syn0001"])
    for folder in ("image", "dem", "mask"):
        target = data / "landslide" / folder
        before = {p.name: p.read_bytes() for p in target.iterdir()}
        assert gradcam_main([str(run), "--out", str(target), "--n", "2"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: --out") and "\n" not in err, err
        assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def _png_width(path) -> int:
    import struct

    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", header[16:20])[0]


def test_dem_only_tiles_with_derived_channels_show_the_dem_once(tmp_path):
    """Review finding: a DEM-only run with derived channels (``--modalities dem --derived
    slope``, 2 channels) drew the DEM twice (background panel and a second "DEM" panel)
    because the figures counted channels instead of asking whether there is an image."""
    rng = np.random.default_rng(0)
    mask, prob, cam = np.zeros((8, 8)), rng.random((8, 8)), rng.random((8, 8))
    dem = rng.random((8, 8, 1), dtype=np.float32)
    dem_slope = rng.random((8, 8, 2), dtype=np.float32)
    one = save_overlay(tmp_path / "dem.png", dem, mask, prob, cam, "t", "dem")
    two = save_overlay(tmp_path / "dem_slope.png", dem_slope, mask, prob, cam, "t", "dem")
    assert _png_width(two) == _png_width(one)
    grid_one = save_grid(tmp_path / "g1.png", dem[None], mask[None], prob[None], cam[None],
                         modalities="dem")  # fmt: skip
    grid_two = save_grid(tmp_path / "g2.png", dem_slope[None], mask[None], prob[None],
                         cam[None], modalities="dem")  # fmt: skip
    assert _png_width(grid_two) == _png_width(grid_one)


def test_cam_energy_of_a_batch_of_one_skips_a_tile_without_landslide():
    """Review finding: the batch rule (tiles without landslide pixels are skipped, ``nan``
    when none is left) was keyed on ``len(cam) > 1``, so a batch of one negative tile, as
    ``compute_cam(model, x[:1])`` gives, scored 0.0 where a batch of two scored ``nan``."""
    from landslide_tf.explain.targets import cam_energy_inside

    cam, empty = np.ones((2, 2)), np.zeros((2, 2))
    assert math.isnan(cam_energy_inside(np.stack([cam, cam]), np.stack([empty, empty])))
    assert math.isnan(cam_energy_inside(cam[None], empty[None]))
    assert cam_energy_inside(cam, empty) == 0.0  # one (H, W) tile: its own share, as before
    mask = np.array([[0, 0], [0, 1]])
    assert cam_energy_inside(cam[None], mask[None]) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "pick, reason",
    [
        (lambda m: m.layers[0].name, "is the model's input"),
        (lambda m: m.layers[-1].name, "is the model's output"),
        (lambda m: "nope", "unknown layer 'nope'"),
    ],
)
def test_an_unexplainable_layer_is_refused_with_its_real_reason(pick, reason):
    """``--layer probability`` (the output, whose output is (N, h, w, 1)) was refused as a
    "layer without a (N, h, w, c) output"."""
    from landslide_tf.errors import UserError
    from landslide_tf.explain.targets import resolve_layer

    model = tiny_unet()
    with pytest.raises(UserError) as info:
        resolve_layer(model, pick(model))
    message = str(info.value)
    assert reason in message and "valid layers: head_features" in message
    assert "(N, h, w, c)" not in message


def test_gradcam_on_a_dataset_the_run_never_saw(synth_dir, tmp_path, capsys):
    """``--data`` naming another dataset: the run's lists would name missing tiles, so the
    refusal says how (--split-dir, --split all), and both of those explain its tiles."""
    run = make_run(tmp_path / "run", synth_dir, ["syn0000", "syn0001"])
    other = tmp_path / "area-b"
    for sub in ("image", "dem", "mask"):
        (other / "landslide" / sub).mkdir(parents=True)
        for i, stem in enumerate(("syn0002", "syn0003", "syn0004")):
            shutil.copy(synth_dir / "landslide" / sub / f"{stem}.png", other / "landslide" / sub / f"b{i}.png")  # fmt: skip
    (other / "train.txt").write_text("b0\n")
    (other / "val.txt").write_text("b1\nb2\n")
    assert gradcam_main([str(run), "--data", str(other), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--split-dir" in err and "--split all" in err
    everything = explain_run(run, data=other, split="all", n=5, out=tmp_path / "all")
    assert sorted(r["stem"] for r in everything["tiles"]) == ["b0", "b1", "b2"]
    listed = explain_run(run, data=other, split="val", split_dir=other, n=5, out=tmp_path / "v")
    assert sorted(r["stem"] for r in listed["tiles"]) == ["b1", "b2"]
