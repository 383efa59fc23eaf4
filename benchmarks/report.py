"""Render the result tables of README.md and docs/ from the records in benchmarks/results/.

Every table of measured figures in the Markdown sits between two markers::

    <!-- report:NAME -->
    ...generated...
    <!-- /report:NAME -->

and is produced by the renderer ``NAME`` below from the JSON records (``_record.py``).

    python benchmarks/report.py            # rewrite the generated blocks
    python benchmarks/report.py --check    # exit 1 when a block and its records disagree

A block whose renderer is unknown, or whose records are missing, is an error: a figure
without a record has no place in the documentation.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import ROOT, read_records  # noqa: E402

DOCUMENTS = ("README.md", "docs/*.md")
BLOCK = re.compile(
    r"(<!-- report:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /report:(?P=name) -->)", re.S
)
#: Any report marker, however spelled: one that is not half of a ``BLOCK`` leaves figures
#: unchecked (an opening marker whose closing one was deleted or mistyped).
MARKER = re.compile(r"<!--\s*/?\s*report:")

Records = Mapping[str, Mapping[str, Any]]


class MissingRecord(KeyError):
    """A block needs a record that is not there."""


class PendingDone(ValueError):
    """A decision marked ``pending`` whose records now exist: drop ``pending`` to decide it."""


def need(records: Records, name: str) -> Mapping[str, Any]:
    if name not in records:
        raise MissingRecord(name)
    return records[name]


def fmt(value: Any, digits: int = 3) -> str:
    """A figure as the tables print it (``n/a`` for None/NaN, thousands separators for ints)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def machine_line(record: Mapping[str, Any]) -> str:
    """``Intel Xeon ... (2 cores, avx512_bf16, amx_bf16), TF 2.21.0, load 1.9 (max 3.1)``."""
    m = record.get("machine") or {}
    flags = ", ".join(f for f in m.get("flags", []) if f in ("avx512_bf16", "amx_bf16"))
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    load = record.get("load") or {}
    load_text = ""
    if load.get("mean_1min") is not None:
        load_text = f"; load {load['mean_1min']:.1f} (max {load['max_1min']:.1f})"
    extra = f", {flags}" if flags else ""
    tf = f", TF {m['tensorflow']}" if "tensorflow" in m else ""
    keras = f", Keras {m['keras']}" if "keras" in m else ""
    return f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores{extra}, {gpus}){tf}{keras}{load_text}"


def source_line(*records: Mapping[str, Any]) -> str:
    """The provenance line under a table: command(s), commit, machine, date."""
    lines = []
    for r in records:
        commit = str(r.get("commit", "?"))[:10] + (" (+ local changes)" if r.get("dirty") else "")
        lines.append(
            f"`{r['command']}` at {commit}, {r['date'][:10]}; {machine_line(r)} "
            f"(record `benchmarks/results/{r['name']}.json`)"
        )
    return "Source: " + "; ".join(lines) + "."


