"""The study's figures: loss curves (fig 4), predictions (fig 5), GradCAM (fig 6).

Each figure shows the final models (the three bases with their selected loss and the
attention variants), using the first finished seed of each.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from landslide_tf.experiments.reference import loss_label, model_label
from landslide_tf.experiments.runs import RunResult
from landslide_tf.files import staged

logger = logging.getLogger(__name__)


def final_label(result: RunResult) -> str:
    """Panel label of a run, for example ``U-Net++ (Dice)``."""
    return f"{model_label(result.model)} ({loss_label(result.loss)})"


def plot_study_loss_curves(runs: Sequence[RunResult], path: Path) -> Path:
    """Fig. 4: training (solid) and validation (dashed) loss per epoch, one panel per model.

    Args:
        runs: one finished run per model.
        path: output PNG.
    """
    from landslide_tf.evaluation.plots import history_dict

    n = len(runs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, run in zip(axes, runs, strict=False):
        history = history_dict(Path(run.run_dir) / "history.csv")
        epochs = history["epoch"]
        for key, style, label in (("loss", "-", "train"), ("val_loss", "--", "validation")):
            if history.get(key):
                ax.plot(epochs[: len(history[key])], history[key], style, marker=".",
                        label=label)  # fmt: skip
        ax.set_title(final_label(run), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{loss_label(run.loss)} loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle("Training and validation loss per model")
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path


def load_test_tiles(run: RunResult, n: int = 4) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """The first ``n`` test tiles of a run's split (landslide tiles first), preprocessed.

    Returns:
        ``(x (N, H, W, C), y (N, H, W, 1), stems, modalities)``.
    """
    from landslide_tf.data.pipeline import load_tile  # any format
    from landslide_tf.training.runs import dataset_options, read_run_config, run_splits

    config, raw = read_run_config(run.run_dir)
    splits = run_splits(config, run.run_dir)
    test = [s for s in splits["test"] if s.landslide] + [
        s for s in splits["test"] if not s.landslide
    ]
    options = dataset_options(config, raw)
    pairs = [load_tile(s, **options) for s in test[:n]]
    x = np.stack([p[0] for p in pairs])  # (N, H, W, C)
    y = np.stack([p[1] for p in pairs])  # (N, H, W, 1)
    return x, y, [s.stem for s in test[:n]], config.modalities


def _split_channels(x: np.ndarray, modalities: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    from landslide_tf.explain.figures import display_channels

    pairs = [display_channels(tile, modalities) for tile in x]
    rgb = None if pairs[0][0] is None else np.stack([p[0] for p in pairs])
    dem = None if pairs[0][1] is None else np.stack([p[1] for p in pairs])
    return rgb, dem


def predict_and_explain(
    runs: Sequence[RunResult], x: np.ndarray, y: np.ndarray, with_cam: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, list[float]]]:
    """Predictions, GradCAMs and inside-mask CAM energy shares of each run on tiles ``x``.

    Returns:
        ``(probs {label: (N, H, W, 1)}, cams {label: (N, H, W)}, energy {label: [share]})``.
    """
    import keras

    from landslide_tf.explain.cam import compute_cam
    from landslide_tf.explain.targets import cam_energy_inside
    from landslide_tf.training.runs import load_run

    probs, cams, energy = {}, {}, {}
    for run in runs:
        label = final_label(run)
        _, model = load_run(run.run_dir)
        probs[label] = model.predict(x, batch_size=8, verbose=0)  # (N, H, W, 1)
        if with_cam:
            try:
                cam = compute_cam(model, x, method="gradcam", probs=probs[label])  # (N, H, W)
                cams[label] = cam
                energy[label] = [cam_energy_inside(c, m) for c, m in zip(cam, y, strict=True)]
            except Exception as exc:  # noqa: BLE001 - one model's CAM must not lose the figure
                logger.warning("GradCAM failed for %s: %s", run.name, exc)
        del model
        keras.backend.clear_session()
    return probs, cams, energy


def plot_study_predictions(
    x: np.ndarray,
    y: np.ndarray,
    stems: Sequence[str],
    modalities: str,
    probs: dict[str, np.ndarray],
    path: Path,
) -> Path:
    """Fig. 5: test tiles (rows): image, DEM, truth, each model's probability map."""
    from landslide_tf.evaluation.plots import plot_predictions

    rgb, dem = _split_channels(x, modalities)
    return plot_predictions(rgb, dem, y, probs, path, names=stems,
                            title="Test tiles: each model's landslide probability")  # fmt: skip


def plot_study_gradcam(
    x: np.ndarray,
    y: np.ndarray,
    stems: Sequence[str],
    modalities: str,
    cams: dict[str, np.ndarray],
    energy: dict[str, list[float]],
    path: Path,
) -> Path:
    """Fig. 6: GradCAM over the image per model (columns) and tile (rows).

    Each panel title gives the share of the CAM energy inside the true landslide mask (the
    mask's own area share is what an evenly spread map would score); column titles give the
    mean share over the tiles.
    """
    rgb, dem = _split_channels(x, modalities)
    background = rgb if rgb is not None else np.repeat(dem[..., None], 3, axis=-1)
    n, labels = len(x), list(cams)
    cols = 1 + len(labels)
    fig = Figure(figsize=(2.3 * cols, 2.4 * n + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, cols, squeeze=False)
    truth = y[..., 0]  # (N, H, W)
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(background[i])
        if truth[i].any():
            ax.contour(truth[i] > 0.5, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(f"{stems[i]}: mask {truth[i].mean():.0%} of tile", fontsize=8)
        for j, label in enumerate(labels, start=1):
            ax = axes[i, j]
            ax.imshow(background[i])
            ax.imshow(cams[label][i], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            if truth[i].any():
                ax.contour(truth[i] > 0.5, levels=[0.5], colors="white", linewidths=0.8)
            share = energy[label][i]
            text = "n/a" if share is None or math.isnan(share) else f"{share:.0%}"
            head = f"{label}\n" if i == 0 else ""
            ax.set_title(f"{head}inside mask: {text}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("GradCAM (white: true landslide); title: share of CAM energy inside the mask")
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as tmp:
        fig.savefig(tmp, dpi=80)
    return path


def mean_energy(energy: dict[str, list[float]]) -> dict[str, float]:
    """Mean inside-mask energy share per model over tiles where it is defined."""
    out = {}
    for label, shares in energy.items():
        valid = [s for s in shares if s is not None and not math.isnan(s)]
        out[label] = float(np.mean(valid)) if valid else math.nan
    return out
