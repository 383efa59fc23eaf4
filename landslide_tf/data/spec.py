"""The input model: what a run's network input is made of, band by band.

An ``InputSpec`` is the ordered list of the network's input channels. Each ``Band`` says where
its values come from (``source``) and how they are normalised (``norm``):

- ``source="image"``: band ``index`` of the raw image input (the ``image`` of the predictor
  and of the SavedModel). Bijie images are uint8 RGB (``image_dtype="uint8"``); the
  multi-band formats hand float32 bands in the user's units (NaN = nodata);
- ``source="dem"``: the separate elevation input (``dem``, any grid: resampled onto the
  image), Bijie's DEM;
- ``source="derived"``: a terrain channel computed from the DEM (``slope``, ``aspect``,
  ``hillshade``).

Normalisations (``norm``; ``params`` from the training split where needed):

- ``unit``: divide by 255 (uint8 imagery to [0, 1]);
- ``minmax``: each tile's own min..max to 0..1, as in the paper (a flat tile gives 0);
- ``standard``: ``(x - mean) / std``, ``params = (mean, std)``;
- ``percentile``: ``clip((x - p2) / (p98 - p2), 0, 1)``, ``params = (p2, p98)``;
- ``derived`` channels are already scaled to [0, 1] (``norm="none"``).

Bijie RGB + DEM is the 4-band case: ``red``, ``green``, ``blue`` (image, unit) and ``dem``
(dem, minmax). A Landslide4Sense run is 14 image bands with ``standard`` statistics.

The spec travels with the run: ``config.json`` holds it under ``"input"`` and the SavedModel's
model card under ``"settings"``; ``InputSpec.from_config`` also reads the run directories of
release 0.1 (``modalities``/``derived``/``dem_stats`` or ``bands``/``band_stats``). Nothing
here imports TensorFlow; the maths that applies a spec is ``landslide_tf.data.preprocess``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError

SOURCES = ("image", "dem", "derived")
NORMS = ("unit", "minmax", "standard", "percentile", "none")
DERIVED_CHANNELS = ("slope", "aspect", "hillshade")
IMAGE_DTYPES = ("uint8", "float32")
#: Names of the Bijie RGB bands, in image order.
RGB_NAMES = ("red", "green", "blue")
#: The Bijie band sets (``--modalities``).
MODALITIES = ("rgb+dem", "rgb", "dem")
#: Formats whose image input is float32 bands in the user's units.
MULTIBAND_FORMATS = ("l4s", "folder")


@dataclasses.dataclass(frozen=True)
class Band:
    """One input channel.

    Attributes:
        name: channel name (``red``, ``dem``, ``slope``, ``B4``, ``1``, ...).
        source: ``image``, ``dem`` or ``derived``.
        norm: ``unit``, ``minmax``, ``standard``, ``percentile`` or ``none``.
        params: ``(a, b)`` of ``standard`` (mean, std) and ``percentile`` (p2, p98).
        index: for ``image`` bands, the 0-based band of the raw image input.
    """

    name: str
    source: str
    norm: str
    params: tuple[float, float] | None = None
    index: int | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise UserError(f"band {self.name}: unknown source {self.source!r}; expected {SOURCES}")
        if self.norm not in NORMS:
            raise UserError(f"band {self.name}: unknown normalisation {self.norm!r}")
        if self.norm in ("standard", "percentile"):
            if self.params is None or len(self.params) != 2:
                raise UserError(f"band {self.name}: {self.norm} needs params (a, b)")
            if not all(math.isfinite(float(v)) for v in self.params):
                raise UserError(
                    f"band {self.name}: its {self.norm} statistics are not finite "
                    f"({self.params}); the band has no valid value in the training split"
                )
        if self.source == "image" and (self.index is None or self.index < 0):
            raise UserError(f"band {self.name}: an image band needs its index (>= 0)")
        if self.source == "derived" and self.name not in DERIVED_CHANNELS:
            raise UserError(
                f"unknown derived channel {self.name!r}; expected one of {DERIVED_CHANNELS}"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "source": self.source, "norm": self.norm}
        if self.params is not None:
            out["params"] = [float(v) for v in self.params]
        if self.index is not None:
            out["index"] = int(self.index)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Band:
        params = values.get("params")
        index = values.get("index")
        return cls(
            name=str(values["name"]),
            source=str(values["source"]),
            norm=str(values["norm"]),
            params=None if params is None else (float(params[0]), float(params[1])),
            index=None if index is None else int(index),
        )


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The ordered input channels of a run and the facts needed to read them.

    Attributes:
        bands: the network's input channels, in order.
        size: the training tile side; every input is resized to ``size x size``.
        image_dtype: ``uint8`` (RGB imagery, 0..255) or ``float32`` (bands in user units).
        nodata: DEM value marking missing cells (NaN always is); filled with the tile's
            valid mean before resampling.
        pixel_size: ground size of an input pixel (metres) for the terrain channels; None
            computes gradients per pixel of the resampled grid (release 0.1's rule).
        data_format: the dataset format the run was trained on (``bijie``, ``l4s``,
            ``folder``).
        source_bands: every band of the training format, in file order (to find the run's
            bands in a scene by position).
        source_indices: 0-based positions of the image bands in ``source_bands``.
        native_size: typical side (px) of the training tiles (the default scene window).
    """

    bands: tuple[Band, ...]
    size: int = 128
    image_dtype: str = "uint8"
    nodata: float | None = None
    pixel_size: float | None = None
    data_format: str = "bijie"
    source_bands: tuple[str, ...] = ()
    source_indices: tuple[int, ...] = ()
    native_size: int | None = None

    def __post_init__(self) -> None:
        if not self.bands:
            raise UserError("the input has no bands")
        names = [b.name for b in self.bands]
        if len(set(names)) != len(names):
            raise UserError(f"the input names a band twice: {', '.join(names)}")
        if self.image_dtype not in IMAGE_DTYPES:
            raise UserError(f"unknown image dtype {self.image_dtype!r}; expected {IMAGE_DTYPES}")
        if int(self.size) < 8:
            raise UserError(f"image size must be at least 8, got {self.size}")
        indices = sorted(b.index for b in self.image_bands)
        if indices != list(range(len(indices))):
            raise UserError(f"image band indices must be 0..{len(indices) - 1}, got {indices}")
        if self.uses_derived and not self.uses_dem:
            raise UserError("derived terrain channels need a DEM: add the dem band")
        if self.nodata is not None and not math.isfinite(float(self.nodata)):
            raise UserError(f"DEM nodata must be a finite number, got {self.nodata}")
        if self.pixel_size is not None and not float(self.pixel_size) > 0:
            raise UserError(f"pixel size must be positive, got {self.pixel_size}")

    # ------------------------------------------------------------------ views

    @property
    def image_bands(self) -> tuple[Band, ...]:
        """The bands read from the image input, in image order."""
        return tuple(sorted((b for b in self.bands if b.source == "image"), key=_index))

    @property
    def image_channels(self) -> int:
        """Bands of the raw image input (3 for RGB imagery)."""
        return len(self.image_bands)

    @property
    def uses_image(self) -> bool:
        return any(b.source == "image" for b in self.bands)

    @property
    def uses_dem(self) -> bool:
        return any(b.source in ("dem", "derived") for b in self.bands)

    @property
    def uses_derived(self) -> bool:
        return any(b.source == "derived" for b in self.bands)

    @property
    def channels(self) -> int:
        """Channels of the network input."""
        return len(self.bands)

    @property
    def channel_names(self) -> list[str]:
        return [b.name for b in self.bands]

    @property
    def multiband(self) -> bool:
        """Whether the image input is float32 bands (l4s, folder) rather than uint8 RGB."""
        return self.image_dtype == "float32"

    @property
    def modalities(self) -> str:
        """The Bijie band set: ``rgb+dem``, ``rgb`` or ``dem`` (derived channels aside)."""
        if self.uses_image and self.uses_dem:
            return "rgb+dem"
        return "rgb" if self.uses_image else "dem"

    @property
    def derived(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands if b.source == "derived")

    @property
    def dem_band(self) -> Band | None:
        return next((b for b in self.bands if b.source == "dem"), None)

    def describe(self) -> str:
        """One line, e.g. ``red,green,blue (uint8 /255) + dem (minmax) + slope at 128 px``."""
        parts = []
        image = self.image_bands
        if image:
            norms = sorted({b.norm for b in image})
            parts.append(
                f"{','.join(b.name for b in image)} ({self.image_dtype}, {'/'.join(norms)})"
            )
        dem = self.dem_band
        if dem is not None:
            parts.append(f"dem ({dem.norm})")
        parts += list(self.derived)
        return " + ".join(parts) + f" at {self.size} px"

    def display_rgb(self) -> list[int] | None:
        """Channel positions to show as red, green, blue (None: no colour view).

        Bands named red/green/blue, or Landslide4Sense's B4, B3, B2; else the first three
        image bands (``display_label`` says which).
        """
        names = self.channel_names
        for trio in (RGB_NAMES, ("B4", "B3", "B2")):
            if all(n in names for n in trio):
                return [names.index(n) for n in trio]
        image = [names.index(b.name) for b in self.image_bands]
        return image[:3] if len(image) >= 3 else None

    def display_label(self) -> str:
        """What the colour panel shows, e.g. ``true colour (B4,B3,B2)``."""
        picks = self.display_rgb()
        if picks is None:
            return "no colour bands"
        names = [self.channel_names[i] for i in picks]
        true = tuple(names) in (RGB_NAMES, ("B4", "B3", "B2"))
        return f"{'true colour' if true else 'bands as RGB'} ({','.join(names)})"

    # ------------------------------------------------------------------ storage

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``from_dict`` reads it back."""
        return {
            "bands": [b.to_dict() for b in self.bands],
            "size": int(self.size),
            "image_dtype": self.image_dtype,
            "nodata": None if self.nodata is None else float(self.nodata),
            "pixel_size": None if self.pixel_size is None else float(self.pixel_size),
            "data_format": self.data_format,
            "source_bands": list(self.source_bands),
            "source_indices": list(self.source_indices),
            "native_size": self.native_size,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> InputSpec:
        try:
            native = values.get("native_size")
            nodata = values.get("nodata")
            pixel = values.get("pixel_size")
            return cls(
                bands=tuple(Band.from_dict(b) for b in values["bands"]),
                size=int(values.get("size", 128)),
                image_dtype=str(values.get("image_dtype", "uint8")),
                nodata=None if nodata is None else float(nodata),
                pixel_size=None if pixel is None else float(pixel),
                data_format=str(values.get("data_format") or "bijie"),
                source_bands=tuple(values.get("source_bands") or ()),
                source_indices=tuple(int(i) for i in values.get("source_indices") or ()),
                native_size=None if native is None else int(native),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise UserError(f"the stored input description is damaged ({exc!r})") from None

    def replace(self, **changes: Any) -> InputSpec:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_config(cls, values: Mapping[str, Any], run_dir: str | Path | None = None) -> InputSpec:
        """The spec of a run's ``config.json`` (or a model card's ``settings``).

        Reads the ``input`` entry this release writes, else the keys of release 0.1:
        Bijie (``modalities``, ``derived``, ``dem_norm``, ``dem_stats`` or
        ``dem_stats.json`` in ``run_dir``, ``dem_nodata``/``nodata``) or multi-band
        (``data_format``, ``bands``, ``band_stats``, ``available_bands``,
        ``band_indices``, ``native_size``).
        """
        if isinstance(values.get("input"), Mapping):
            return cls.from_dict(values["input"])
        if (
            isinstance(values.get("bands"), list)
            and values.get("bands")
            and (isinstance(values.get("bands")[0], Mapping))
        ):
            return cls.from_dict(values)  # a spec dict itself
        size = int(values.get("image_size", 128))
        if values.get("data_format") in MULTIBAND_FORMATS:
            return _legacy_multiband(values, size)
        nodata = values.get("nodata", values.get("dem_nodata"))
        pixel = values.get("pixel_size")
        return bijie_spec(
            size=size,
            modalities=str(values.get("modalities") or "rgb+dem"),
            derived=tuple(values.get("derived") or ()),
            dem_norm=str(values.get("dem_norm") or "minmax"),
            dem_stats=_legacy_dem_stats(values, run_dir),
            nodata=None if nodata is None else float(nodata),
            pixel_size=None if pixel is None else float(pixel),
        )


def _index(band: Band) -> int:
    return -1 if band.index is None else band.index


def bijie_spec(
    size: int = 128,
    modalities: str = "rgb+dem",
    derived: Sequence[str] = (),
    dem_norm: str = "minmax",
    dem_stats: Sequence[float] | None = None,
    nodata: float | None = None,
    pixel_size: float | None = None,
    native_size: int | None = None,
) -> InputSpec:
    """The paper's input: RGB (uint8, /255) then the DEM (min-max per tile, or the training
    split's mean/std with ``dem_norm="dataset"``), then any derived terrain channels."""
    if modalities not in MODALITIES:
        raise UserError(f"unknown modalities {modalities!r}; expected one of {MODALITIES}")
    if dem_norm not in ("minmax", "dataset"):
        raise UserError(f"unknown DEM normalisation {dem_norm!r}; expected minmax or dataset")
    if derived and modalities == "rgb":
        raise UserError("derived DEM channels need a DEM: use --modalities rgb+dem or dem")
    bands: list[Band] = []
    if modalities in ("rgb+dem", "rgb"):
        bands += [Band(name, "image", "unit", index=i) for i, name in enumerate(RGB_NAMES)]
    if modalities in ("rgb+dem", "dem"):
        if dem_norm == "dataset":
            if dem_stats is None:
                raise UserError(
                    "dem_norm 'dataset' needs the training DEM mean and std "
                    "(config.json key 'dem_stats': [mean, std])"
                )
            stats = (float(dem_stats[0]), float(dem_stats[1]))
            bands.append(Band("dem", "dem", "standard", params=stats))
        else:
            bands.append(Band("dem", "dem", "minmax"))
        bands += [Band(name, "derived", "none") for name in derived]
    return InputSpec(
        bands=tuple(bands),
        size=int(size),
        image_dtype="uint8",
        nodata=nodata,
        pixel_size=pixel_size,
        data_format="bijie",
        native_size=native_size,
    )


