"""Studies on any dataset format, and the ``bands`` study: what each band set adds.

``python -m landslide_tf.experiments paper --data DIR --data-format l4s`` runs the paper's
protocol on a Landslide4Sense (or ``folder``) dataset: ``multiband_split`` writes the one
split every run shares (the dataset's own splits for l4s) and ``resolve_study_data`` fixes
the format and band list in every run's config.

``python -m landslide_tf.experiments bands --data DIR --out OUT [--seeds 3]`` trains the
paper's full attention model (U-Net++ with spatial + contextual attention, Dice loss: the best
AUC of its Table 3; U-Net++ contextual has the best mIoU and F1) with the paper's training
settings on the band sets that matter, with the same split and seeds:

- RGB; RGB + DEM; RGB + DEM + slope (the format's slope band, or the slope derived from the
  DEM for Bijie); all bands (when more than the others).

It writes ``OUT/bands.md`` and ``OUT/bands.csv`` (mean +- std over seeds of the test mIoU,
landslide IoU and F1, and the mIoU difference each set adds over the previous one and over
RGB) and ``OUT/bands.png``. The paper argues that the DEM helps but never ablates it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError
from landslide_tf.experiments.core import study_data, study_format
from landslide_tf.experiments.runs import RunResult, RunSpec, run_name
from landslide_tf.experiments.tables import csv_string, mean_std
from landslide_tf.files import atomic_write_text, staged
from landslide_tf.training.config import TrainConfig

logger = logging.getLogger(__name__)

BEST_MODEL = "unetpp_spatial_ctx"
BEST_LOSS = "dice"


# ----------------------------------------------------------------------------- any format


def format_overrides(args: Any) -> dict[str, Any]:
    """The training overrides those flags give (None = unset)."""
    return {"data_format": args.data_format, "bands": args.bands, "band_norm": args.band_norm}


# ----------------------------------------------------------------------------- bands study


@dataclasses.dataclass
class BandRunSpec(RunSpec):
    """A run of the bands study: the band set's tag is part of its name."""

    tag: str = ""

    @property
    def name(self) -> str:
        return f"{self.tag}-{run_name(self.model, self.loss, self.seed)}"


