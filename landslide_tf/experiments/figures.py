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

from landslide_tf.data.bands import display_input
from landslide_tf.data.spec import InputSpec
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


def load_test_tiles(
    run: RunResult, n: int = 4
) -> tuple[np.ndarray, np.ndarray, list[str], InputSpec]:
    """The first ``n`` test tiles of a run's split (landslide tiles first), preprocessed.

    Returns:
        ``(x (N, H, W, C), y (N, H, W, 1), stems, spec)``: ``spec`` is the run's input spec
        (from its ``config.json``), which says what the channels of ``x`` are.
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
    return x, y, [s.stem for s in test[:n]], options["spec"]


def study_panels(
    x: np.ndarray, spec: InputSpec
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """What figures 5 and 6 show of network inputs ``x (N, H, W, C)``, as a run's own
    ``predictions.png`` does (``landslide_tf.evaluation.plots.plot_run_predictions``).

    Multi-band inputs (l4s, folder): a stretched RGB of the bands named B4, B3, B2 (else the
    first three bands; ``landslide_tf.data.bands.display_input``), labelled by
    ``spec.display_label()``, and the band named ``dem`` as the model sees it. Bijie inputs:
    the RGB and the DEM (scaled to [0, 1] per tile) of the spec's modalities.

    Returns:
        ``(rgb (N, H, W, 3) or None, dem (N, H, W) or None, image column label)``.
    """
    shown, modalities = display_input(x, spec)
    if not spec.multiband:
        from landslide_tf.explain.figures import display_channels

        pairs = [display_channels(tile, modalities) for tile in shown]
        rgb = None if pairs[0][0] is None else np.stack([p[0] for p in pairs])
        dem = None if pairs[0][1] is None else np.stack([p[1] for p in pairs])
        return rgb, dem, "image (RGB)"
    names = spec.channel_names
    dem_name = spec.dem_band.name if spec.dem_band is not None else "dem"
    dem = x[..., names.index(dem_name)] if dem_name in names else None  # (N, H, W)
    return shown, dem, spec.display_label()


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
    spec: InputSpec,
    probs: dict[str, np.ndarray],
    path: Path,
) -> Path:
    """Fig. 5: test tiles (rows): image, DEM, truth, each model's probability map.

    ``spec`` is the run's input spec (``load_test_tiles``); ``study_panels`` picks the image
    and DEM panels from it.
    """
    from landslide_tf.evaluation.plots import plot_predictions

    rgb, dem, image_label = study_panels(x, spec)
    return plot_predictions(rgb, dem, y, probs, path, names=stems,
                            title="Test tiles: each model's landslide probability",
                            image_label=image_label)  # fmt: skip


def study_gradcam_figure(
    x: np.ndarray,
    y: np.ndarray,
    stems: Sequence[str],
    spec: InputSpec,
    cams: dict[str, np.ndarray],
    energy: dict[str, list[float]],
) -> Figure:
    """Fig. 6 as a ``Figure``: GradCAM over the image per model (columns) and tile (rows).

    Each panel title gives the share of the CAM energy inside the true landslide mask (the
    mask's own area share is what an evenly spread map would score); column titles give the
    mean share over the tiles (``mean_energy``). The background is ``study_panels``' image
    (the DEM where the run has no image bands); a multi-band run names its bands above the
    first column.
    """
    rgb, dem, image_label = study_panels(x, spec)
    background = rgb if rgb is not None else np.repeat(dem[..., None], 3, axis=-1)
    n, labels = len(x), list(cams)
    means = mean_energy(energy)
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
        head = f"{image_label}\n" if i == 0 and spec.multiband else ""
        ax.set_title(f"{head}{stems[i]}: mask {truth[i].mean():.0%} of tile", fontsize=8)
        for j, label in enumerate(labels, start=1):
            ax = axes[i, j]
            ax.imshow(background[i])
            ax.imshow(cams[label][i], cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
            if truth[i].any():
                ax.contour(truth[i] > 0.5, levels=[0.5], colors="white", linewidths=0.8)
            head = f"{label}\nmean inside mask: {_share(means[label])}\n" if i == 0 else ""
            ax.set_title(f"{head}inside mask: {_share(energy[label][i])}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("GradCAM (white: true landslide); title: share of CAM energy inside the mask")
    return fig


def plot_study_gradcam(
    x: np.ndarray,
    y: np.ndarray,
    stems: Sequence[str],
    spec: InputSpec,
    cams: dict[str, np.ndarray],
    energy: dict[str, list[float]],
    path: Path,
) -> Path:
    """Fig. 6 (``study_gradcam_figure``) written to the PNG ``path``."""
    fig = study_gradcam_figure(x, y, stems, spec, cams, energy)
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as tmp:
        fig.savefig(tmp, dpi=80)
    return path


def _share(share: float | None) -> str:
    """``0.42`` -> ``42%``; an undefined share (no mask, CAM failed) -> ``n/a``."""
    return "n/a" if share is None or math.isnan(share) else f"{share:.0%}"


def mean_energy(energy: dict[str, list[float]]) -> dict[str, float]:
    """Mean inside-mask energy share per model over tiles where it is defined."""
    out = {}
    for label, shares in energy.items():
        valid = [s for s in shares if s is not None and not math.isnan(s)]
        out[label] = float(np.mean(valid)) if valid else math.nan
    return out