def multiband_spec(
    names: Sequence[str],
    norm: str,
    params: Sequence[Sequence[float]],
    *,
    size: int = 128,
    data_format: str = "folder",
    source_bands: Sequence[str] = (),
    source_indices: Sequence[int] = (),
    native_size: int | None = None,
) -> InputSpec:
    """Bands in the user's units (float32 image input), each standardised or clipped."""
    if len(params) != len(names):
        raise UserError(f"{len(names)} bands but {len(params)} statistics")
    bands = tuple(
        Band(str(name), "image", norm, params=(float(p[0]), float(p[1])), index=i)
        for i, (name, p) in enumerate(zip(names, params, strict=True))
    )
    return InputSpec(
        bands=bands,
        size=int(size),
        image_dtype="float32",
        data_format=data_format,
        source_bands=tuple(source_bands),
        source_indices=tuple(int(i) for i in source_indices),
        native_size=native_size,
    )


def _legacy_multiband(values: Mapping[str, Any], size: int) -> InputSpec:
    norm = values.get("band_stats")
    names = values.get("bands")
    if not names or not isinstance(norm, Mapping) or len(norm.get("params", [])) != len(names):
        raise UserError(
            "the run's config.json has no band list and statistics (keys 'bands', "
            "'band_stats'): retrain it with this version"
        )
    native = values.get("native_size")
    spec = multiband_spec(
        names,
        str(norm["method"]),
        norm["params"],
        size=size,
        data_format=str(values["data_format"]),
        source_bands=tuple(values.get("available_bands") or ()),
        source_indices=tuple(values.get("band_indices") or ()),
        native_size=None if native is None else int(native),
    )
    nodata = values.get("nodata", values.get("dem_nodata"))
    # --dem-nodata of a multi-band run: the value of its band named "dem" (issue 23)
    return spec if nodata is None else spec.replace(nodata=float(nodata))


def _legacy_dem_stats(
    values: Mapping[str, Any], run_dir: str | Path | None
) -> tuple[float, float] | None:
    """``(mean, std)`` from release 0.1's keys or a ``dem_stats.json`` beside the config."""
    candidates: list[Any] = [values.get("dem_stats"), values.get("dem_statistics")]
    if "dem_mean" in values and "dem_std" in values:
        candidates.append([values["dem_mean"], values["dem_std"]])
    if run_dir is not None and (Path(run_dir) / "dem_stats.json").is_file():
        candidates.append(json.loads((Path(run_dir) / "dem_stats.json").read_text()))
    for stats in candidates:
        if isinstance(stats, Mapping):
            stats = [stats.get("mean"), stats.get("std")]
        if isinstance(stats, list | tuple) and len(stats) == 2 and None not in stats:
            return (float(stats[0]), float(stats[1]))
    return None
