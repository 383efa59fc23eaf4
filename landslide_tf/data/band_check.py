"""``python -m landslide_tf.data check`` for the multi-band formats (``l4s``, ``folder``).

Finds the tiles (which validates every file's keys, band count, CRS and grid), then reads
every mask for the landslide share. The first problem stops the check: its one line names
the file and what was expected.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from landslide_tf.errors import DataError


@dataclasses.dataclass
class BandCheckReport:
    """What ``check_band_dataset`` found."""

    root: str
    data_format: str
    bands: list[str] = dataclasses.field(default_factory=list)
    splits: dict[str, int] = dataclasses.field(default_factory=dict)
    landslide_share: float | None = None
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the tiles were found without a problem."""
        return not self.problems and sum(self.splits.values()) > 0

    def format(self) -> str:
        """Human-readable multi-line report."""
        from landslide_tf.data.formats import FORMATS

        lines = [f"dataset: {self.root} (format {self.data_format}; formats: {', '.join(FORMATS)})"]
        if self.bands:
            lines.append(f"bands ({len(self.bands)}): {', '.join(self.bands)}")
        if self.splits:
            lines.append("tiles: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        if self.landslide_share is not None:
            lines.append(f"landslide share: {100 * self.landslide_share:.2f} % of pixels")
        lines += [f"problem: {p}" for p in self.problems]
        lines.append("ok" if self.ok else "NOT usable")
        return "\n".join(lines)


def check_band_dataset(root: str | Path, data_format: str) -> BandCheckReport:
    """Validate a multi-band dataset; problems are reported, not raised."""
    from landslide_tf.data.formats import find_band_samples, load_band_sample

    report = BandCheckReport(str(root), data_format)
    try:
        samples, report.bands = find_band_samples(data_format, root)
        for sample in samples:
            key = sample.split or "all"
            report.splits[key] = report.splits.get(key, 0) + 1
        positive = total = 0.0
        for sample in samples:
            _, mask = load_band_sample(sample, data_format, [0])
            if mask is not None:
                positive += float(np.sum(mask))
                total += mask.size
        report.landslide_share = positive / total if total else None
    except DataError as exc:
        report.problems.append(str(exc))
    return report
