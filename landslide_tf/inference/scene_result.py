"""``SceneResult``: what a whole-scene prediction wrote, shared by ``scene`` and ``band_scene``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class SceneResult:
    """What ``predict_scene`` did."""

    out: Path
    polygons: Path | None
    height: int
    width: int
    windows: int
    window: tuple[int, int]
    seconds: float
    threshold: float
    landslide_pixels: int
    n_polygons: int | None
    georeferenced: bool
    preview: Path | None = None  # issue 16: downsampled RGB with outlines

    @classmethod
    def of(cls, out: Path, scene: Any, writer: Any, windows: int, window: tuple[int, int],
           start: float, threshold: float, polygons: Any, n_polygons: int | None,
           preview: Any = None) -> SceneResult:  # fmt: skip
        """The result of a finished run over ``scene`` (timed from ``start``)."""
        return cls(
            out=out,
            polygons=Path(polygons) if polygons is not None else None,
            height=scene.height,
            width=scene.width,
            windows=windows,
            window=window,
            seconds=time.perf_counter() - start,
            threshold=threshold,
            landslide_pixels=writer.landslide_pixels,
            n_polygons=n_polygons,
            georeferenced=scene.crs is not None,
            preview=Path(preview) if preview else None,
        )

    def format(self) -> str:
        """A short human-readable summary."""
        share = 100 * self.landslide_pixels / max(1, self.height * self.width)
        lines = [
            f"wrote {self.out} ({self.height}x{self.width} px, {self.windows} windows of "
            f"{self.window[0]}x{self.window[1]} px, {self.seconds:.1f} s; "
            f"{self.landslide_pixels} landslide px = {share:.2f} % at threshold "
            f"{self.threshold:.3f}{'' if self.georeferenced else '; not georeferenced'})"
        ]
        if self.polygons is not None:
            lines.append(f"wrote {self.polygons} ({self.n_polygons} polygons)")
        if self.preview is not None:
            lines.append(f"wrote {self.preview} (downsampled RGB, landslide outlines)")
        return "\n".join(lines)
