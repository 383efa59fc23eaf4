"""Tests for landslide_tf.experiments.figures: the panels of figures 5 and 6 come from the run's
input spec (multi-band runs in true colour with their own DEM band), and figure 6's column
heads carry the mean inside-mask share over the tiles."""

import json
import math

import numpy as np
import pytest

from landslide_tf.data.bands import L4S_BANDS, band_indices
from landslide_tf.data.spec import bijie_spec, multiband_spec
from landslide_tf.experiments import figures
from landslide_tf.experiments.runs import RunResult
from landslide_tf.explain.figures import display_channels

#: The documented multi-band study: ``--data-format l4s --bands B2,B3,B4,slope,dem``.
L4S_RUN_BANDS = ["B2", "B3", "B4", "slope", "dem"]


def l4s_spec(size: int = 8):
    names = L4S_RUN_BANDS
    return multiband_spec(
        names,
        "standard",
        [[0.3, 0.1]] * 3 + [[20.0, 5.0], [1500.0, 20.0]],
        size=size,
        data_format="l4s",
        source_bands=L4S_BANDS,
        source_indices=band_indices(names, L4S_BANDS),
    )


def marked_bands(n: int = 2, size: int = 8, channels: int = 5) -> np.ndarray:
    """``(n, size, size, channels)``: band ``c`` is 0 but for one bright pixel at ``(c, c)``,
    so a panel shows which band it was drawn from."""
    x = np.zeros((n, size, size, channels), np.float32)
    for c in range(channels):
        x[:, c, c, c] = 5.0
    return x


def bright_pixel(image: np.ndarray) -> list[int]:
    return np.argwhere(image == image.max()).ravel().tolist()


@pytest.fixture
def captured_grid(monkeypatch):
    """Stands in for plot_predictions and keeps what figure 5 hands it."""
    from landslide_tf.evaluation import plots

    calls = {}

    def fake(images, dems, truths, preds, path, **kwargs):
        calls.update(images=images, dems=dems, image_label=kwargs.get("image_label"))
        return path

    monkeypatch.setattr(plots, "plot_predictions", fake)
    return calls


def test_fig5_shows_a_multiband_run_in_true_colour_with_its_dem_band(tmp_path, captured_grid):
    x = marked_bands()  # B2, B3, B4, slope, dem: bright at (0,0), (1,1), ..., (4,4)
    y = np.zeros((*x.shape[:-1], 1), np.float32)
    probs = {"U-Net (BCE)": np.zeros_like(y)}
    figures.plot_study_predictions(x, y, ["a", "b"], l4s_spec(), probs, tmp_path / "f5.png")
    rgb = captured_grid["images"]  # (N, H, W, 3)
    assert rgb is not None and rgb.shape == (2, 8, 8, 3)
    assert [bright_pixel(rgb[0, ..., k]) for k in range(3)] == [[2, 2], [1, 1], [0, 0]]
    assert captured_grid["image_label"] == "true colour (B4,B3,B2)"
    np.testing.assert_array_equal(captured_grid["dems"], x[..., 4])  # the band named dem


def test_fig5_names_the_bands_of_a_run_without_b4_b3_b2(tmp_path, captured_grid):
    names = ["B8", "B11", "B12", "dem"]
    spec = multiband_spec(names, "standard", [[0.0, 1.0]] * 4, size=8, data_format="l4s")
    x = marked_bands(channels=4)
    y = np.zeros((*x.shape[:-1], 1), np.float32)
    figures.plot_study_predictions(x, y, ["a", "b"], spec, {}, tmp_path / "f5.png")
    assert captured_grid["image_label"] == "bands as RGB (B8,B11,B12)"
    np.testing.assert_array_equal(captured_grid["dems"], x[..., 3])


@pytest.mark.parametrize(
    ("modalities", "derived", "channels"),
    [("rgb+dem", (), 4), ("rgb", (), 3), ("dem", (), 1), ("rgb+dem", ("slope",), 5)],
)
def test_fig5_shows_a_bijie_run_as_before(tmp_path, captured_grid, modalities, derived, channels):
    spec = bijie_spec(size=8, modalities=modalities, derived=derived)
    x = np.random.default_rng(0).uniform(0.0, 1.0, (2, 8, 8, channels)).astype(np.float32)
    y = np.zeros((*x.shape[:-1], 1), np.float32)
    figures.plot_study_predictions(x, y, ["a", "b"], spec, {}, tmp_path / "f5.png")
    before = [display_channels(tile, modalities) for tile in x]  # the rule of release 0.1
    for got, index in ((captured_grid["images"], 0), (captured_grid["dems"], 1)):
        if before[0][index] is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, np.stack([b[index] for b in before]))
    assert captured_grid["image_label"] == "image (RGB)"
    assert (captured_grid["dems"] is None) == (modalities == "rgb")


