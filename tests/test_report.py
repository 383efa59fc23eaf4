"""benchmarks/report.py: the README's and docs' result tables agree with the committed records."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "benchmarks" / "report.py"


def report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPORT), *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """README.md, docs/*.md and the records, copied to ``tmp_path``."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "docs").mkdir()
    for path in (ROOT / "docs").glob("*.md"):
        shutil.copy(path, tmp_path / "docs" / path.name)
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "results")
    return tmp_path


def test_check_passes_on_the_repository():
    done = report("--check")
    assert done.returncode == 0, done.stderr
    assert "checked" in done.stdout


def test_every_block_has_a_record_or_says_none(copy):
    text = (copy / "README.md").read_text()
    assert "<!-- report:models -->" in text and "<!-- report:strong -->" in text


def test_a_changed_figure_fails_the_check_and_a_render_repairs_it(copy):
    args = ("--root", str(copy), "--results", str(copy / "results"))
    assert report("--check", *args).returncode == 0
    path = copy / "results" / "models.json"
    record = json.loads(path.read_text())
    record["figures"]["models"][0]["params"] += 1
    path.write_text(json.dumps(record, indent=2))

    failed = report("--check", *args)
    assert failed.returncode != 0
    assert "README.md" in failed.stderr and "disagrees" in failed.stderr
    assert "'models'" in failed.stderr  # names the block

    before = (copy / "README.md").read_text()
    rendered = report(*args)
    assert rendered.returncode == 0, rendered.stderr
    after = (copy / "README.md").read_text()
    assert after != before and f"{record['figures']['models'][0]['params']:,}" in after
    assert report("--check", *args).returncode == 0


def test_a_block_without_its_record_fails(copy):
    (copy / "results" / "models.json").unlink()
    failed = report("--check", "--root", str(copy), "--results", str(copy / "results"))
    assert failed.returncode != 0 and "needs record 'models'" in failed.stderr


def test_strong_block_renders_no_record_yet_and_then_a_record(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = {n: r for n, r in module.read_records(copy / "results").items()}
    assert "No record yet" in module.render_strong(
        {n: r for n, r in records.items() if not n.startswith("strong-")}
    )
    fake = dict(records["models"], name="strong-x")
    fake["figures"] = {"f1": 0.5, "precision": 0.4, "recall": 0.6, "miou": 0.7, "auc": 0.9,
                       "cpu_seconds": 1234.0, "epochs": 40, "protocol": "p"}  # fmt: skip
    text = module.render_strong({**records, "strong-x": fake})
    assert "| `strong-x` | p | 40 | 0.500 | 0.400 | 0.600 | 0.700 | 0.900 | 1,234 |" in text
    assert "benchmarks/results/strong-x.json" in text


def test_ideas_block_names_the_dihedral_tta_of_an_ensemble_and_a_single_run(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    every = dict(module.read_records(copy / "results"))
    base = every["ensemble-check-strong"]
    records = {n: r for n, r in every.items() if not n.startswith("ensemble-")}
    single = json.loads(json.dumps(base))
    single["figures"]["tta_transforms"] = "dihedral"
    pair = json.loads(json.dumps(base))
    pair["figures"].update(k=2, tta_transforms="dihedral",
                           members=base["figures"]["members"] * 2)  # fmt: skip
    text = module.render_ideas({**records, "ensemble-check-strong": single, "ensemble-pair": pair})
    assert "| strong alone, dihedral TTA (`ensemble-check-strong`) |" in text
    assert "| ensemble strong + strong, dihedral TTA |" in text
    checks = module.render_ideas({**records, "ensemble-check-strong": base})  # four flips
    assert "| strong alone, flips TTA (`ensemble-check-strong`) |" in checks
    # the ensemble rows carry the selection F1 their threshold was tuned on (what chooses)
    row = next(ln for ln in text.splitlines() if ln.startswith("| ensemble strong + strong"))
    assert f"| {base['figures']['selection_f1']:.3f} |" in row


def test_ideas_block_has_a_row_per_real_quality_trial(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    trial = json.loads(json.dumps(records["strong-s1-e26"]))
    trial["name"] = "trial-x"
    row = trial["figures"]["rows"][0]
    row.update(recipe="x", epochs=10, cpu_s=1000.0, best_selection_f1=0.61)
    row["val_untouched"]["f1"] = 0.6
    strong_cpu = records["strong-honest"]["figures"]["cpu_seconds"]
    text = module.render_ideas({**records, "trial-x": trial})
    line = next(ln for ln in text.splitlines() if ln.startswith("| `x` |"))
    assert line == f"| `x` | 10 | 100 | 1,000 | {1000 / strong_cpu:.3f} | 0.610 | n/a | 0.600 |"
    assert "benchmarks/results/trial-x.json" in text


def test_seeds_and_ideas_blocks_read_time_to_quality_runs(copy):
    """A time_to_quality record's seeded runs join the seeds block (a run it reports from
    another record does not), and its rows' CPU ratio is to its own strong run."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    ttq = json.loads(json.dumps(records["time-to-quality-r10"]))
    strong = ttq["figures"]["recipes"]["strong"]
    point = strong["curve"][0]
    recipes = {"strong": {**strong, "cpu_s": 3000.0}}
    for recipe, sel, val, status in (("w", 0.60, 0.62, "trained"), ("w-s1", 0.64, 0.66, "trained"),
                                     ("w-s2", 0.99, 0.99, "reported")):  # fmt: skip
        curve = [{**point, "cpu_s": 900.0, "selection_f1": sel}]
        recipes[recipe] = {**strong, "cpu_s": 1000.0, "epochs": 1, "curve": curve,
                           "val_untouched_f1": val, "status": status}  # fmt: skip
    ttq["name"], ttq["figures"]["recipes"] = "time-to-quality-w", recipes
    text = module.render_seeds({"time-to-quality-w": ttq})
    lines = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert lines == ["| `w` | 2 (default, 1) | 0.620 | 0.600-0.640 | 0.028 | 0.640 | "
                     "0.620-0.660 | 0.028 | 1,000-1,000 |"]  # fmt: skip
    assert "benchmarks/results/time-to-quality-w.json" in text
    text = module.render_ideas({**records, "time-to-quality-w": ttq})
    # 1,000 CPU s against this record's strong (3,000), not strong-honest's 6,342
    line = next(ln for ln in text.splitlines() if ln.startswith("| `w` (`time-to-quality-w`)"))
    assert line == "| `w` (`time-to-quality-w`) | 1 | 900 | 1,000 | 0.333 | 0.600 | n/a | 0.620 |"


def test_seeds_block_gives_a_rerun_of_the_same_seeds_its_own_row(copy):
    """time-to-quality-r13 reruns r12's seeds: one row per record, not one row of eight runs
    that counts each seed twice and mixes two machines' CPU seconds."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    first = json.loads(json.dumps(records["time-to-quality-r10"]))
    strong = first["figures"]["recipes"]["strong"]
    point = strong["curve"][0]
    made = {}
    for name, cpu, vals in (("time-to-quality-a", 1000.0, (0.60, 0.62)),
                            ("time-to-quality-b", 2000.0, (0.64, 0.70))):  # fmt: skip
        record = json.loads(json.dumps(first))
        recipes = {}
        for recipe, val in zip(("w", "w-s1"), vals, strict=True):
            curve = [{**point, "cpu_s": cpu, "selection_f1": val}]
            recipes[recipe] = {**strong, "cpu_s": cpu, "epochs": 1, "curve": curve,
                               "val_untouched_f1": val, "status": "trained"}  # fmt: skip
        record["name"], record["figures"]["recipes"] = name, recipes
        made[name] = record
    lines = [ln for ln in module.render_seeds(made).splitlines() if ln.startswith("| `")]
    assert lines == [
        "| `w` (`time-to-quality-a`) | 2 (default, 1) | 0.610 | 0.600-0.620 | 0.014 | 0.610 | "
        "0.600-0.620 | 0.014 | 1,000-1,000 |",
        "| `w` (`time-to-quality-b`) | 2 (default, 1) | 0.670 | 0.640-0.700 | 0.042 | 0.670 | "
        "0.640-0.700 | 0.042 | 2,000-2,000 |",
    ]


def test_ideas_block_has_rows_from_every_time_to_quality_run(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    again = json.loads(json.dumps(records["time-to-quality"]))
    again["name"] = "time-to-quality-2"
    again["figures"]["recipes"] = {"y": {**again["figures"]["recipes"]["strong"], "epochs": 7}}
    text = module.render_ideas({**records, "time-to-quality-2": again})
    assert any(ln.startswith("| `y` (`time-to-quality-2`) | 7 |") for ln in text.splitlines())
    assert any(ln.startswith("| `strong` | 40 |") for ln in text.splitlines())
    assert "benchmarks/results/time-to-quality-2.json" in text


def test_decisions_follow_their_records_and_the_margin(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    fake = {"name": "cand", "figures": {"selection_f1": 0.7, "curve": [{"f": 0.5}, {"f": 0.8}]}}
    rule = {"decision": "d", "written": "w", "measure": "m", "candidate": ["cand", "selection_f1"],
            "baseline": ["cand", "curve.[].f"], "margin": 0.0}  # fmt: skip
    assert (
        module.figure_at(fake, "curve.[].f") == 0.8 and module.figure_at(fake, "curve.0.f") == 0.5
    )
    assert module.decide(rule, {"cand": fake}) == (0.7, 0.8, False)
    assert module.decide({**rule, "baseline": ["cand", "curve.0.f"]}, {"cand": fake})[2]
    assert not module.decide({**rule, "baseline": ["cand", "curve.0.f"], "margin": 0.3},
                             {"cand": fake})[2]  # fmt: skip
    text = module.render_decisions({**records, "cand": fake}, rules=[rule])
    assert "| d | w | m | 0.7000 (`cand`) | 0.8000 (`cand`) | > 0.000 | no |" in text
    with pytest.raises(module.MissingRecord):
        module.render_decisions(records, rules=[rule])


def test_a_decision_may_average_an_arm_over_several_runs(copy):
    """One recipe over several seeds: an arm is a list of ``[record, path]``, its figure the mean."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    a = {"name": "a", "figures": {"rows": [{"f": 0.60}, {"f": 0.64}]}}
    b = {"name": "b", "figures": {"rows": [{"f": 0.61}], "mean": {"f": 0.5}}}
    rule = {"decision": "d", "written": "w", "measure": "m",
            "candidate": [["a", "rows.0.f"], ["a", "rows.1.f"]],
            "baseline": [["b", "rows.0.f"], ["b", "mean.f"]], "margin": 0.06}  # fmt: skip
    cand, base, won = module.decide(rule, {"a": a, "b": b})
    assert (cand, base) == (pytest.approx(0.62), pytest.approx(0.555)) and won
    assert not module.decide({**rule, "margin": 0.07}, {"a": a, "b": b})[2]
    text = module.render_decisions({**records, "a": a, "b": b}, rules=[rule])
    assert "| 0.6200 (mean of 2: `a`) | 0.5550 (mean of 2: `b`) | > 0.060 | **yes** |" in text
    assert "benchmarks/results/a.json" in text and "benchmarks/results/b.json" in text
    pending = module.render_decisions(records, rules=[{**rule, "pending": True}])
    assert "| pending (`a`) | `b` | > 0.060 | not yet run |" in pending
    with pytest.raises(module.PendingDone):
        module.render_decisions({**records, "a": a, "b": b}, rules=[{**rule, "pending": True}])


def test_ideas_block_has_one_row_for_runs_scored_each_alone(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    each = json.loads(json.dumps(records["ensemble-check-strong"]))
    member = each["figures"]["members"][0]
    each["figures"].update(
        each=True, k=2, tta_transforms="dihedral", members=[member, {**member, "recipe": "z"}],
        mean={"selection_f1": 0.6123, "val_untouched_f1": 0.6346, "cpu_s": 1000.0},
    )  # fmt: skip
    text = module.render_ideas({**records, "ensemble-each": each})
    strong_cpu = records["strong-honest"]["figures"]["cpu_seconds"]
    row = "| strong + z, each alone, dihedral TTA: mean of 2 (`ensemble-each`) | members' |  | "
    assert f"{row}1,000 | {1000 / strong_cpu:.3f} | n/a | 0.612 | 0.635 |" in text


def test_a_pending_decision_renders_until_its_record_lands(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    rule = {"decision": "d", "written": "w", "measure": "m", "candidate": ["cand", "f"],
            "baseline": ["cand", "f"], "margin": 0.005, "pending": True}  # fmt: skip
    text = module.render_decisions(records, rules=[rule])
    assert "| d | w | m | pending (`cand`) | `cand` | > 0.005 | not yet run |" in text
    with pytest.raises(module.PendingDone):  # the record landed: the rule must be decided
        module.render_decisions({**records, "cand": {"name": "cand", "figures": {"f": 1}}},
                                rules=[rule])  # fmt: skip


def test_the_strong_preset_follows_its_tta_decision():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    from landslide_tf.training.recipe import STRONG

    rules = json.loads(module.DECISIONS.read_text())["rules"]
    rule = next(r for r in rules if r["candidate"][0] == "ensemble-strong-dihedral")
    won = module.decide(rule, module.read_records(ROOT / "benchmarks" / "results"))[2]
    assert STRONG["tta_transforms"] == ("dihedral" if won else "flips")


def test_the_fast_preset_follows_its_decisions():
    """Its epochs, test-time averaging and depth are what the rules over four seeds decided."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    from landslide_tf.training.recipe import FAST

    records = module.read_records(ROOT / "benchmarks" / "results")
    rules = json.loads(module.DECISIONS.read_text())["rules"]
    tta = next(r for r in rules if r["candidate"][0] == "ensemble-fast-e28-each-dihedral")
    assert FAST["tta_transforms"] == ("dihedral" if module.decide(tta, records)[2] else "flips")
    e32 = next(r for r in rules if r["candidate"][0][0] == "trial-fast-e32")
    rows = records["trial-fast-e32"]["figures"]["rows"]
    within = all(row["cpu_s"] <= records["strong-honest"]["figures"]["cpu_seconds"] / 3
                 for row in rows)  # fmt: skip
    longer = 32 if module.decide(e32, records)[2] and within else 24
    d3 = next(r for r in rules if r["candidate"][0][0] == "time-to-quality-r11")
    assert FAST["depth"] == (3 if module.decide(d3, records)[2] else 4)
    e30 = next(r for r in rules if r["candidate"][0][0] == "time-to-quality-r12")
    assert "pending" not in e30  # its record exists: decided
    assert FAST["epochs"] == (30 if longer == 32 and module.decide(e30, records)[2] else longer)


def test_seeds_block_joins_a_recipe_with_its_seeded_runs(copy):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    trial = json.loads(json.dumps(records["strong-s1-e26"]))
    base = trial["figures"]["rows"][0]
    rows = []
    for recipe, sel, val, status in (("z", 0.60, 0.62, "trained"), ("z-s1", 0.62, 0.64, None),
                                     ("z-s2", 0.64, 0.69, "trained"), ("lonely", 0.5, 0.5, None),
                                     ("z", 0.60, 0.62, "reported")):  # fmt: skip
        row = json.loads(json.dumps(base))
        row.update(recipe=recipe, cpu_s=1000.0, best_selection_f1=sel)
        row["val_untouched"]["f1"] = val
        if status:  # a row real_quality reused from a finished run counts once, not twice
            row["status"] = status
        rows.append(row)
    trial["name"], trial["figures"]["rows"] = "trial-z", rows
    text = module.render_seeds({"trial-z": trial})
    lines = [ln for ln in text.splitlines() if ln.startswith("| `")]
    # one row: z with seeds default, 1 and 2 (lonely has one run); val sd of .62/.64/.69
    assert lines == ["| `z` | 3 (default, 1, 2) | 0.620 | 0.600-0.640 | 0.020 | 0.650 | "
                     "0.620-0.690 | 0.036 | 1,000-1,000 |"]  # fmt: skip
    assert text.count("benchmarks/results/trial-z.json") == 1
    assert "more than one seed yet" in module.render_seeds({})


def test_an_ensemble_of_runs_from_one_time_to_quality_record_is_priced_against_its_strong(copy):
    """Members trained beside a strong run (one time_to_quality.py run, one machine and load)
    are divided by that run's CPU s, not by strong-honest's from another machine."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import report as module

    records = dict(module.read_records(copy / "results"))
    ttq = json.loads(json.dumps(records["time-to-quality"]))
    strong = ttq["figures"]["recipes"]["strong"]
    ttq["figures"]["recipes"] = {"strong": {**strong, "cpu_s": 2000.0},
                                 "m": {**strong, "cpu_s": 500.0}}  # fmt: skip
    ens = json.loads(json.dumps(records["ensemble-check-strong"]))
    member = {**ens["figures"]["members"][0], "recipe": "m", "cpu_s": 500.0}
    ens["figures"].update(members=[member, {**member, "recipe": "m"}], k=2, members_cpu_s=1000.0)
    others = {n: r for n, r in records.items() if not n.startswith("ensemble-")}
    text = module.render_ideas({**others, "time-to-quality-x": ttq, "ensemble-mm": ens})
    row = next(ln for ln in text.splitlines() if ln.startswith("| ensemble m + m,"))
    assert "| 1,000 | 0.500 |" in row
    # a member the record does not hold (another CPU s): strong-honest's CPU s, as before
    ens["figures"]["members"][1]["cpu_s"] = 501.0
    text = module.render_ideas({**others, "time-to-quality-x": ttq, "ensemble-mm": ens})
    row = next(ln for ln in text.splitlines() if ln.startswith("| ensemble m + m,"))
    strong_cpu = records["strong-honest"]["figures"]["cpu_seconds"]
    assert f"| 1,000 | {1000 / strong_cpu:.3f} |" in row
