"""``Sample``: one tile of any dataset format (bijie, l4s, folder), as file paths."""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Sample:
    """One tile of a dataset, whatever its format.

    Attributes:
        stem: unique name (``df001`` for Bijie, ``train_12`` for Landslide4Sense, the file
            stem for folders).
        image: the image file (Bijie RGB PNG, Landslide4Sense ``.h5``, GeoTIFF or PNG); may not
            exist for DEM-only Bijie data.
        dem: the separate DEM file (Bijie ``dem/``, a folder's ``dem/``), else None.
        mask: the mask file; None for a negative (all background) or unlabelled tile.
        landslide: whether the tile is a landslide tile (stratifies a generated split).
        split: the split the dataset itself assigns (``train``/``val``/``test``), or None.
    """

    stem: str
    image: Path
    dem: Path | None = None
    mask: Path | None = None
    landslide: bool = True
    split: str | None = None