def table(columns: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


# ----------------------------------------------------------------------------- renderers


def render_models(records: Records) -> str:
    r = need(records, "models")
    rows = [
        [f"`{m['model']}`", m.get("paper_name", ""), fmt(m["params"]), fmt(m["gflops"], 2)]
        for m in r["figures"]["models"]
    ]
    return table(["registry name", "paper model", "params", "GFLOPs / tile"], rows) + (
        f"\n\nInput {'x'.join(str(v) for v in r['figures']['input'])}, `base_filters={r['figures']['base_filters']}`, "
        f"`depth={r['figures']['depth']}`. " + source_line(r)
    )


def render_encoders(records: Records) -> str:
    r = need(records, "encoders")
    fig = r["figures"]
    rows = []
    for m in fig["models"]:
        model, _, encoder = m["model"].partition("+")
        rows.append([f"`{model}` + `{encoder}`", fmt(m["params"]), fmt(m["gflops"], 2)])
    shape = "x".join(str(v) for v in fig["input"])
    columns = [f"model ({shape}, `base_filters={fig['base_filters']}`, `depth={fig['depth']}`)",
               "params", "GFLOPs / tile"]  # fmt: skip
    return table(columns, rows) + "\n\nRandom-initialised backbones. " + source_line(r)


def render_inference(records: Records) -> str:
    """CPU inference latency of our models (``inference_latency.py``; peers when recorded)."""
    r = need(records, "inference_latency")
    fig = r["figures"]
    rows = [
        [f"`{row['model']}`", fmt(row["batch"]), fmt(row["ours_ms_per_tile"], 1),
         row.get("peer") or "-",
         fmt(row["peer_ms_per_tile"], 1) if row.get("peer_ms_per_tile") is not None else "-",
         fmt(row.get("ratio"), 2) if row.get("ratio") is not None else "-"]
        for row in fig["rows"]
    ]  # fmt: skip
    shape = "x".join(str(v) for v in fig["input"])
    columns = ["model", "batch", "ours ms/tile", "peer", "peer ms/tile", "ours/peer"]
    return table(columns, rows) + (
        f"\n\nMedian of {fig['repeats']} timed calls after {fig['warmup']} warm-up, input "
        f"{shape}, `base_filters={fig['base_filters']}`, `depth={fig['depth']}`, "
        f"{fig['policy']}, XLA {'on' if fig['jit'] else 'off'}. " + source_line(r)
    )


#: Figures of a ``strong-*`` record, in table order (``benchmarks/real_quality.py`` writes them).
STRONG_FIGURES = (
    ("protocol", "protocol"),
    ("epochs", "epochs"),
    ("f1", "val (untouched) F1"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("miou", "mIoU"),
    ("auc", "AUC"),
    ("cpu_seconds", "CPU s"),
)


def render_strong(records: Records) -> str:
    """The strong preset under the honest protocol: one row per record named ``strong-*``.

    With no such record yet the block says so (and ``--check`` still passes: the text is
    what the renderer gives for zero records).
    """
    found = [records[n] for n in sorted(records) if n.startswith("strong-")]
    if not found:
        return (
            "No record yet: the strong preset has not been measured under the honest protocol "
            "(`python benchmarks/real_quality.py --recipes strong --name strong-honest`)."
        )
    rows = []
    for r in found:
        fig = r["figures"]
        cells = [fmt(fig.get(key), 0 if key == "cpu_seconds" else 3) for key, _ in STRONG_FIGURES]
        rows.append([f"`{r['name']}`", *cells])
    columns = ["record", *(label for _, label in STRONG_FIGURES)]
    return table(columns, rows) + "\n\n" + source_line(*found)


#: name -> renderer(records) -> Markdown (without the markers).
RENDERERS: dict[str, Callable[[Records], str]] = {
    "models": render_models,
    "encoders": render_encoders,
    "inference": render_inference,
    "strong": render_strong,
}


def register(name: str) -> Callable[[Callable[[Records], str]], Callable[[Records], str]]:
    """Decorator adding a renderer (used by the renderers below this line)."""

    def wrap(fn: Callable[[Records], str]) -> Callable[[Records], str]:
        RENDERERS[name] = fn
        return fn

    return wrap


def _screen_window(row: Mapping[str, Any], base: Mapping[str, Any]) -> tuple[str, str]:
    """Mean selection F1 (per epoch, threshold 0.5) of ``row`` and of ``base`` over their last
    three common epochs: for variants on base's schedule, the same epochs at the same learning
    rate (a fair comparison of a screen cut short)."""
    mine = {p["epoch"]: p["selection_f1"] for p in row.get("curve") or []}
    ref = {p["epoch"]: p["selection_f1"] for p in base.get("curve") or []}
    common = sorted(set(mine) & set(ref))[-3:]
    if not common:
        return "n/a", "n/a"
    m = sum(mine[e] for e in common) / len(common)
    b = sum(ref[e] for e in common) / len(common)
    return f"{m:.3f} vs {b:.3f} (epochs {common[0]}-{common[-1]})", f"{m - b:+.3f}"


class Run(NamedTuple):
    """One training run of a recipe, as a time_to_quality or real_quality record has it."""

    recipe: str
    record_name: str
    record: Mapping[str, Any]
    epochs: int | None
    cpu_s: float | None
    cpu_s_per_epoch: float | None
    best_selection_f1: float | None  # the best epoch's, threshold 0.5
    val_f1: float | None  # val (untouched)
    reference_cpu_s: float | None  # the same record's strong run, if it has one
    reported: bool  # reused from a run trained for another record, not trained for this one


def trained_runs(records: Records) -> list[Run]:
    """Every run in the ``time-to-quality*`` records (their ``recipes``, in record order),
    then in the real_quality ``trial-*`` records (their ``rows``), records sorted by name."""
    runs: list[Run] = []
    for name in sorted(n for n in records if n.startswith("time-to-quality")):
        fig = records[name]["figures"]
        # strong's, whatever --reference the record's curves were compared against: the
        # tables divide by strong's CPU s (a record without strong: None, strong-honest's)
        ref = fig["recipes"].get("strong", {}).get("cpu_s")
        for recipe, res in fig["recipes"].items():
            curve = res.get("curve") or []
            runs.append(Run(recipe, name, records[name], res.get("epochs"), res.get("cpu_s"),
                            curve[-1]["cpu_s"] / len(curve) if curve else None,
                            max((p["selection_f1"] for p in curve), default=None),
                            res.get("val_untouched_f1"), ref,
                            res.get("status") == "reported"))  # fmt: skip
    for name in sorted(n for n in records if n.startswith("trial-")):
        for row in records[name]["figures"]["rows"]:
            cpu, epochs = row.get("cpu_s"), row.get("epochs")
            runs.append(Run(row["recipe"], name, records[name], epochs, cpu,
                            cpu / epochs if cpu and epochs else None,
                            row.get("best_selection_f1"),
                            (row.get("val_untouched") or {}).get("f1"), None,
                            row.get("status") == "reported"))  # fmt: skip
    return runs


def members_strong_cpu(members: list[Mapping[str, Any]], records: Records) -> float | None:
    """The strong run's CPU s of the ``time-to-quality*`` record that trained these ensemble
    members, when they all come from one such record (a member is known there by its recipe
    name and its CPU s); else None."""
    found: set[float] = set()
    for member in members:
        hits = {
            rec["figures"]["recipes"]["strong"]["cpu_s"]
            for name, rec in records.items()
            if name.startswith("time-to-quality")
            and "strong" in rec["figures"]["recipes"]
            and rec["figures"]["recipes"].get(member.get("recipe"), {}).get("cpu_s")
            == member.get("cpu_s")
        }
        if len(hits) != 1:
            return None
        found |= hits
    return found.pop() if len(found) == 1 else None


@register("ideas")
def render_ideas(records: Records) -> str:
    """Issue 21's ideas: the CPU runs under the honest protocol (time-to-quality and ensemble
    records), then the GPU screen (``ideas_screen``) with each idea against the strong
    recipe at equal epochs."""
    parts: list[str] = []
    cpu_rows: list[list[str]] = []
    sources: list[Mapping[str, Any]] = []
    strong = records.get("strong-honest")
    strong_cpu = strong["figures"]["cpu_seconds"] if strong else None
    for run in trained_runs(records):
        if run.record not in sources:
            sources.append(run.record)
        reference = run.reference_cpu_s or strong_cpu  # the same run's strong where it has one
        ratio = run.cpu_s / reference if reference and run.cpu_s else None
        again = run.record_name.startswith("time-to-quality-")  # a later run: rows name it
        label = f"`{run.recipe}` (`{run.record_name}`)" if again else f"`{run.recipe}`"
        cpu_rows.append([label, fmt(run.epochs), fmt(run.cpu_s_per_epoch, 0), fmt(run.cpu_s, 0),
                         fmt(ratio, 3), fmt(run.best_selection_f1), "n/a",
                         fmt(run.val_f1)])  # fmt: skip
    for name in sorted(n for n in records if n.startswith("ensemble-")):
        r = records[name]
        fig = r["figures"]
        sources.append(r)
        members = " + ".join(str(m.get("recipe") or Path(m["run_dir"]).name)
                             for m in fig["members"])  # fmt: skip
        # the strong run trained beside the members where there is one (its machine and load)
        reference = members_strong_cpu(fig["members"], records) or strong_cpu
        ratio = fig["members_cpu_s"] / reference if reference else None
        tta = (  # records older than tta_transforms averaged the four flips
            "no TTA" if fig.get("tta") is False else f"{fig.get('tta_transforms') or 'flips'} TTA"
        )
        if fig.get("each"):  # every member scored alone: the mean over the runs
            mean = fig["mean"]
            ratio = mean["cpu_s"] / reference if reference else None
            cpu_rows.append([f"{members}, each alone, {tta}: mean of {fig['k']} (`{name}`)",
                             "members'", "", fmt(mean["cpu_s"], 0), fmt(ratio, 3), "n/a",
                             fmt(mean["selection_f1"]), fmt(mean["val_untouched_f1"])])  # fmt: skip
            continue
        if fig["k"] > 1:
            label = f"ensemble {members}, {tta}"
        else:
            label = f"{members} alone, {tta} (`{name}`)"
        cpu_rows.append([label, "members'", "", fmt(fig["members_cpu_s"], 0), fmt(ratio, 3),
                         "n/a", fmt(fig.get("selection_f1")),
                         fmt(fig["val_untouched"]["f1"])])  # fmt: skip
    if cpu_rows:
        columns = ["recipe (CPU trainer)", "epochs", "CPU s per epoch", "CPU s",
                   "x strong's CPU s (same run's where the record has one)",
                   "best epoch's selection F1 (at 0.5)",
                   "selection F1 (TTA, tuned)", "val (untouched) F1"]  # fmt: skip
        parts += [table(columns, cpu_rows), source_line(*sources)]
    screen = records.get("ideas_screen")
    if screen:
        rows = screen["figures"]["rows"]
        base = next((r for r in rows if r["variant"] == "base"), {})
        grid = []
        for r in rows:
            if r.get("status") == "ensemble" or "curve" not in r:
                continue
            same = r.get("settings", {}).get("epochs") == base.get("settings", {}).get("epochs")
            window, delta = _screen_window(r, base) if same else ("another schedule", "n/a")
            val = (r.get("val_untouched") or {}).get("f1")
            grid.append([f"`{r['variant']}`", r["description"],
                         f"{r.get('epochs_done')}/{r.get('epochs')}", window, delta,
                         fmt(r.get("selection_f1")), fmt(val)])  # fmt: skip
        missing = [f"`{r['variant']}` ({r['status']})" for r in rows if "curve" not in r]
        columns = ["variant (GPU screen)", "what it tries", "epochs done", "selection F1, "
                   "last 3 common epochs vs base", "diff", "selection F1 (TTA, tuned)",
                   "val (untouched) F1"]  # fmt: skip
        parts += [table(columns, grid)]
        if missing:
            parts.append("Not measured (the screen's deadline): " + ", ".join(missing) + ".")
        if screen.get("note"):
            parts.append(f"Note (from the record): {screen['note']}")
        parts.append(source_line(screen))
    if not parts:
        return (
            "No record yet (benchmarks/time_to_quality.py, ensemble_quality.py, ideas_screen.py)."
        )
    return "\n\n".join(parts)


DECISIONS = Path(__file__).resolve().parent / "decisions.json"


#: A real_quality recipe trained with another seed: ``NAME-sN`` is recipe ``NAME``, ``--seed N``.
SEEDED = re.compile(r"^(?P<recipe>.+)-s(?P<seed>\d+)$")


def spread(values: list[float]) -> list[str]:
    """``[mean, min-max, sample standard deviation]`` cells of one figure over the seeds."""
    return [fmt(statistics.mean(values)), f"{fmt(min(values))}-{fmt(max(values))}",
            fmt(statistics.stdev(values))]  # fmt: skip


@register("seeds")
def render_seeds(records: Records) -> str:
    """One recipe over several training seeds (real_quality trials and time_to_quality runs):
    how far runs of the same recipe fall apart, the noise every decision margin stands against.

    A run of ``NAME-sN`` joins the runs of ``NAME`` (the recipe at its default seed); recipes
    with a single run, or only default-seed runs, are left out, and so are runs a record
    reports from another (counted where they were trained). Seeds trained again in a later
    record (a rerun of the same runs) give one row per record, not one row counting a seed
    twice.
    """
    # recipe -> (seed, run, (CPU s, best selection F1, val F1)) for each finished run
    runs: dict[str, list[tuple[str, Run, tuple[float, float, float]]]] = {}
    for run in trained_runs(records):
        cpu_s, selection_f1, val_f1 = run.cpu_s, run.best_selection_f1, run.val_f1
        if run.reported or cpu_s is None or selection_f1 is None or val_f1 is None:
            continue  # a reused run counts where it was trained; an unfinished one not at all
        match = SEEDED.match(run.recipe)
        recipe, seed = (match["recipe"], match["seed"]) if match else (run.recipe, "default")
        runs.setdefault(recipe, []).append((seed, run, (cpu_s, selection_f1, val_f1)))
    rows: list[list[str]] = []
    sources: list[Mapping[str, Any]] = []
    for recipe, found in sorted(runs.items()):
        if len(found) < 2 or all(seed == "default" for seed, _, _ in found):
            continue
        seeds = [seed for seed, _, _ in found]
        groups: list[tuple[str, list]] = [(f"`{recipe}`", found)]
        if len(set(seeds)) < len(seeds):  # the same seeds trained again: one row per record
            by_record: dict[str, list] = {}
            for item in found:
                by_record.setdefault(item[1].record_name, []).append(item)
            groups = [(f"`{recipe}` (`{name}`)", items) for name, items in by_record.items()]
        for label, items in groups:
            if len(items) < 2:
                continue
            cpu = [figures[0] for _, _, figures in items]
            selection = [figures[1] for _, _, figures in items]
            val = [figures[2] for _, _, figures in items]
            shown = ", ".join(seed for seed, _, _ in items)
            rows.append([label, f"{len(items)} ({shown})", *spread(selection), *spread(val),
                         f"{fmt(min(cpu), 0)}-{fmt(max(cpu), 0)}"])  # fmt: skip
            for _, run, _ in items:
                if run.record not in sources:
                    sources.append(run.record)
    if not rows:
        return "No recipe has been trained with more than one seed yet."
    columns = ["recipe", "runs (seeds)", "best selection F1: mean", "min-max", "sd",
               "val (untouched) F1: mean", "min-max", "sd", "CPU s"]  # fmt: skip
    return table(columns, rows) + "\n\n" + source_line(*sources)


def figure_at(record: Mapping[str, Any], path: str) -> Any:
    """The figure at a dotted ``path`` in ``record["figures"]``: keys, list indices, and
    ``[]`` for the best (largest) over a list, e.g. ``recipes.fast.curve.[].selection_f1``."""
    value: Any = record["figures"]
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part == "[]":
            rest = ".".join(parts[i + 1 :])
            values = [figure_at({"figures": item}, rest) if rest else item for item in value]
            return max(v for v in values if v is not None)
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def arm_pairs(spec: list[Any]) -> list[tuple[str, str]]:
    """A rule's candidate or baseline as ``(record, path)`` pairs: one ``[record, path]``, or
    a list of them whose figures are averaged (one recipe's runs over several seeds)."""
    pairs = spec if isinstance(spec[0], list) else [spec]
    return [(str(name), str(path)) for name, path in pairs]


def arm_names(spec: list[Any]) -> list[str]:
    """The records an arm reads, each once, in order."""
    return list(dict.fromkeys(name for name, _ in arm_pairs(spec)))


def arm_label(spec: list[Any], value: float) -> str:
    """``0.6467 (`record`)``, or ``0.6530 (mean of 2: `a`, `b`)`` for an averaged arm."""
    names = ", ".join(f"`{n}`" for n in arm_names(spec))
    pairs = arm_pairs(spec)
    return (
        f"{fmt(value, 4)} ({names})"
        if len(pairs) == 1
        else (f"{fmt(value, 4)} (mean of {len(pairs)}: {names})")
    )


def arm_value(spec: list[Any], records: Records) -> float:
    return statistics.mean(float(figure_at(need(records, n), p)) for n, p in arm_pairs(spec))


def decide(rule: Mapping[str, Any], records: Records) -> tuple[float, float, bool]:
    """A rule's candidate and baseline figures and whether the candidate won by the margin."""
    cand = arm_value(rule["candidate"], records)
    base = arm_value(rule["baseline"], records)
    return cand, base, cand > base + float(rule.get("margin", 0.0))


@register("decisions")
def render_decisions(records: Records, rules: list[Mapping[str, Any]] | None = None) -> str:
    """Each pre-registered choice (``benchmarks/decisions.json``) with its two figures."""
    import json

    if rules is None:
        rules = json.loads(DECISIONS.read_text())["rules"]
    rows, sources = [], []
    for rule in rules:
        names = arm_names(rule["candidate"]) + arm_names(rule["baseline"])
        if rule.get("pending"):  # written before its run: the run's record must not exist yet
            if set(names) <= set(records):
                raise PendingDone(rule["decision"])
            cand = ", ".join(f"`{n}`" for n in arm_names(rule["candidate"]))
            base = ", ".join(f"`{n}`" for n in arm_names(rule["baseline"]))
            rows.append([rule["decision"], rule["written"], rule["measure"],
                         f"pending ({cand})", base,
                         f"> {fmt(float(rule.get('margin', 0.0)))}", "not yet run"])  # fmt: skip
            continue
        cand, base, won = decide(rule, records)
        for name in names:
            if records[name] not in sources:
                sources.append(records[name])
        rows.append([rule["decision"], rule["written"], rule["measure"],
                     arm_label(rule["candidate"], cand), arm_label(rule["baseline"], base),
                     f"> {fmt(float(rule.get('margin', 0.0)))}",
                     "**yes**" if won else "no"])  # fmt: skip
    columns = ["choice", "rule written", "measured by", "candidate", "baseline",
               "needed (candidate - baseline)", "candidate won"]  # fmt: skip
    named = ", ".join(f"`benchmarks/results/{r['name']}.json`" for r in sources)
    return table(columns, rows) + f"\n\nRules: `benchmarks/decisions.json`; records: {named}."


# ----------------------------------------------------------------------------- driver


def documents(root: Path) -> list[Path]:
    out: list[Path] = []
    for pattern in DOCUMENTS:
        out += sorted(root.glob(pattern))
    return out


def render_text(
    text: str, records: Records, where: str, changed: list[str] | None = None
) -> tuple[str, list[str]]:
    """``text`` with every block regenerated, and the problems found.

    ``changed`` (if given) receives the names of the blocks whose text differs.
    """
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        renderer = RENDERERS.get(name)
        if renderer is None:
            problems.append(f"{where}: no renderer for block {name!r}")
            return match.group(0)
        try:
            body = renderer(records).rstrip("\n") + "\n"
        except MissingRecord as exc:
            problems.append(f"{where}: block {name!r} needs record {exc.args[0]!r}")
            return match.group(0)
        except PendingDone as exc:
            problems.append(f"{where}: decision {exc.args[0]!r} is marked pending but its "
                            "records exist: drop 'pending' from benchmarks/decisions.json")  # fmt: skip
            return match.group(0)
        if changed is not None and body != match.group("body"):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    unpaired = len(MARKER.findall(text)) - 2 * len(BLOCK.findall(text))
    if unpaired:
        problems.append(f"{where}: {unpaired} report marker(s) without their pair "
                        "(<!-- report:NAME --> ... <!-- /report:NAME -->): the text after "
                        "them is not checked")  # fmt: skip
    return BLOCK.sub(replace, text), problems


def run(root: Path, results: Path | None, check: bool) -> int:
    records = read_records(results)
    problems: list[str] = []
    stale: list[str] = []
    blocks = 0
    for path in documents(root):
        text = path.read_text()
        blocks += len(BLOCK.findall(text))
        changed: list[str] = []
        new, found = render_text(text, records, str(path.relative_to(root)), changed)
        problems += found
        if new != text:
            names = ", ".join(repr(n) for n in changed)
            stale.append(f"{path.relative_to(root)}: block(s) {names}")
            if not check:
                path.write_text(new)
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if check and stale:
        for name in stale:
            print(f"error: {name}: a generated table disagrees with its records "
                  "(run python benchmarks/report.py)", file=sys.stderr)  # fmt: skip
    if problems or (check and stale):
        return 1
    verb = "checked" if check else "rendered"
    print(
        f"{verb} {blocks} block(s) in {len(documents(root))} file(s) from {len(records)} record(s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on any difference")
    parser.add_argument("--root", type=Path, default=ROOT, help="project root (README.md, docs/)")
    parser.add_argument("--results", type=Path, help="records folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    return run(args.root, args.results, args.check)


if __name__ == "__main__":
    raise SystemExit(main())
