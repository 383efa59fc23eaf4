"""What a model needs at inference: its input spec, its decision threshold and TTA choice.

``InferenceSettings`` wraps the run's ``landslide_tf.data.spec.InputSpec`` (the one input
model: Bijie RGB + DEM and multi-band alike) with the threshold (the validation-tuned one
from ``threshold.json`` when present) and the flip-averaging choice. It is read from a run's
``config.json`` (``from_dict``; release 0.1 configs too) or a SavedModel's model card, and
written into the model card (``to_dict``).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from landslide_tf.data.spec import InputSpec, bijie_spec
from landslide_tf.errors import DataError

#: Name of the model card inside a SavedModel's ``assets/`` folder.
MODEL_CARD_JSON = "model_card.json"
MODEL_CARD_MD = "MODEL_CARD.md"

#: The precision inference computes in unless asked otherwise (issue 22: one answer per
#: model: predict, scene, evaluate and the exported SavedModel agree).
INFERENCE_PRECISION = "float32"

#: Relative tolerance of the image/DEM aspect-ratio check (at least one DEM pixel).
EXTENT_TOLERANCE = 0.05


@dataclasses.dataclass(frozen=True)
class InferenceSettings:
    """The input spec a model was trained with, plus the decision threshold and TTA.

    Attributes:
        spec: the run's input (bands, sources, normalisation, training size, DEM nodata).
        threshold: probability at or above which a pixel is a landslide.
        tta: average the probabilities over transformed copies of each input
            (``landslide_tf.inference.tta``).
        tta_transforms: which copies when ``tta``: ``"flips"`` (four forward passes) or
            ``"dihedral"`` (eight: the flips of the tile and of its transpose).
    """

    spec: InputSpec = dataclasses.field(default_factory=bijie_spec)
    threshold: float = 0.5
    tta: bool = False
    tta_transforms: str = "flips"

    # ------------------------------------------------------------------ views of the spec

    @property
    def image_size(self) -> int:
        """Training tile size; every input (tile or scene window) is resized to it."""
        return int(self.spec.size)

    @property
    def uses_image(self) -> bool:
        """Whether the model takes the ``image`` input."""
        return self.spec.uses_image

    @property
    def uses_dem(self) -> bool:
        """Whether the model takes the separate ``dem`` input."""
        return self.spec.uses_dem

    @property
    def channels(self) -> int:
        """Channel count of the normalized network input."""
        return self.spec.channels

    @property
    def channel_names(self) -> list[str]:
        """Channel names in input order, e.g. ``["red", "green", "blue", "dem"]``."""
        return self.spec.channel_names

    @property
    def image_channels(self) -> int:
        """Bands of the raw ``image`` input (3 for RGB imagery)."""
        return self.spec.image_channels

    @property
    def nodata(self) -> float | None:
        """DEM value treated as missing (NaN always is)."""
        return self.spec.nodata

    @property
    def derived(self) -> tuple[str, ...]:
        """Terrain channels derived from the DEM."""
        return self.spec.derived

    @property
    def modalities(self) -> str:
        """The input in words, for messages (``red,green,blue (uint8, unit) + dem ...``)."""
        return self.spec.describe()

    def replace(self, **changes: Any) -> InferenceSettings:
        """A copy with ``threshold``/``tta``/``tta_transforms`` changed; ``nodata`` changes
        the spec's."""
        if "nodata" in changes:
            nodata = changes.pop("nodata")
            changes["spec"] = self.spec.replace(nodata=None if nodata is None else float(nodata))
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``from_dict`` reads it back)."""
        return {
            "input": self.spec.to_dict(),
            "threshold": float(self.threshold),
            "tta": bool(self.tta),
            "tta_transforms": str(self.tta_transforms),
        }

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], run_dir: str | Path | None = None
    ) -> InferenceSettings:
        """Settings from a ``config.json`` dict (or a model card's ``settings``).

        The spec comes from ``InputSpec.from_config`` (this release's ``input`` entry or the
        keys of release 0.1); the threshold is the run's tuned one (``threshold.json`` in
        ``run_dir``) if any, else ``threshold``.
        """
        return cls(
            spec=InputSpec.from_config(values, run_dir),
            threshold=stored_threshold(values, run_dir),
            tta=bool(values.get("tta", False)),
            tta_transforms=str(values.get("tta_transforms") or "flips"),
        )


def stored_threshold(values: Mapping[str, Any], run_dir: str | Path | None) -> float:
    """The run's validation-tuned threshold (``threshold.json``) if any, else ``threshold``.

    Raises:
        DataError: ``threshold.json`` is damaged (one line).
    """
    if run_dir is not None:
        from landslide_tf.metrics.thresholds import read_threshold

        tuned = read_threshold(run_dir)
        if tuned is not None:
            return float(tuned)
    return float(values.get("threshold", 0.5))


def check_extents(
    image_hw: Sequence[int], dem_hw: Sequence[int], tolerance: float = EXTENT_TOLERANCE
) -> None:
    """Reject an image and a DEM whose grids cannot cover the same extent.

    Without georeferencing the DEM is assumed to span the image; it may be coarser or finer,
    but its aspect ratio must match within one DEM pixel (or ``tolerance``, relative).

    Raises:
        DataError: with both sizes.
    """
    h, w = int(image_hw[0]), int(image_hw[1])
    dh, dw = int(dem_hw[0]), int(dem_hw[1])
    expected = dh * w / h
    if abs(dw - expected) > max(1.0, tolerance * dw):
        raise DataError(
            f"image ({h}x{w} px) and DEM ({dh}x{dw} px) have different aspect ratios: "
            "they cannot cover the same extent"
        )
