"""A look-at-it picture of a predicted scene: downsampled RGB with the landslide outlines.

``predict --scene ... --preview out.png`` writes it. Memory is bounded like the scene itself:
the preview keeps only its own canvas (at most ``max_side`` pixels a side), filled from the
probability rows as the scene predictor finalises them (every ``factor``-th row and column),
and reads the image back one scene row per preview row.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import UserError
from landslide_tf.files import encode_image

DEFAULT_MAX_SIDE = 1024
OUTLINE_RGB = (255, 230, 0)  # yellow: visible on vegetation, soil and rock
#: Height in pixels of the legend strip under the preview.
LEGEND_HEIGHT = 24


def scale_bar_length(longest: float) -> float:
    """The largest 1, 2 or 5 x 10**k ground length not above ``longest`` (for a scale bar)."""
    if longest <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(longest))
    return max(step * power for step in (1, 2, 5) if step * power <= longest)


class ScenePreview:
    """Collects a subsampled probability map while a scene is predicted, then draws.

    Args:
        height, width: scene size in pixels.
        threshold: probability at and above which a pixel is landslide.
        max_side: longest side of the preview in pixels.
    """

    def __init__(
        self, height: int, width: int, threshold: float, max_side: int = DEFAULT_MAX_SIDE
    ) -> None:
        self.height, self.width, self.threshold = height, width, threshold
        self.factor = max(1, math.ceil(max(height, width) / max_side))
        self.shape = (math.ceil(height / self.factor), math.ceil(width / self.factor))
        self.prob = np.zeros(self.shape, np.float32)

    def add_rows(self, row: int, prob: np.ndarray) -> None:
        """Take the preview's rows out of final probability rows ``(rows, width)`` at ``row``."""
        f = self.factor
        first = -(-row // f) * f  # first scene row >= row that lands on the preview grid
        picked = prob[first - row :: f, ::f]
        self.prob[first // f : first // f + picked.shape[0]] = picked

    def tap(self, writer: Any) -> _Tap:
        """A sink with ``writer``'s ``write(row, prob)`` that also feeds this preview."""
        return _Tap(self, writer)

    def background(self, scene: Any, uses_image: bool) -> np.ndarray:
        """The preview's RGB ``(h, w, 3)`` uint8: the scene image, else the DEM in gray."""
        f = self.factor
        rows = range(0, self.height, f)
        if uses_image and scene.image is not None:
            picture = np.stack([scene.image.read(r, 0, 1, self.width)[0, ::f] for r in rows])
            return rgb8(picture)
        dem = np.stack([scene.dem.read(r, 0, 1, self.width)[0, ::f] for r in rows])
        return dem_preview(dem)

    def save(
        self, path: str | Path, background: np.ndarray, pixel_size: float | None = None
    ) -> Path:
        """Draw the outlines of ``prob >= threshold`` on ``background``, a legend strip
        below it (outline colour and threshold, and a scale bar when ``pixel_size``, the
        scene's ground size of one pixel in CRS units, is known) and write a PNG."""
        import cv2

        path = Path(path)
        if path.suffix.lower() != ".png":
            raise UserError(f"--preview {path}: expected a .png file")
        mask = (self.prob >= self.threshold).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        canvas = np.ascontiguousarray(background[..., :3], dtype=np.uint8)
        thickness = max(1, round(max(self.shape) / 400))
        cv2.drawContours(canvas, contours, -1, OUTLINE_RGB, thickness)
        canvas = np.concatenate([canvas, self.legend(canvas.shape[1], pixel_size)], axis=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        encode_image(path, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        return path

    def legend(self, width: int, pixel_size: float | None) -> np.ndarray:
        """A white strip ``(LEGEND_HEIGHT, width, 3)``: outline swatch, label, scale bar."""
        import cv2

        strip = np.full((LEGEND_HEIGHT, width, 3), 255, np.uint8)
        mid = LEGEND_HEIGHT // 2
        cv2.line(strip, (6, mid), (30, mid), OUTLINE_RGB, 3)
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
        label = f"landslide (p >= {self.threshold:.2f})"
        cv2.putText(strip, label, (36, mid + 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        if pixel_size and pixel_size > 0:
            metres = scale_bar_length(width / 4 * self.factor * pixel_size)
            bar = max(1, round(metres / (self.factor * pixel_size)))
            right = width - 8
            cv2.line(strip, (right - bar, mid + 4), (right, mid + 4), (0, 0, 0), 2)
            text = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
            cv2.putText(strip, text, (right - bar, mid - 4), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
        return strip


class _Tap:
    def __init__(self, preview: ScenePreview, writer: Any) -> None:
        self.preview, self.writer = preview, writer

    def write(self, row: int, prob: np.ndarray) -> None:
        self.preview.add_rows(row, prob)
        self.writer.write(row, prob)


def rgb8(picture: np.ndarray) -> np.ndarray:
    """``(h, w, bands)`` imagery as uint8 RGB: 8-bit RGB as is; other bands (float, the first
    three, or one repeated) stretched per band from their 2nd to 98th percentile."""
    if picture.dtype == np.uint8 and picture.shape[-1] >= 3:
        return picture[..., :3]
    bands = picture[..., :3].astype(np.float32)
    if bands.shape[-1] < 3:
        bands = np.repeat(bands[..., :1], 3, axis=-1)
    out = np.zeros(bands.shape, np.uint8)
    for i in range(3):
        band = bands[..., i]
        finite = np.isfinite(band)
        if finite.any():
            lo, hi = np.percentile(band[finite], [2, 98])
            scaled = np.clip((band - lo) / max(hi - lo, 1e-6), 0, 1)
            out[..., i] = np.where(finite, np.round(scaled * 255), 0).astype(np.uint8)
    return out


def dem_preview(dem: np.ndarray) -> np.ndarray:
    """A gray uint8 RGB rendering of a DEM (min..max), for overlays of DEM-only models."""
    dem = np.asarray(dem, np.float32)
    finite = np.isfinite(dem)
    lo, hi = (dem[finite].min(), dem[finite].max()) if finite.any() else (0.0, 1.0)
    gray = np.where(finite, (dem - lo) / max(hi - lo, 1e-6), 0.0)
    return np.repeat((gray * 255).round().astype(np.uint8)[..., np.newaxis], 3, axis=-1)
