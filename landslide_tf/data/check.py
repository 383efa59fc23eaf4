"""``data check``: validate a dataset of any format and report what ``train`` would use.

``check_dataset`` detects the format (or takes ``data_format``), and reports the tiles, the
landslide share and the train/val/test split that ``train`` would use (``formats.plan_splits``,
the same planner, with the same seed and split folder). Multi-band formats (``l4s``,
``folder``): finding the tiles validates every file's keys, band count, CRS and grid, then
every mask is read; the first problem stops the check. When the tiles carry a geographic
footprint (GeoTIFFs), tiles that overlap on the ground but sit in different splits are
warned about: they leak the test area into training.

Bijie: ``check_dataset`` reads every file the chosen modalities need and never stops at the
first problem. *Problems* make the dataset unusable as it is (``find_samples`` or ``load_tile``
would refuse it): a missing folder, a tile without its DEM or mask, an empty, corrupt,
grayscale or non-PNG file, no usable tile. *Warnings* are fixed on the fly by the loader:
RGBA images, mask values other than 0/255, a DEM or mask of another size than its image,
files without an image, masks without any landslide pixel.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from landslide_tf.data.archive import LANDSLIDE, expected_layout, missing_folder, open_dataset
from landslide_tf.data.bands import dead_bands_problem
from landslide_tf.data.bijie import (
    IGNORED_FILES,
    MODALITIES,
    NON_LANDSLIDE,
    parse_negatives,
    stem_clash,
)
from landslide_tf.data.folder import footprint
from landslide_tf.data.formats import (
    DEFAULT_SEED,
    FORMATS,
    available_bands,
    check_format,
    detect_format,
    find_format_samples,
    partial_layout_problem,
    plan_splits,
    read_bands,
)
from landslide_tf.data.nodata import dem_nodata_warning
from landslide_tf.data.readers import decode_dem, decode_mask, decode_rgb, tile_size_problem
from landslide_tf.data.sample import Sample
from landslide_tf.data.split import given_split_files, shipped_lists_note
from landslide_tf.errors import DataError, UserError

logger = logging.getLogger(__name__)

#: Warnings shown by ``CheckReport.format`` before "... and N more".
MAX_WARNINGS_SHOWN = 20


@dataclasses.dataclass
class CheckReport:
    """What ``check_dataset`` found.

    Attributes:
        root: the dataset folder (after zip extraction).
        modalities: the modalities checked.
        counts: PNG files per folder, e.g. ``{"landslide/image": 770, ...}``.
        usable: usable tiles per group, ``{"landslide": n, "non-landslide": m}``.
        size_min: smallest tile ``(height, width)`` or None.
        size_max: largest tile ``(height, width)`` or None.
        landslide_share: landslide pixels / all pixels of the usable landslide tiles.
        share_range: smallest and largest per-tile landslide share.
        problems: one line per problem (dataset unusable while any remain).
        warnings: one line per oddity the loader fixes on the fly.
        notes: informational lines.
        data_format: ``bijie``, ``l4s`` or ``folder``.
        bands: multi-band: every band of the dataset.
        tiles: multi-band: labelled tiles per split the dataset assigns (``all`` if none).
        splits: the train/val/test split ``train`` would use (tiles per split).
        seed: the split seed.
        negatives: Bijie: the non-landslide tiles the split includes (``train --negatives``).
    """

    root: str
    modalities: str
    data_format: str = "bijie"
    bands: list[str] = dataclasses.field(default_factory=list)
    tiles: dict[str, int] = dataclasses.field(default_factory=dict)
    splits: dict[str, int] = dataclasses.field(default_factory=dict)
    seed: int = DEFAULT_SEED
    negatives: str = "off"
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    usable: dict[str, int] = dataclasses.field(default_factory=dict)
    size_min: tuple[int, int] | None = None
    size_max: tuple[int, int] | None = None
    landslide_share: float | None = None
    share_range: tuple[float, float] | None = None
    problems: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def multiband(self) -> bool:
        return check_format(self.data_format).multiband

    @property
    def ok(self) -> bool:
        """True when there is no problem and at least one usable (landslide) tile."""
        if self.multiband:
            return not self.problems and sum(self.tiles.values()) > 0
        return not self.problems and self.usable.get(LANDSLIDE, 0) > 0

    def split_line(self) -> str | None:
        """``split (seed 42): train 16, val 4, test 5``: what ``train`` would use."""
        if not self.splits:
            return None
        counts = ", ".join(f"{k} {v}" for k, v in self.splits.items())
        shown = self.negatives != "off" and not self.multiband
        negatives = f", negatives {self.negatives}" if shown else ""
        return f"split used by train (seed {self.seed}{negatives}): {counts}"

    def format(self) -> str:
        """Human-readable multi-line report."""
        if self.multiband:
            return self._format_multiband()
        lines = [f"dataset: {self.root} (modalities {self.modalities})"]
        if self.counts:
            lines.append(
                "files: " + ", ".join(f"{name} {count}" for name, count in self.counts.items())
            )
        lines.append(
            f"usable tiles: {self.usable.get(LANDSLIDE, 0)} landslide, "
            f"{self.usable.get(NON_LANDSLIDE, 0)} non-landslide"
        )
        if self.size_min and self.size_max:
            lines.append(
                f"tile size: {min(self.size_min)}..{max(self.size_max)} px a side "
                f"(height {self.size_min[0]}..{self.size_max[0]}, "
                f"width {self.size_min[1]}..{self.size_max[1]})"
            )
        if self.landslide_share is not None and self.share_range is not None:
            lo, hi = self.share_range
            lines.append(
                f"landslide pixel share: {100 * self.landslide_share:.1f} % of the landslide "
                f"tiles' pixels (per tile {100 * lo:.1f}..{100 * hi:.1f} %)"
            )
        if self.split_line():
            lines.append(self.split_line())
        lines += [f"note: {note}" for note in self.notes]
        if self.warnings:
            lines.append(f"warnings ({len(self.warnings)}, fixed when loading):")
            grouped = grouped_warnings(self.warnings)
            lines += [f"  - {w}" for w in grouped[:MAX_WARNINGS_SHOWN]]
            if len(grouped) > MAX_WARNINGS_SHOWN:
                lines.append(f"  ... and {len(grouped) - MAX_WARNINGS_SHOWN} more kinds")
        if self.problems:
            lines.append(f"problems ({len(self.problems)}):")
            lines += [f"  - {p}" for p in self.problems]
        if self.ok:
            lines.append("result: OK, the dataset is usable")
        else:
            lines.append(f"result: NOT USABLE ({len(self.problems) or 'no usable tile'} problems)")
        return "\n".join(lines)

    def _format_multiband(self) -> str:
        lines = [f"dataset: {self.root} (format {self.data_format}; formats: {', '.join(FORMATS)})"]
        if self.bands:
            lines.append(f"bands ({len(self.bands)}): {', '.join(self.bands)}")
        if self.tiles:
            lines.append("tiles: " + ", ".join(f"{k} {v}" for k, v in self.tiles.items()))
        if self.split_line():
            lines.append(self.split_line())
        if self.landslide_share is not None:
            lines.append(f"landslide share: {100 * self.landslide_share:.2f} % of pixels")
        lines += [f"warning: {w}" for w in grouped_warnings(self.warnings)]
        lines += [f"problem: {p}" for p in self.problems]
        lines.append("ok" if self.ok else "NOT usable")
        return "\n".join(lines)


def empty_split_problems(splits: dict[str, int], split_dir: str | Path | None) -> list[str]:
    """The split parts ``train`` would refuse as empty (``training.fit.prepare_splits``):
    train and val always; test unless ``split_dir`` ships train/val lists without a test list."""
    given = given_split_files(split_dir) if split_dir is not None else None
    test_optional = given is not None and given["test"] is None
    sizes = ", ".join(f"{k} {v}" for k, v in splits.items())
    return [
        f"the {name} split is empty ({sizes}): train stops; use more tiles"
        for name in ("train", "val", "test")
        if not splits.get(name) and not (name == "test" and test_optional)
    ]


def grouped_warnings(warnings: list[str]) -> list[str]:
    """One line per kind of warning, in order of first appearance: ``PATH: what`` for a
    kind one file has, ``N files: what (e.g. PATH)`` for a kind many have, so a note every
    tile carries (an alpha channel dropped) does not hide the rarer ones."""
    kinds: dict[str, list[str]] = {}
    for warning in warnings:
        path, sep, what = warning.partition(": ")
        if not sep or not _looks_like_path(path):
            path, what = "", warning
        kinds.setdefault(what, []).append(path)
    lines = []
    for what, paths in kinds.items():
        if len(paths) == 1:
            lines.append(f"{paths[0]}: {what}" if paths[0] else what)
        elif any(paths):
            example = next(p for p in paths if p)
            lines.append(f"{len(paths):,} files: {what} (e.g. {example})")
        else:
            lines.append(f"{what} ({len(paths):,} times)")
    return lines


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or Path(text).suffix.lower() in (".png", ".h5", ".tif")


def _list_pngs(folder: Path, report: CheckReport) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name.lower() in IGNORED_FILES or path.is_dir():
            continue
        if path.suffix.lower() != ".png":
            report.problems.append(f"{path}: not a .png file; expected only PNG tiles here")
            continue
        if path.stem in files:
            report.problems.append(stem_clash(files[path.stem], path))
            continue
        files[path.stem] = path
    return files


def _read(reader, path: Path, report: CheckReport) -> np.ndarray | None:
    """Run a reader, turning errors into problems and notes into warnings."""
    try:
        array, notes = reader(path)
    except DataError as exc:
        report.problems.append(str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - a check must report, never crash
        report.problems.append(f"{path}: unreadable ({type(exc).__name__}: {exc})")
        return None
    report.warnings.extend(notes)
    return array


def _check_group(root: Path, group: str, modalities: str, report: CheckReport, stats: dict) -> None:
    base = root / group
    is_landslide = group == LANDSLIDE
    need_image = modalities in ("rgb+dem", "rgb")
    need_dem = modalities in ("rgb+dem", "dem")
    if not base.is_dir():
        if is_landslide:
            report.problems.append(f"{base}: folder not found; {expected_layout(root)}")
        else:
            report.notes.append(
                f"{base} not found: no negatives (fine: negatives are off by default)"
            )
        return
    wanted = (["image"] if need_image else []) + (["dem"] if need_dem else [])
    wanted += ["mask"] if is_landslide else []
    files: dict[str, dict[str, Path]] = {}
    for sub in wanted:
        folder = base / sub
        if not folder.is_dir():
            line = missing_folder(root, folder)
            (report.problems if is_landslide else report.warnings).append(
                line if is_landslide else f"{folder}: folder not found; negatives cannot be used"
            )
            continue
        files[sub] = _list_pngs(folder, report)
        report.counts[f"{group}/{sub}"] = len(files[sub])
    primary = "image" if need_image else "dem"
    if primary not in files or (is_landslide and "mask" not in files):
        return
    if need_dem and "dem" not in files:
        return
    for found in files.values():
        orphans = sorted(set(found) - set(files[primary]))
        for stem in orphans:
            report.warnings.append(f"{found[stem]}: no {primary} {stem}.png; file ignored")
    usable = 0
    for stem, path in files[primary].items():
        ok = True
        arrays: dict[str, np.ndarray] = {}
        for sub, reader in (("image", decode_rgb), ("dem", decode_dem), ("mask", decode_mask)):
            if sub not in files:
                continue
            other = files[sub].get(stem)
            if other is None:
                kind = {"image": "image", "dem": "DEM", "mask": "mask"}[sub]
                report.problems.append(
                    f"{path}: no {kind} for {stem}; expected {base / sub / (stem + '.png')}"
                )
                ok = False
                continue
            array = _read(reader, other, report)
            if array is None:
                ok = False
            else:
                arrays[sub] = array
        for sub, array in arrays.items():
            problem = tile_size_problem(files[sub][stem], array)
            if problem:
                report.problems.append(problem)
                ok = False
        if not ok:
            continue
        usable += 1
        ref = arrays[primary]
        shape = ref.shape[:2]
        stats["shapes"].append(shape)
        for sub in ("dem", "mask"):
            if sub in arrays and sub != primary and arrays[sub].shape[:2] != shape:
                got = arrays[sub].shape
                report.warnings.append(
                    f"{files[sub][stem]}: {got[1]}x{got[0]} px but the {primary} is "
                    f"{shape[1]}x{shape[0]} px; resampled onto the {primary} grid"
                )
        if "dem" in arrays:
            stats["dem_16bit"].append(bool(arrays["dem"].max() > 255))
            spike = nodata_spike(arrays["dem"])
            if spike:
                report.warnings.append(f"{files['dem'][stem]}: {spike}")
        if "mask" in arrays:
            mask = arrays["mask"]
            positive = int(mask.sum())
            stats["positive"] += positive
            stats["pixels"] += mask.size
            stats["shares"].append(positive / mask.size)
            if positive == 0:
                report.warnings.append(f"{files['mask'][stem]}: mask has no landslide pixel")
    report.usable[group] = usable


def nodata_spike(dem: np.ndarray) -> str | None:
    """Why a DEM looks like it holds a nodata block (or None): ``nodata.dem_nodata_warning``."""
    return dem_nodata_warning(dem)


#: Overlapping tiles named per warning before "... and N more".
MAX_OVERLAPS_SHOWN = 5


def overlap_warnings(split: dict[str, list[Sample]]) -> list[str]:
    """Warnings for georeferenced tiles that overlap on the ground but sit in different splits.

    Only tiles whose image is a georeferenced GeoTIFF (e.g. chips of ``data chip`` with a
    stride below the chip size) have a footprint; others are skipped. Touching edges do not
    count as overlap.
    """
    rows = []  # (split, stem, crs, bounds)
    for name, tiles in split.items():
        for sample in tiles:
            try:
                found = footprint(sample.image)
            except (DataError, UserError):
                return []  # no rasterio or an unreadable header: nothing to compare
            if found is not None:
                rows.append((name, sample.stem, found[0], found[1]))
    if len(rows) < 2:
        return []
    bounds = np.array([r[3] for r in rows], np.float64)  # (N, 4) left, bottom, right, top
    pairs: dict[tuple[str, str], list[str]] = {}
    for i, (name, stem, crs, _) in enumerate(rows):
        left, bottom, right, top = bounds[i]
        eps = 1e-6 * max(right - left, top - bottom)  # touching edges, up to rounding
        hit = (
            (bounds[i + 1 :, 0] < right - eps)
            & (bounds[i + 1 :, 2] > left + eps)
            & (bounds[i + 1 :, 1] < top - eps)
            & (bounds[i + 1 :, 3] > bottom + eps)
        )
        for j in np.flatnonzero(hit) + i + 1:
            other = rows[j]
            if other[0] != name and other[2] == crs:
                key = tuple(sorted((name, other[0])))
                pairs.setdefault(key, []).append(f"{stem}/{other[1]}")
    out = []
    for (a, b), names in sorted(pairs.items()):
        shown = ", ".join(names[:MAX_OVERLAPS_SHOWN])
        more = ""
        if len(names) > MAX_OVERLAPS_SHOWN:
            more = f" ... and {len(names) - MAX_OVERLAPS_SHOWN} more"
        out.append(
            f"{len(names)} tile pair(s) overlap on the ground across the {a} and {b} splits "
            f"({shown}{more}): the evaluation sees ground the model trained on; cut chips "
            "without overlap (data chip --stride = --size) or split by area"
        )
    return out


def _check_multiband(
    root: Path, data_format: str, report: CheckReport, split_dir: str | Path | None
) -> None:
    try:
        samples = find_format_samples(data_format, root)
        report.bands = available_bands(data_format, root)
        for sample in samples:
            key = sample.split or "all"
            report.tiles[key] = report.tiles.get(key, 0) + 1
        positive = total = 0.0
        valid: dict[str, np.ndarray] = {}  # stem -> finite values per band
        for sample in samples:
            image, mask = read_bands(sample, data_format)
            valid[sample.stem] = np.isfinite(image).reshape(-1, image.shape[-1]).sum(0)
            if "dem" in report.bands and len(report.bands) == image.shape[-1]:
                spike = dem_nodata_warning(image[..., report.bands.index("dem")])
                if spike:  # the same finding stops train/predict without --dem-nodata
                    report.warnings.append(f"{sample.dem or sample.image}: {spike}")
            if mask is not None:
                positive += float(np.sum(mask))
                total += mask.size
        report.landslide_share = positive / total if total else None
        split = plan_splits(data_format, samples, report.seed, split_dir, write=False)
    except DataError as exc:
        report.problems.append(str(exc))
        return
    counts = [valid[s.stem] for s in split.get("train", []) if s.stem in valid]
    if counts and len(report.bands) == len(counts[0]):
        problem = dead_bands_problem(report.bands, np.sum(counts, axis=0))
        if problem:  # train would stop on it (band_statistics)
            report.problems.append(problem)
    report.splits = {name: len(tiles) for name, tiles in split.items()}
    report.problems += empty_split_problems(report.splits, split_dir)
    report.warnings += overlap_warnings(split)


def check_dataset(
    root: str | Path,
    modalities: str = "rgb+dem",
    *,
    data_format: str | None = None,
    seed: int = DEFAULT_SEED,
    split_dir: str | Path | None = None,
    negatives: str = "off",
) -> CheckReport:
    """Validate a dataset folder or zip of any format and collect its problems (never raises).

    Args:
        root: dataset folder or (Bijie) ``.zip``.
        modalities: Bijie: ``"rgb+dem"``, ``"rgb"`` or ``"dem"``: decides which files are
            required.
        data_format: ``bijie``, ``l4s`` or ``folder``; None detects it from the layout.
        seed: the split seed (``train --seed``) of the reported split.
        split_dir: split files ``train`` would reuse (``train --split-dir``); never written.
        negatives: Bijie: ``off``, ``on`` or a ratio, as ``train --negatives``: the
            non-landslide tiles the reported split includes.

    Returns:
        A ``CheckReport``; ``report.ok`` tells whether the dataset is usable.
    """
    report = CheckReport(root=str(root), modalities=modalities, seed=seed, negatives=negatives)
    path = Path(root)
    name = data_format
    if name is None and path.is_dir():
        try:
            name = detect_format(path)
        except DataError:  # no known layout: the Bijie check lists what is missing
            partial = partial_layout_problem(path)
            if partial:  # part of the folder layout: name what it lacks, not Bijie's
                report.problems.append(partial)
                return report
            name = None
    try:
        fmt = check_format(name)
    except UserError as exc:
        report.problems.append(str(exc))
        return report
    report.data_format = fmt.name
    shipped = shipped_lists_note(path, split_dir)
    if shipped:
        report.notes.append(shipped)
    if fmt.multiband:
        _check_multiband(path, fmt.name, report, split_dir)
        return report
    if modalities not in MODALITIES:
        report.problems.append(
            f"unknown modalities {modalities!r}; expected one of {', '.join(MODALITIES)}"
        )
        return report
    try:
        parse_negatives(negatives)
        folder = open_dataset(root)
    except DataError as exc:
        report.problems.append(str(exc))
        return report
    report.root = str(folder)
    start = time.monotonic()
    stats: dict = {"shapes": [], "dem_16bit": [], "positive": 0, "pixels": 0, "shares": []}
    _check_group(folder, LANDSLIDE, modalities, report, stats)
    if stats["pixels"]:  # masks exist only in landslide/
        report.landslide_share = stats["positive"] / stats["pixels"]
        report.share_range = (min(stats["shares"]), max(stats["shares"]))
    _check_group(folder, NON_LANDSLIDE, modalities, report, stats)
    if stats["shapes"]:
        heights = [s[0] for s in stats["shapes"]]
        widths = [s[1] for s in stats["shapes"]]
        report.size_min = (min(heights), min(widths))
        report.size_max = (max(heights), max(widths))
    depths = set(stats["dem_16bit"])
    if len(depths) == 2:
        report.warnings.append(
            "DEMs mix 8-bit and 16-bit PNGs: fine with per-tile minmax normalization, but "
            "dem_norm='dataset' statistics would mix two scales"
        )
    elif depths == {True}:
        report.notes.append("16-bit DEMs: read as float elevation values")
    if (folder / LANDSLIDE).is_dir() and report.usable.get(LANDSLIDE, 0) == 0:
        report.problems.append(f"{folder}: no usable landslide tile; {expected_layout(folder)}")
    if report.ok:
        try:
            samples = find_format_samples(
                "bijie", folder, modalities=modalities, negatives=negatives
            )
            split = plan_splits("bijie", samples, seed, split_dir, write=False)
            report.splits = {name: len(tiles) for name, tiles in split.items()}
            report.problems += empty_split_problems(report.splits, split_dir)
        except DataError as exc:
            report.problems.append(str(exc))
    logger.info("checked %s in %.1f s", folder, time.monotonic() - start)
    return report