def band_sets(data_format: str, available: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``[(label, training settings)]``: RGB, + DEM, + slope, all bands (where they exist)."""
    if data_format == "bijie":
        return [
            ("RGB", {"modalities": "rgb", "derived": [], "bands": None}),
            ("RGB + DEM", {"modalities": "rgb+dem", "derived": [], "bands": None}),
            ("RGB + DEM + slope", {"modalities": "rgb+dem", "derived": ["slope"], "bands": None}),
        ]
    rgb = ["B4", "B3", "B2"] if data_format == "l4s" else available[:3]
    sets = [("RGB", rgb)]
    if "dem" in available:
        sets.append(("RGB + DEM", [*rgb, "dem"]))
        if "slope" in available:
            sets.append(("RGB + DEM + slope", [*rgb, "dem", "slope"]))
    if len(available) > len(sets[-1][1]):
        sets.append((f"all {len(available)} bands", list(available)))
    return [(label, {"bands": bands}) for label, bands in sets]


def _tag(label: str) -> str:
    return label.lower().replace(" + ", "+").replace(" ", "")


def run_bands_study(
    study: Any,
    data: str | Path,
    out: str | Path,
    *,
    model: str = BEST_MODEL,
    loss: str = BEST_LOSS,
    jobs: int = 1,
    progress: Any = logger.info,
    verbose: int = 0,
    command: str | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on every band set with the same split and seeds; write the outputs.

    Args:
        study: training settings, split and seeds (``load_study("paper")`` + overrides).
        data: dataset folder (any format).
        out: output folder (rerun to resume; finished runs are reused).

    Returns:
        One row per band set (see ``OUT/bands.csv``).
    """
    from landslide_tf.data.formats import available_bands
    from landslide_tf.experiments.core import prepare_split
    from landslide_tf.experiments.runner import run_all

    out = Path(out).resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    root, sizes = prepare_split(study, data, out)
    progress(f"split: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} tiles")
    fmt = study_format(study, root)
    available = available_bands(fmt, root) if fmt != "bijie" else ["red", "green", "blue", "dem"]
    sets = band_sets(fmt, available)
    specs: list[BandRunSpec] = []
    for label, settings in sets:
        for seed in study.seed_list:
            values = {**study.train, **settings, "data_format": None if fmt == "bijie" else fmt}
            values.update(
                model=model, loss=loss, seed=seed, data=str(root),
                split_dir=str(out / "split"),
            )  # fmt: skip
            spec = BandRunSpec(model, loss, seed, 1, {}, tag=_tag(label))
            values["run_dir"] = str(out / "runs" / spec.name)
            spec.config = TrainConfig.from_dict(values).to_dict()
            specs.append(spec)
    epochs = int(study.train.get("epochs", TrainConfig().epochs))
    progress(
        f"plan: {len(sets)} band sets x {len(study.seed_list)} seed(s) = {len(specs)} runs of "
        f"{model} ({loss}), {epochs} epochs each ({len(specs) * epochs} epochs in all, lr "
        f"{study.train.get('lr', TrainConfig().lr):g}); a run's cost is about {epochs} times "
        "its first epoch, which the first run's log shows; after each run the time left is "
        "estimated (--epochs and --seeds shorten it)"
    )
    results = run_all(specs, jobs=jobs, progress=progress, verbose=verbose)
    rows = summarise(sets, specs, results)
    settings = {**study.train, "model": model, "loss": loss, "seeds": study.seed_list}
    write_bands_outputs(rows, out, fmt, settings=settings, command=command)
    progress(f"wrote {out / 'bands.md'}, {out / 'bands.csv'} and {out / 'bands.png'}")
    return rows


def summarise(
    sets: list[tuple[str, dict[str, Any]]], specs: list[BandRunSpec], results: list[RunResult]
) -> list[dict[str, Any]]:
    """Mean and sample std over seeds per band set (std None for one seed), and the mIoU
    each set adds."""
    rows: list[dict[str, Any]] = []
    for label, settings in sets:
        tag = _tag(label)
        done = [r for s, r in zip(specs, results, strict=True) if s.tag == tag and r.ok]
        row: dict[str, Any] = {
            "band_set": label,
            "bands": ",".join(settings.get("bands") or [])
            or settings.get("modalities", "") + "".join(f"+{d}" for d in settings["derived"]),
            "runs": len(done),
            "failed": sum(
                1 for s, r in zip(specs, results, strict=True) if s.tag == tag and not r.ok
            ),
        }
        for metric in ("miou", "iou_landslide", "f1"):  # sample std (n - 1), as the tables
            mean, std, _ = mean_std(r.metrics.get(metric) for r in done)
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
        rows.append(row)
    base = rows[0]["miou_mean"] if rows else None
    for i, row in enumerate(rows):
        prev = rows[i - 1]["miou_mean"] if i else None
        m = row["miou_mean"]
        row["delta_prev"] = None if m is None or prev is None else m - prev
        row["delta_rgb"] = None if m is None or base is None else m - base
    return rows


def _pm(row: dict[str, Any], metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if mean is None:
        return "failed"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"  # one seed: no std


def _delta(value: float | None) -> str:
    return "" if value is None else f"{value:+.4f}"


def write_bands_outputs(
    rows: list[dict[str, Any]],
    out: Path,
    data_format: str,
    *,
    settings: dict[str, Any] | None = None,
    command: str | None = None,
) -> None:
    """``bands.md`` (table, then the command and settings it ran with), ``bands.csv`` and
    ``bands.png`` (mIoU mean +- std per set)."""
    lines = [
        f"# Bands study ({data_format}): test metrics, mean ± std over seeds",
        "",
        "| band set | bands | runs | mIoU | landslide IoU | F1 | Δ mIoU vs previous | Δ vs RGB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['band_set']} | {r['bands']} | {r['runs']} | {_pm(r, 'miou')} | "
            f"{_pm(r, 'iou_landslide')} | {_pm(r, 'f1')} | {_delta(r['delta_prev'])} | "
            f"{_delta(r['delta_rgb'])} |"
        )
    if command:
        lines += ["", "Command:", "", f"    {command}"]
    if settings:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()) if v is not None)
        lines += ["", f"Settings of every run: {shown}."]
    atomic_write_text(out / "bands.md", "\n".join(lines) + "\n")
    atomic_write_text(out / "bands.csv", csv_string(list(rows[0]), rows))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(rows), 3.6))
    means = [r["miou_mean"] or 0.0 for r in rows]
    stds = [r["miou_std"] or 0.0 for r in rows]
    ax.bar(range(len(rows)), means, yerr=stds, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(rows)), [r["band_set"] for r in rows], rotation=15)
    ax.set_ylabel("test mIoU (mean ± std over seeds)")
    ax.set_title(f"What each band set adds ({data_format})")
    for i, r in enumerate(rows):
        if r["delta_prev"] is not None and i:
            ax.annotate(_delta(r["delta_prev"]), (i, means[i] + stds[i]), ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
    fig.tight_layout()
    with staged(out / "bands.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def bands_main(
    args: Any, overrides: dict[str, Any], progress: Any, command: str | None = None
) -> int:
    """``python -m landslide_tf.experiments bands``: 0 when every run finished, else 1."""
    from landslide_tf.experiments.study import load_study

    overrides = dict(overrides)
    model = overrides.pop("model", None) or BEST_MODEL
    loss = overrides.pop("loss", None) or BEST_LOSS
    overrides.pop("bands", None)  # the study chooses the band sets
    paper = load_study("paper")  # its training settings and split; checked for this one run
    one = dataclasses.replace(paper, bases=[model], losses=[loss], attention_models=[])
    study = one.with_overrides(train=overrides, seeds=3 if args.seeds is None else args.seeds)
    if args.data is not None and not Path(args.data).exists():
        raise UserError(f"dataset {args.data} does not exist")
    data = study_data(args.data, progress)  # as a study without --data: the synthetic set
    rows = run_bands_study(
        study, data, args.out, model=model, loss=loss, jobs=args.jobs, progress=progress,
        verbose=2 if args.verbose else 0, command=command,
    )  # fmt: skip
    print((Path(args.out) / "bands.md").read_text())
    return 1 if any(r["failed"] for r in rows) else 0
