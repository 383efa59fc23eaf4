"""Tests for landslide_tf.evaluation.plots: loss curves and prediction grids as PNG files."""

import matplotlib.image
import numpy as np
import pytest

from landslide_tf.evaluation.plots import history_dict, plot_loss_curves, plot_predictions
from landslide_tf.training.runstate import write_history

ROWS = [
    {"epoch": 1, "loss": 0.9, "val_loss": 1.0, "miou": 0.4, "val_miou": 0.35},
    {"epoch": 2, "loss": 0.7, "val_loss": 0.8, "miou": 0.5, "val_miou": 0.45},
    {"epoch": 3, "loss": 0.6, "val_loss": 0.75, "miou": 0.55, "val_miou": 0.5},
]


class FakeHistory:  # what keras.Model.fit returns
    history = {"loss": [0.9, 0.8], "val_loss": [1.0, 0.9]}


def png_shape(path) -> tuple:
    return matplotlib.image.imread(path).shape


def test_history_dict_accepts_every_history_like(tmp_path):
    write_history(tmp_path / "history.csv", ROWS)
    from_csv = history_dict(tmp_path / "history.csv")
    from_rows = history_dict(ROWS)
    assert from_csv["val_miou"] == pytest.approx([0.35, 0.45, 0.5])
    assert from_rows["epoch"] == [1, 2, 3]
    assert history_dict(FakeHistory())["epoch"] == [1.0, 2.0]  # numbered when absent
    assert history_dict({"loss": [1, 2]})["loss"] == [1.0, 2.0]


def test_loss_curves_for_several_runs(tmp_path):
    write_history(tmp_path / "history.csv", ROWS)
    both = plot_loss_curves(
        {"a": tmp_path / "history.csv", "b": FakeHistory(), "c": ROWS}, tmp_path / "two.png"
    )
    loss_only = plot_loss_curves({"b": FakeHistory()}, tmp_path / "one.png")
    h2, w2, _ = png_shape(both)
    h1, w1, _ = png_shape(loss_only)
    assert h1 == h2 and w2 > 1.5 * w1  # a second panel for val mIoU only where it exists


def test_prediction_grid_has_a_row_per_tile_and_a_column_per_panel(tmp_path):
    rng = np.random.default_rng(0)
    n, size = 3, 16
    images = rng.random((n, size, size, 3)).astype(np.float32)
    dems = rng.random((n, size, size, 1)).astype(np.float32)
    truths = (rng.random((n, size, size, 1)) > 0.7).astype(np.float32)
    preds = {"m1": rng.random((n, size, size, 1)), "m2": rng.random((n, size, size))}
    full = plot_predictions(
        images, dems, truths, preds, tmp_path / "full.png", names=["a", "b", "c"]
    )
    no_rgb = plot_predictions(None, dems, truths, {"m1": preds["m1"]}, tmp_path / "dem.png",
                              threshold=0.5)  # fmt: skip
    hf, wf, _ = png_shape(full)
    hd, wd, _ = png_shape(no_rgb)
    assert hf == hd  # same number of rows
    assert wf / wd == pytest.approx(5 / 3, rel=0.1)  # RGB, DEM, truth, m1, m2 vs DEM, truth, m1
    uint8 = plot_predictions((images * 255).astype(np.uint8), None, truths, {}, tmp_path / "u.png")
    assert png_shape(uint8)[0] == hf


def test_prediction_count_mismatch_is_an_error(tmp_path):
    truths = np.zeros((2, 8, 8))
    with pytest.raises(ValueError, match="has 1 tiles, truths have 2"):
        plot_predictions(None, None, truths, {"m": np.zeros((1, 8, 8))}, tmp_path / "x.png")