def test_fig6_column_heads_give_the_mean_share_over_the_tiles():
    x = np.random.default_rng(0).uniform(0.0, 1.0, (3, 8, 8, 4)).astype(np.float32)
    y = np.zeros((3, 8, 8, 1), np.float32)
    y[:, 2:5, 2:5] = 1.0
    cams = {"U-Net (Dice)": np.full((3, 8, 8), 0.5), "ResUNet (BCE)": np.full((3, 8, 8), 0.5)}
    energy = {"U-Net (Dice)": [0.2, math.nan, 0.6], "ResUNet (BCE)": [0.9, 0.5, 0.1]}
    fig = figures.study_gradcam_figure(x, y, ["t0", "t1", "t2"], bijie_spec(size=8), cams, energy)
    titles = [ax.get_title() for ax in fig.axes]  # row by row, 3 columns
    assert titles[1] == "U-Net (Dice)\nmean inside mask: 40%\ninside mask: 20%"
    assert titles[2] == "ResUNet (BCE)\nmean inside mask: 50%\ninside mask: 90%"
    assert titles[3:6] == ["t1: mask 14% of tile", "inside mask: n/a", "inside mask: 50%"]
    assert titles[0] == "t0: mask 14% of tile"  # a Bijie run's first column as before


def test_fig6_draws_a_multiband_run_over_its_true_colour():
    x = marked_bands(n=1)
    y = np.zeros((1, 8, 8, 1), np.float32)
    cams = {"U-Net (BCE)": np.zeros((1, 8, 8))}
    fig = figures.study_gradcam_figure(x, y, ["t0"], l4s_spec(), cams, {"U-Net (BCE)": [0.3]})
    background = np.asarray(fig.axes[0].images[0].get_array())  # (H, W, 3)
    assert [bright_pixel(background[..., k]) for k in range(3)] == [[2, 2], [1, 1], [0, 0]]
    assert fig.axes[0].get_title().startswith("true colour (B4,B3,B2)\n")


def test_figures_5_and_6_of_an_l4s_run_read_its_spec(tmp_path):
    """load_test_tiles hands the figures the run's input spec, not a modalities string."""
    pytest.importorskip("h5py")
    from band_data import make_l4s

    from landslide_tf.training.config import TrainConfig

    data = make_l4s(tmp_path / "L4S", size=16)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig.from_dict(
        {"data": str(data), "data_format": "l4s", "bands": L4S_RUN_BANDS, "image_size": 16}
    ).to_dict()
    (run_dir / "config.json").write_text(json.dumps({**config, "input": l4s_spec(16).to_dict()}))
    run = RunResult(name="r", model="unet", loss="bce", seed=42, stage=1, status="trained",
                    run_dir=str(run_dir))  # fmt: skip

    x, y, stems, spec = figures.load_test_tiles(run, 2)
    assert x.shape == (2, 16, 16, 5) and stems == ["test_7", "test_8"]
    assert spec.channel_names == L4S_RUN_BANDS and spec.display_label() == "true colour (B4,B3,B2)"
    rgb, dem, label = figures.study_panels(x, spec)
    np.testing.assert_array_equal(dem, x[..., 4])
    assert rgb.shape == (2, 16, 16, 3) and label == "true colour (B4,B3,B2)"
    probs = {"U-Net (BCE)": np.full_like(y, 0.5)}
    cams, energy = {"U-Net (BCE)": np.full(y.shape[:-1], 0.5)}, {"U-Net (BCE)": [0.4, 0.6]}
    assert figures.plot_study_predictions(x, y, stems, spec, probs, tmp_path / "f5.png").is_file()
    fig6 = figures.plot_study_gradcam(x, y, stems, spec, cams, energy, tmp_path / "f6.png")
    assert fig6.stat().st_size > 0
