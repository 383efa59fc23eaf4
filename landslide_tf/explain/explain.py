"""CAMs of a trained run directory (``explain_run``): tiles, maps, energy table and figures.

``python -m landslide_tf.gradcam`` (``landslide_tf.cli.gradcam``) calls ``explain_run``; see
``landslide_tf.explain`` for the methods and the files written.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import UserError
from landslide_tf.explain.figures import save_grid, save_overlay
from landslide_tf.explain.targets import (
    cam_energy_inside,
    mask_area_share,
    resolve_layer,
)
from landslide_tf.files import atomic_write_json, atomic_write_text
from landslide_tf.metrics.thresholds import validate_threshold

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# run directories


def _pick_samples(
    run_dir: Path,
    data: str | Path | None,
    config: Any,
    split: str,
    n: int,
    has_landslide: Callable[[Any], bool],
    split_dir: str | Path | None = None,
) -> list:
    """``n`` tiles of a run's split (in the order of its split files), those with landslide
    pixels first.

    ``sample.landslide`` only says a tile is not a Bijie negative: every l4s or folder tile
    has a mask, most of them empty. So the tiles are looked at in order with
    ``has_landslide`` (its mask as the model sees it) until ``n`` with landslide pixels are
    found; the others fill up to ``n`` when the split has fewer.
    """
    from landslide_tf.training.runs import scored_splits

    splits = scored_splits(config, run_dir, data, split, split_dir)
    if split not in splits:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(splits)}")
    tiles = sorted(splits[split], key=lambda s: not s.landslide)  # stable: negatives last
    if not tiles:
        raise UserError(f"the {split} split of run {run_dir} is empty")
    n = max(1, int(n))
    with_scars, others = [], []
    for sample in tiles:
        if len(with_scars) == n:
            break
        (with_scars if sample.landslide and has_landslide(sample) else others).append(sample)
    return (with_scars + others)[:n]


def _figure_names(samples: list) -> list[str]:
    """One PNG name per tile, ``<stem>.png``, none taken twice: a Bijie stem that is both a
    landslide and a negative tile (one split holds both) gets ``<stem>-non-landslide.png``
    for the negative, and no tile takes ``grid.png``."""
    taken, names = {"grid.png"}, []
    for sample in samples:
        stem = sample.stem
        if f"{stem}.png" in taken:
            stem = f"{stem}-{'landslide' if sample.landslide else 'non-landslide'}"
        name, count = f"{stem}.png", 2
        while name in taken:
            name, count = f"{stem}-{count}.png", count + 1
        taken.add(name)
        names.append(name)
    return names


def _check_out_apart(out: Path, samples: list) -> None:
    """Refuse an output folder that holds input files of the tiles (a dataset folder): the
    figures ``<stem>.png`` would replace the tiles there."""
    from landslide_tf.inference.predict import same_file

    folders = {p.parent for s in samples for p in (s.image, s.dem, s.mask) if p is not None}
    for folder in sorted(folders):
        if same_file(out, folder):
            raise UserError(
                f"--out {out} is the dataset folder {folder}: the figures would replace or "
                "join its tiles; choose another --out"
            )


def explain_run(
    run_dir: str | Path,
    data: str | Path | None = None,
    out: str | Path | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    target: str = "predicted",
    n: int = 8,
    split: str = "test",
    threshold: float | None = None,
    batch_size: int = 8,
    linear: bool = False,
    split_dir: str | Path | None = None,
) -> dict[str, Any]:
    """CAMs of a trained run on ``n`` tiles of its test split, with figures and energy numbers.

    Tiles: the first ``n`` of the split (as in ``RUN_DIR/test.txt``), landslide tiles first.
    The model computes in float32 (``load_inference_model``), whatever precision the run
    trained in, as ``evaluate`` and ``predict`` do.

    Args:
        run_dir: a run directory of ``landslide_tf.training.train`` (``config.json``, ``best.keras``).
        data: dataset folder or zip; ``None`` = the one in the run config.
        out: output folder; ``None`` = ``RUN_DIR/gradcam_<method>``.
        layer: layer to explain (``None`` = the model's default).
        method: see ``compute_cam``.
        target: see ``compute_cam``.
        n: number of tiles.
        split: ``"test"`` (default), ``"val"`` or ``"train"``, or ``"all"`` (every tile of
            the dataset: a dataset the run never saw).
        threshold: probability threshold in [0, 1]; ``None`` = the run's (tuned
            ``threshold.json`` if any).
        batch_size: tiles per CAM batch.
        linear: see ``compute_cam``.
        split_dir: the split lists of ``data`` (another dataset's), instead of the run's.

    Returns:
        The summary also written to ``OUT/energy.json``: ``model``, ``method``, ``layer``,
        ``target``, ``n_tiles``, ``mean_energy_inside`` and ``mean_area_share`` (over the
        ``n_tiles_scored`` tiles with landslide pixels and a non-zero map), ``n_zero_maps``,
        ``tiles`` (per-tile rows) and ``files``.

    Raises:
        UserError: a threshold outside [0, 1], a missing run, split or layer.
    """
    from landslide_tf.data.bands import display_input
    from landslide_tf.data.pipeline import load_tile
    from landslide_tf.explain.cam import compute_cam, predict_probs
    from landslide_tf.inference.predictor import load_inference_model
    from landslide_tf.training.runs import dataset_options, read_run_config, run_threshold

    validate_threshold(threshold)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    config, raw = read_run_config(run_dir)
    model = load_inference_model(run_dir)  # float32, as evaluate and predict
    threshold = run_threshold(run_dir, config) if threshold is None else float(threshold)
    layer = resolve_layer(model, layer)
    options = dataset_options(config, raw)  # the run's InputSpec and data format
    loaded: dict[int, tuple[Any, Any]] = {}  # id(sample) -> (x, y), each tile read once

    def load(sample: Any) -> tuple[Any, Any]:
        if id(sample) not in loaded:
            loaded[id(sample)] = load_tile(sample, **options)
        return loaded[id(sample)]

    samples = _pick_samples(
        run_dir, data, config, split, n, lambda s: bool(np.asarray(load(s)[1]).any()), split_dir
    )
    out = Path(out) if out is not None else run_dir / f"gradcam_{method.replace('+', 'p')}"
    _check_out_apart(out, samples)

    xs, ys = [], []
    for sample in samples:
        x, y = load(sample)
        xs.append(x)
        ys.append(y)
    x = np.stack(xs).astype(np.float32)  # (N, H, W, C)
    masks = np.stack(ys)[..., 0]  # (N, H, W)
    # (N, H, W, 1): the run's own prediction (its TTA); the CAMs explain the plain model
    probs = predict_probs(model, x, batch_size, bool(config.tta), config.tta_transforms)
    cams = compute_cam(
        model,
        x,
        method=method,
        layer=layer,
        target=target,
        mask=masks,
        threshold=threshold,
        batch_size=batch_size,
        linear=linear,
        probs=probs,
    )

    shown, shown_as = display_input(x, options["spec"])  # multi-band tiles shown as RGB
    out.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for i, (sample, name) in enumerate(zip(samples, _figure_names(samples), strict=True)):
        has_landslide = bool(masks[i].any())
        energy = cam_energy_inside(cams[i], masks[i]) if has_landslide else math.nan
        area = mask_area_share(masks[i])
        png = out / name
        title = (
            f"{sample.stem}  {method} @ {layer}  energy inside {energy:.2f} vs area {area:.2f}"
            if has_landslide
            else f"{sample.stem}  {method} @ {layer}  (no landslide)"
        )
        save_overlay(png, shown[i], masks[i], probs[i], cams[i], title, shown_as, threshold)
        rows.append(
            {
                "stem": sample.stem,
                "landslide": has_landslide,
                "area_share": area,
                "energy_inside": None if math.isnan(energy) else energy,
                "predicted_share": float((probs[i] >= threshold).mean()),
                "cam_zero": bool(cams[i].max() <= 0.0),
                "png": png.name,
            }
        )
        labels.append(f"{sample.stem}\n{energy:.2f} / {area:.2f}" if has_landslide else sample.stem)

    scored = [r for r in rows if r["energy_inside"] is not None]
    mean_energy = float(np.mean([r["energy_inside"] for r in scored])) if scored else None
    mean_area = float(np.mean([r["area_share"] for r in scored])) if scored else None
    grid = save_grid(
        out / "grid.png",
        shown,
        masks,
        probs,
        cams,
        labels,
        f"{config.model}: {method} @ {layer}, target {target} (row: energy inside / area)",
        shown_as,
        threshold,
    )
    summary: dict[str, Any] = {
        "run_dir": str(run_dir),
        "model": config.model,
        "method": method,
        "layer": layer,
        "target": target,
        "threshold": threshold,
        "split": split,
        "n_tiles": len(rows),
        "n_tiles_with_landslide": sum(r["landslide"] for r in rows),
        "n_tiles_scored": len(scored),
        "n_zero_maps": sum(r["cam_zero"] for r in rows),
        "mean_energy_inside": mean_energy,
        "mean_area_share": mean_area,
        "tiles": rows,
        "files": {"grid": grid.name, "json": "energy.json", "csv": "energy.csv"},
        "out": str(out),
    }
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_json(out / "energy.json", summary)
    atomic_write_text(out / "energy.csv", table.getvalue())
    return summary
