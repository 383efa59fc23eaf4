"""Quality against CPU time for two (or more) recipes, trained in one run of this script.

Each recipe trains once under the honest protocol of ``benchmarks/real_quality.py`` (a
selection split carved from train, the given val scored once, untouched, after training;
the same runs, so a recipe that real_quality finished earlier is reported, not retrained).
Per epoch, ``history.csv`` holds the selection split's precision and recall at 0.5 and the
epoch's CPU seconds (``cpu_seconds``: the training process, validation included); their
cumulative sum against the selection F1 is one curve per recipe. The untouched-val F1 of the
finished run is one marker per recipe, at the CPU seconds of its whole training process.
The val list is never scored per epoch: only the selection split is, so the curve chooses
nothing on val.

Figures (one result record, ``benchmarks/_record.py``): per recipe the untouched-val F1, the
whole process's CPU seconds, its epochs, the curve (cumulative CPU s, selection F1 per
epoch), and ``cpu_s_to_reference``: the cumulative CPU seconds at which its selection F1
first came within ``--tolerance`` (0.005) of the reference recipe's best selection F1
(``--reference``, the first recipe by default); ``ratio_to_reference`` divides that by the
reference's own.

Usage::

    python benchmarks/time_to_quality.py --recipes strong quick        # both at full length
    python benchmarks/time_to_quality.py --recipes quick --epochs 1 --limit-tiles 32 --out /tmp/ttq

Writes ``OUT/time_to_quality.png`` (the curves) beside the runs; where the data folder is
absent it prints a message and exits 0 (no record).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _protocol import read_curve  # noqa: E402
from _record import save, sha256_lines, split_summary  # noqa: E402
from real_quality import RECIPES, add_run_args, train_recipes  # noqa: E402

#: How close to the reference's best selection F1 counts as "reached".
TOLERANCE = 0.005


def first_reaching(curve: list[dict[str, float]], target: float) -> float | None:
    """The cumulative CPU seconds at which the selection F1 first reached ``target``."""
    for point in curve:
        if point["selection_f1"] >= target:
            return point["cpu_s"]
    return None


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """One curve per recipe, its untouched-val F1 as a marker; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, res in results.items():
        curve = res["curve"]
        line = ax.plot([p["cpu_s"] for p in curve], [p["selection_f1"] for p in curve],
                       marker=".", label=f"{name}: selection F1 per epoch")[0]  # fmt: skip
        if res.get("val_untouched_f1") is not None:
            ax.scatter([res["cpu_s"]], [res["val_untouched_f1"]], marker="*", s=140,
                       color=line.get_color(), zorder=3,
                       label=f"{name}: val (untouched) F1 {res['val_untouched_f1']:.3f}")  # fmt: skip
    ax.set_xlabel("CPU seconds (training epochs, cumulative; star: the whole process)")
    ax.set_ylabel("landslide F1")
    ax.set_title(title, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Train recipes under the honest protocol and plot selection F1 against "
        "CPU seconds, with each recipe's untouched-val F1; write a result record."
    )
    add_run_args(parser, ["strong", "quick"], "time-to-quality")  # the name report.py reads
    parser.add_argument("--reference", choices=sorted(RECIPES), help="default: first recipe")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)
    reference = args.reference or args.recipes[0]
    if reference not in args.recipes:
        print(f"error: --reference {reference} is not among --recipes", file=sys.stderr)
        return 2
    done = train_recipes(args)
    if isinstance(done, int):
        return done
    data, out, lists, protocol, rows, recorder = done
    failed = [r["recipe"] for r in rows if r.get("status") == "failed"]
    if failed:
        print(f"error: {', '.join(failed)} failed (see the logs under {out / 'logs'})")
        return 1
    results: dict[str, dict[str, Any]] = {}
    for row in rows:
        curve = read_curve(Path(row["run_dir"]) / "history.csv")
        results[row["recipe"]] = {
            "val_untouched_f1": (row.get("val_untouched") or {}).get("f1"),
            "cpu_s": row.get("cpu_s"),
            "epochs": row.get("epochs"),
            "capped": row.get("capped"),
            "status": row.get("status"),
            "curve": curve,
        }
    target = max(p["selection_f1"] for p in results[reference]["curve"]) - args.tolerance
    base = first_reaching(results[reference]["curve"], target)
    for res in results.values():
        reached = first_reaching(res["curve"], target)
        res["cpu_s_to_reference"] = reached
        res["ratio_to_reference"] = round(reached / base, 3) if reached and base else None
    png = out / "time_to_quality.png"
    capped = " (CAPPED)" if any(r["capped"] for r in results.values()) else ""
    plot(results, png, f"{data.name}, {protocol}{capped}")
    print(f"\nselection F1 within {args.tolerance} of {reference}'s best ({target:.3f}):")
    for name, res in results.items():
        when = res["cpu_s_to_reference"]
        print(
            f"  {name}: val (untouched) F1 {res['val_untouched_f1']:.3f} after "
            f"{res['cpu_s']:.0f} CPU s; reached the target "
            + (f"after {when:.0f} CPU s of epochs" if when is not None else "never")
        )
    print(f"wrote {png}")
    figures = {
        "protocol": protocol,
        "reference": reference,
        "tolerance": args.tolerance,
        "target_selection_f1": round(target, 4),
        "split_sha256": {k: sha256_lines(v) for k, v in lists.items()},
        "recipes": results,
    }
    save(args, "time_to_quality.py", argv, figures, recorder=recorder,
         data=split_summary(data.name, lists))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
