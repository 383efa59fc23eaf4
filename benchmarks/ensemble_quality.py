"""Untouched-val quality of an ensemble exported as ONE SavedModel (issue 21's "ensemble of K").

The members are run directories trained under the honest protocol (``real_quality.py``'s
runs: in ``--split-dir``, ``val.txt`` is the selection split carved from train and
``test.txt`` the given val). The script takes the path users take,
``python -m landslide_tf.export RUN1 RUN2 ... --out DIR`` (``export_ensemble``: the mean of
the members' probabilities, the single-run signature), loads that SavedModel back through
``Predictor.from_saved_model`` (plain ``tf.saved_model.load`` underneath), predicts the
selection and val tiles, tunes the threshold on the selection (``tune_threshold``: shrinkage
toward 0.5, F1 plateau) and scores val once at it. Choose the members before running this
(never by their val figures): the ensemble is then one more recipe, scored once.

``--tta-transforms dihedral`` bakes the eight-pass TTA into the export (TTA on; default: the
members' own setting, the four flips for runs trained before it existed).

One ``--members`` run takes the same path through ``export_run``: a check that the export,
the reload and this scoring reproduce the run's own ``metrics.json``.

``--each`` scores every member alone instead (``OUT/RUN_NAME``, one SavedModel each) and
records each one's figures and their means: the runs of one recipe over several training
seeds, so that a test-time choice such as ``--tta-transforms`` is compared run by run
(paired) rather than on one seed's draw.

Cost: the members' training CPU seconds (each run's ``real_quality.json`` row; else the sum
of its ``history.csv`` epochs, marked) plus this script's own export and inference.

Usage::

    python benchmarks/ensemble_quality.py --members RUNS/strong RUNS/fast RUNS/fast-lr2e-3 \\
        --split-dir OUT/splits-s0.15-seed0 --out /tmp/ensemble --name ensemble-strong-fast
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))

from _protocol import list_tiles, read_curve, read_stems, untouched_scores  # noqa: E402
from _record import Recorder, add_results_args, save, sha256_lines  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "l4s-rgb-dev"


def member_cost(run_dir: Path) -> dict[str, Any]:
    """A member's training CPU seconds and recipe (its real_quality row, else history.csv)."""
    row_path = run_dir / "real_quality.json"
    metrics = run_dir / "metrics.json"
    val_f1 = json.loads(metrics.read_text()).get("f1") if metrics.is_file() else None
    if row_path.is_file():
        row = json.loads(row_path.read_text())
        return {"run_dir": str(run_dir), "recipe": row.get("recipe"), "cpu_s": row.get("cpu_s"),
                "cpu_source": "whole training process", "val_untouched_f1": val_f1}  # fmt: skip
    curve = read_curve(run_dir / "history.csv")
    total = curve[-1]["cpu_s"] if curve else 0.0
    return {"run_dir": str(run_dir), "recipe": None, "cpu_s": total,
            "cpu_source": "epochs only (history.csv)", "val_untouched_f1": val_f1}  # fmt: skip


def seen_stems(run_dir: Path) -> set[str] | None:
    """The tiles a run trained on or chose its checkpoint and threshold on (its split lists:
    ``train.txt``, and ``val.txt`` unless the run carved its selection from train); None
    where its lists cannot be read."""
    config = json.loads((run_dir / "config.json").read_text())
    folder = Path(config.get("split_dir") or run_dir).expanduser()
    names = ("train",) if config.get("select_from_train") else ("train", "val")
    stems: set[str] = set()
    for name in names:
        path = folder / f"{name}.txt"
        if not path.is_file():
            return None
        stems |= set(read_stems(path))
    return stems


def score(predictor: Any, tiles: list[tuple[str, Any, Any]]) -> Any:
    """``SegmentationMetrics`` of the predictor's probabilities over the tiles (each mask
    brought to its probability map's grid with nearest neighbour, as evaluation does)."""
    import cv2
    import numpy as np

    from landslide_tf.metrics.segmentation import SegmentationMetrics

    m = SegmentationMetrics()
    for _, image, mask in tiles:
        prob = predictor.predict(image)
        if mask is None:
            mask = np.zeros(prob.shape, bool)
        if mask.shape != prob.shape:
            mask = cv2.resize(mask.astype("uint8"), prob.shape[::-1],
                              interpolation=cv2.INTER_NEAREST)  # fmt: skip
        m.update(mask.astype("uint8"), prob)
    return m


