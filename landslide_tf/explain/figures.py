"""Figures of the maps: one tile's panels (image, DEM, truth, prediction, heat map) and a grid.

Both draw on a private ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, the
caller's matplotlib backend left as it is) and write the PNG atomically. Import these names
from ``landslide_tf.explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def display_channels(
    x: np.ndarray, modalities: str | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Split one input tile into what is shown: RGB ``(H, W, 3)`` and DEM ``(H, W)``.

    Args:
        x: one preprocessed tile ``(H, W, C)``.
        modalities: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``; ``None`` guesses from ``C``
            (1-2 channels: DEM first; 3: RGB; 4 or more: RGB then DEM, derived channels last).

    Returns:
        ``(rgb or None, dem or None)``, both scaled to [0, 1] for display.
    """
    channels = x.shape[-1]
    if modalities is None:
        modalities = "dem" if channels < 3 else ("rgb" if channels == 3 else "rgb+dem")
    rgb = dem = None
    if modalities in ("rgb+dem", "rgb"):
        rgb = np.clip(x[..., :3], 0.0, 1.0)
    if modalities == "rgb+dem" and channels > 3:
        dem = x[..., 3]
    elif modalities == "dem":
        dem = x[..., 0]
    if dem is not None:
        lo, hi = float(np.min(dem)), float(np.max(dem))
        dem = (dem - lo) / (hi - lo) if hi > lo else np.zeros_like(dem)
    return rgb, dem


def _background(rgb: np.ndarray | None, dem: np.ndarray | None) -> np.ndarray:
    if rgb is not None:
        return rgb
    return np.repeat(dem[..., None], 3, axis=-1)


def _figure(figsize: tuple[float, float]) -> Figure:
    """A private ``Figure`` on the Agg canvas: no pyplot state, the caller's backend untouched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Lay out ``fig`` and write it as a PNG at ``path`` atomically; return ``path``."""
    from landslide_tf.files import staged

    fig.tight_layout()
    path = Path(path)
    with staged(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _tile_panels(
    axes: Sequence[Any],
    x: np.ndarray,
    mask: np.ndarray | None,
    prob: np.ndarray,
    cam: np.ndarray,
    modalities: str | None,
    threshold: float,
    with_dem: bool,
    titles: bool = True,
) -> None:
    """Draw image, [DEM], truth, prediction and heat map into ``axes``."""
    rgb, dem = display_channels(x, modalities)
    background = _background(rgb, dem)
    panels: list[tuple[str, Any]] = [("image (RGB)" if rgb is not None else "DEM", background)]
    if with_dem:
        panels.append(("DEM", dem if dem is not None else np.zeros(x.shape[:2])))
    truth = np.zeros(x.shape[:2]) if mask is None else np.asarray(mask).reshape(x.shape[:2])
    panels.append(("truth", truth))
    predicted = (np.asarray(prob).reshape(x.shape[:2]) >= threshold).astype(np.float32)
    panels.append((f"prediction (p >= {threshold:g})", predicted))
    for ax, (title, image) in zip(axes, panels, strict=False):
        if image.ndim == 3:
            ax.imshow(image)
        else:
            ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        if titles:
            ax.set_title(title, fontsize=8)
    heat_ax = axes[len(panels)]
    heat_ax.imshow(background)
    heat = heat_ax.imshow(cam, cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0)
    bar = heat_ax.figure.colorbar(heat, ax=heat_ax, fraction=0.046, pad=0.02)
    bar.set_label("CAM (0-1)", fontsize=6)
    bar.ax.tick_params(labelsize=6)
    if mask is not None and truth.any():
        heat_ax.contour(truth > 0.5, levels=[0.5], colors="white", linewidths=0.8)
    if titles:
        heat_ax.set_title("CAM (white: truth)", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def save_overlay(
    path: str | Path,
    x: np.ndarray,
    mask: np.ndarray | None,
    prob: np.ndarray,
    cam: np.ndarray,
    title: str = "",
    modalities: str | None = None,
    threshold: float = 0.5,
) -> Path:
    """Write one tile's figure: image, DEM (if any), truth, prediction, heat map over image.

    Args:
        path: PNG to write.
        x: the preprocessed tile ``(H, W, C)``.
        mask: true mask ``(H, W[, 1])`` or ``None``.
        prob: predicted probabilities ``(H, W[, 1])``.
        cam: the map ``(H, W)`` in [0, 1].
        title: figure title (for example the energy numbers).
        modalities: input modalities (see ``display_channels``).
        threshold: probability threshold drawn on the prediction.

    Returns:
        The path written.
    """
    rgb, dem = display_channels(x, modalities)
    with_dem = rgb is not None and dem is not None  # DEM-only: the DEM is the background
    columns = 5 if with_dem else 4
    fig = _figure(figsize=(2.2 * columns, 2.6))
    axes = fig.subplots(1, columns)
    _tile_panels(axes, x, mask, prob, cam, modalities, threshold, with_dem)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path, dpi=100)


def save_grid(
    path: str | Path,
    x: np.ndarray,
    masks: np.ndarray | None,
    probs: np.ndarray,
    cams: np.ndarray,
    labels: Sequence[str] = (),
    title: str = "",
    modalities: str | None = None,
    threshold: float = 0.5,
) -> Path:
    """Write all tiles as rows of (image, [DEM], truth, prediction, heat map).

    Args:
        path: PNG to write.
        x: tiles ``(N, H, W, C)``.
        masks: true masks ``(N, H, W[, 1])`` or ``None``.
        probs: probabilities ``(N, H, W[, 1])``.
        cams: maps ``(N, H, W)``.
        labels: one row label per tile (for example ``"stem: 0.71 / 0.20"``).
        title: figure title.
        modalities: input modalities (see ``display_channels``).
        threshold: probability threshold drawn on the predictions.

    Returns:
        The path written.
    """
    n = len(x)
    rgb, dem = display_channels(x[0], modalities)
    with_dem = rgb is not None and dem is not None  # DEM-only: the DEM is the background
    columns = 5 if with_dem else 4
    fig = _figure(figsize=(1.6 * columns, 1.6 * n + 0.5))
    axes = fig.subplots(n, columns, squeeze=False)
    for i in range(n):
        mask = None if masks is None else masks[i]
        _tile_panels(
            axes[i], x[i], mask, probs[i], cams[i], modalities, threshold, with_dem, titles=i == 0
        )
        if i < len(labels):
            axes[i][0].set_ylabel(labels[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path, dpi=72)
