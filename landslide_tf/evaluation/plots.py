"""Shared figures: loss curves of one or more runs and a grid of predictions on test tiles.

Both functions draw on a private ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot
global state, no display needed) and write a PNG.

Example:
    >>> plot_loss_curves({"unet": "runs/unet-bce-s42/history.csv"}, "loss.png")  # doctest: +SKIP
    >>> plot_predictions(rgb, dem, masks, {"unet": probs}, "pred.png")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from landslide_tf.files import staged


def history_dict(history: Any) -> dict[str, list[float]]:
    """Normalize a history-like object to ``{key: [value per epoch]}``.

    Args:
        history: a ``keras.callbacks.History`` (``.history``), a mapping of lists, a list of
            per-epoch row dicts, or a path to a ``history.csv`` written by training.

    Returns:
        A dict of float lists, with an ``epoch`` list (1-based) when none was given.
    """
    if isinstance(history, (str, Path)):
        from landslide_tf.training.runstate import read_history

        history = read_history(history)
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if isinstance(history, Mapping):
        out = {str(k): [float(v) for v in values] for k, values in history.items()}
    else:
        rows = list(history)
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        out = {k: [float(r.get(k, np.nan)) for r in rows] for k in keys}
    if "epoch" not in out:
        n = max((len(v) for v in out.values()), default=0)
        out["epoch"] = [float(i + 1) for i in range(n)]
    return out


def plot_loss_curves(
    histories: Mapping[str, Any],
    path: str | Path,
    metric: str | None = "miou",
    title: str | None = None,
) -> Path:
    """Training and validation loss per epoch (and a validation metric) for several runs.

    Args:
        histories: ``{label: history-like}`` (see ``history_dict``); one colour per label,
            solid = training, dashed = validation.
        path: output PNG.
        metric: also plot ``metric`` / ``val_<metric>`` in a second panel when present
            (``None`` to skip). For ``miou`` the axis says it is the mean of the background
            and landslide IoU.
        title: figure title.

    Returns:
        The PNG path.
    """
    parsed = {label: history_dict(h) for label, h in histories.items()}
    has_metric = metric is not None and any(
        metric in h or f"val_{metric}" in h for h in parsed.values()
    )
    ncols = 2 if has_metric else 1
    fig = Figure(figsize=(5.5 * ncols, 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    colors = [f"C{i % 10}" for i in range(len(parsed))]
    panels = [("loss", "loss")]
    if has_metric:
        label = "mIoU (mean of background and landslide IoU)" if metric == "miou" else metric
        panels.append((metric, label))
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for color, (name, h) in zip(colors, parsed.items(), strict=True):
            epochs = h["epoch"]
            for prefix, style in (("", "-"), ("val_", "--")):
                values = h.get(prefix + key)
                if values:
                    kind = "val" if prefix else "train"
                    ax.plot(
                        epochs[: len(values)],
                        values,
                        style,
                        color=color,
                        marker=".",
                        label=f"{name} {kind}",
                    )
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as tmp:
        fig.savefig(tmp, dpi=100)
    return path


def _squeeze_channels(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[..., 0] if x.ndim == 4 and x.shape[-1] == 1 else x


def plot_predictions(
    images: np.ndarray | None,
    dems: np.ndarray | None,
    truths: np.ndarray,
    preds: Mapping[str, np.ndarray],
    path: str | Path,
    threshold: float | None = None,
    names: Sequence[str] | None = None,
    title: str | None = None,
    image_label: str = "image (RGB)",
) -> Path:
    """A grid with one row per tile: image RGB, DEM, ground truth, then each prediction.

    Args:
        images: RGB ``(N, H, W, 3)`` in [0, 1] (float) or uint8, or ``None`` (no RGB column).
        dems: DEM ``(N, H, W)`` or ``(N, H, W, 1)`` (any scale; shown with its own range), or
            ``None`` (no DEM column).
        truths: masks ``(N, H, W)`` or ``(N, H, W, 1)`` in {0, 1}.
        preds: ``{column title: probabilities (N, H, W[, 1])}``, e.g. one entry per model.
        path: output PNG.
        threshold: when given, predictions are shown binarized at this probability;
            otherwise as probability maps on a 0..1 colour scale. Every prediction column
            has a colour bar saying which.
        names: per-row labels (tile stems).
        title: figure title.
        image_label: the image column's title, e.g. ``true colour (B4,B3,B2)``.

    Returns:
        The PNG path.
    """
    truths = _squeeze_channels(truths)
    n = truths.shape[0]
    columns: list[tuple[str, np.ndarray, dict[str, Any]]] = []
    colorbars: dict[int, str] = {}  # column -> colour bar label
    if images is not None:
        rgb = np.asarray(images)
        rgb = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb
        columns.append((image_label, np.clip(rgb[..., :3], 0.0, 1.0), {}))
    if dems is not None:
        colorbars[len(columns)] = "DEM (as the model sees it)"
        dem_values = _squeeze_channels(dems)
        scale = {"vmin": float(np.nanmin(dem_values)), "vmax": float(np.nanmax(dem_values))}
        columns.append(("DEM", dem_values, {"cmap": "terrain", **scale}))
    columns.append(("ground truth", truths, {"cmap": "gray", "vmin": 0, "vmax": 1}))
    for label, prob in preds.items():
        prob = _squeeze_channels(prob)
        if prob.shape[0] != n:
            raise ValueError(f"prediction {label!r} has {prob.shape[0]} tiles, truths have {n}")
        if threshold is not None:
            prob = (prob >= threshold).astype(np.float32)
        colorbars[len(columns)] = (
            f"landslide (probability >= {threshold:g})"
            if threshold is not None
            else "landslide probability"
        )
        columns.append((label, prob, {"cmap": "magma", "vmin": 0, "vmax": 1}))

    ncols = len(columns)
    fig = Figure(figsize=(2.2 * ncols, 2.2 * n + (0.4 if title else 0)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, ncols, squeeze=False)
    for row in range(n):
        for col, (label, data, kwargs) in enumerate(columns):
            ax = axes[row, col]
            shown = ax.imshow(data[row], interpolation="nearest", **kwargs)
            if row == n - 1 and col in colorbars:  # one bar under the DEM and each prediction
                bar = fig.colorbar(shown, ax=axes[:, col], location="bottom", shrink=0.9)
                bar.set_label(colorbars[col], fontsize="small")
                bar.ax.tick_params(labelsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize="small")
            if col == 0 and names is not None:
                ax.set_ylabel(str(names[row]), fontsize="small")
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with staged(path) as tmp:
        fig.savefig(tmp, dpi=80)
    return path


def plot_run_predictions(
    config: Any,
    run_dir: Path,
    samples: list,
    options: dict[str, Any],
    n: int = 4,
    split: str = "test",
) -> Path | None:
    """``run_dir/predictions.png``: the first ``n`` tiles of ``samples`` (from ``split``), their
    masks and ``best.keras``'s probabilities, computed as every inference path computes them
    (float32, the run's TTA).

    Multi-band inputs are drawn in true colour from the bands named red/green/blue (B4, B3, B2
    for Landslide4Sense; else the first three bands, labelled as such); the title names the
    bands the model reads.
    """
    from landslide_tf.data.bands import display_input
    from landslide_tf.data.pipeline import make_dataset
    from landslide_tf.inference.predictor import load_inference_model
    from landslide_tf.inference.tta import apply_model

    tiles = samples[:n]
    if not tiles:
        return None
    spec = options["spec"]
    model = load_inference_model(run_dir)
    x, y = next(iter(make_dataset(tiles, batch_size=len(tiles), cache=False, **options)))
    x = np.asarray(x)  # (n, H, W, C)
    prob = np.asarray(
        apply_model(lambda t: model(t, training=False), x, bool(config.tta), config.tta_transforms)
    )
    shown, modalities = display_input(x, spec)
    names = list(spec.channel_names)
    dem = spec.dem_band  # the DEM file's band, else a band named dem (Landslide4Sense)
    dem_name = dem.name if dem is not None else "dem"
    dem_at = names.index(dem_name) if dem_name in names else None
    if spec.multiband:
        images, label = shown, spec.display_label()
    else:
        images = x[..., :3] if "rgb" in modalities else None
        label = "image (RGB)"
    return plot_predictions(
        images,
        x[..., dem_at] if dem_at is not None else None,
        np.asarray(y),
        {f"{config.model} ({config.loss})": prob},
        run_dir / "predictions.png",
        names=[f"{split}: {s.stem}" for s in tiles],
        title=(
            f"{config.model} ({config.loss}) on {spec.describe()}, {config.epochs} epochs:\n"
            f"best.keras on {len(tiles)} {split} tiles"
        ),
        image_label=label,
    )