def score_splits(saved: Path, data: Path, split_dir: Path) -> tuple[Any, dict[str, list[str]]]:
    """The SavedModel reloaded as users load it, the threshold tuned on the selection
    (``val.txt``) and the val (``test.txt``) scored once at it; and the two tile lists."""
    from landslide_tf.inference.predictor import Predictor

    predictor = Predictor.from_saved_model(saved)
    scores: dict[str, Any] = {}
    lists: dict[str, list[str]] = {}
    for split in ("val", "test"):  # the selection first, then the val scored once
        tiles = list_tiles(data, split_dir, split)
        scores[split], lists[split] = score(predictor, tiles), [t[0] for t in tiles]
    scored = untouched_scores(scores["val"], scores["test"])
    scored["val_untouched"]["n_tiles"] = len(lists["test"])
    scored["tta"] = bool(predictor.settings.tta)
    scored["tta_transforms"] = predictor.settings.tta_transforms if predictor.settings.tta else None
    return scored, lists


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from landslide_tf.inference.tta import TTA_TRANSFORMS  # no TensorFlow import

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", nargs="+", type=Path, required=True, help="run directories")
    parser.add_argument("--split-dir", type=Path, required=True,
                        help="val.txt = the selection split, test.txt = the val scored once")  # fmt: skip
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Bijie-layout folder")
    parser.add_argument("--out", type=Path, required=True, help="where the SavedModel goes")
    parser.add_argument("--tta-transforms", choices=tuple(TTA_TRANSFORMS),
                        help="what the baked TTA averages (default: the members' own)")  # fmt: skip
    parser.add_argument("--each", action="store_true",
                        help="score every member alone (one SavedModel each) and the means")  # fmt: skip
    add_results_args(parser, "ensemble-quality")  # report.py reads ensemble-* records
    args = parser.parse_args(argv)
    data = args.data.expanduser().resolve()
    if not data.is_dir():
        print(f"skipped: {data} not found (nothing to benchmark)")
        return 0
    for name in ("val", "test"):
        if not (args.split_dir / f"{name}.txt").is_file():
            print(f"error: no {name}.txt in --split-dir {args.split_dir}", file=sys.stderr)
            return 2
    for d in args.members:
        if not (d / "config.json").is_file():
            print(f"error: {d} is not a run directory (no config.json)", file=sys.stderr)
            return 2
    scored_val = set(read_stems(args.split_dir / "test.txt"))
    for d in args.members:  # a member that saw the scored val leaves it touched
        seen = seen_stems(d)
        if seen is None or seen & scored_val:
            why = ("its split lists are not found" if seen is None else
                   f"it trained or chose its checkpoint on {len(seen & scored_val)} of them")  # fmt: skip
            print(f"error: {d} cannot be scored on {args.split_dir / 'test.txt'} as val "
                  f"(untouched): {why}", file=sys.stderr)  # fmt: skip
            return 2
    if args.each and len({d.name for d in args.members}) != len(args.members):
        print("error: --each needs members with distinct folder names", file=sys.stderr)
        return 2
    from landslide_tf.inference.export import describe, export_ensemble, export_run

    members = [member_cost(d) for d in args.members]
    export_options = {"overwrite": True, "tta_transforms": args.tta_transforms,
                      "tta": True if args.tta_transforms else None}  # fmt: skip
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_SELF)
    with Recorder() as recorder:
        if args.each:
            runs = []
            for member, run_dir in zip(members, args.members, strict=True):
                saved = Path(export_run(run_dir, args.out / run_dir.name, **export_options))
                scored, lists = score_splits(saved, data, args.split_dir)
                runs.append({**member, "saved_model": str(saved), **scored})
                print(f"{run_dir.name}: selection F1 {scored['selection_f1']:.4f}, val "
                      f"(untouched) F1 {scored['val_untouched']['f1']:.4f}", flush=True)  # fmt: skip
        else:
            if len(args.members) == 1:  # one run: the same path, a check on its metrics.json
                saved = Path(export_run(args.members[0], args.out, **export_options))
            else:
                saved = Path(export_ensemble(args.members, args.out, **export_options))
            scored, lists = score_splits(saved, data, args.split_dir)
    after = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    members_cpu = sum(float(m["cpu_s"] or 0.0) for m in members)
    figures: dict[str, Any] = {
        "protocol": "members trained on train minus selection; threshold tuned on the "
        "selection; val scored once, untouched",
        "members": members,
        "k": len(members),
        "members_cpu_s": round(members_cpu, 1),
        "members_cpu_h": round(members_cpu / 3600.0, 2),
        "ensemble_eval_cpu_s": round(own_cpu, 1),
        "ensemble_eval_wall_s": round(time.perf_counter() - start, 1),
    }
    if args.each:
        figures.update(each=True, runs=runs, tta=runs[0]["tta"],
                       tta_transforms=runs[0]["tta_transforms"],
                       mean={"selection_f1": round(mean(r["selection_f1"] for r in runs), 4),
                             "val_untouched_f1": round(mean(r["val_untouched"]["f1"]
                                                            for r in runs), 4),
                             "cpu_s": round(members_cpu / len(runs), 1)})  # fmt: skip
        print(f"each of {len(runs)} alone, mean: selection F1 {figures['mean']['selection_f1']:.4f}"
              f", val (untouched) F1 {figures['mean']['val_untouched_f1']:.4f}")  # fmt: skip
    else:
        figures.update(saved_model=str(saved), signatures=describe(saved).splitlines(), **scored)
        val, t = scored["val_untouched"], scored["threshold"]
        print(
            f"ensemble of {len(members)}: val (untouched) F1 {val['f1']:.3f} (precision "
            f"{val['precision']:.3f}, recall {val['recall']:.3f}, mIoU {val['miou']:.3f}, "
            f"AUC {val['auc']:.3f}) at threshold {t:.4f} tuned on the selection; members' "
            f"training {members_cpu:.0f} CPU s ({members_cpu / 3600:.2f} CPU-h)"
        )
    splits = {"select": len(lists["val"]), "val": len(lists["test"])}
    record_data = {"name": data.name, "splits": splits,
                   "split_sha256": {"select": sha256_lines(lists["val"]),
                                    "val": sha256_lines(lists["test"])}}  # fmt: skip
    save(args, Path(__file__).name, argv, figures, recorder=recorder, data=record_data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
