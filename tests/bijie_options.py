"""The Bijie keywords of release 0.1 (image_size, modalities, dem_norm, ...) as an InputSpec.

The data tests were written against ``make_dataset(samples, image_size=..., modalities=...)``
and ``load_sample(sample, image_size, ...)``; these helpers turn the same keywords into the
one ``InputSpec`` and call the one pipeline, so each test keeps its arguments and assertions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from landslide_tf.data import pipeline
from landslide_tf.data.spec import InputSpec, bijie_spec

SPEC_KEYS = ("image_size", "modalities", "derived", "dem_norm", "dem_stats", "nodata")


def spec_of(
    image_size: int = 128,
    modalities: str = "rgb+dem",
    derived: Sequence[str] = (),
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    nodata: float | None = None,
) -> InputSpec:
    return bijie_spec(image_size, modalities, tuple(derived), dem_norm, dem_stats, nodata)


def split_options(options: dict[str, Any]) -> tuple[InputSpec, dict[str, Any]]:
    spec = spec_of(**{k: options.pop(k) for k in SPEC_KEYS if k in options})
    return spec, options


def make_dataset(samples: Sequence[Any], **options: Any) -> Any:
    spec, rest = split_options(dict(options))
    return pipeline.make_dataset(samples, spec, **rest)


def load_sample(sample: Any, image_size: int = 128, **options: Any) -> Any:
    return pipeline.load_tile(sample, spec_of(image_size, **options))


def load_arrays(samples: Sequence[Any], image_size: int = 128, **options: Any) -> Any:
    return pipeline.load_tiles(samples, spec_of(image_size, **options))
