"""The evidence code: report.py's check, the ideas table's CPU ratio, an ensemble's val.

The scripts are loaded by path from the tree whose ``landslide_tf`` is imported, so the
tests run against another checkout (``PYTHONPATH=/tmp/old`` from there) check that one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import landslide_tf

ROOT = Path(landslide_tf.__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def load(name: str):
    """``benchmarks/<name>.py`` of ROOT as a fresh module."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"evidence_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """README.md, docs/*.md and the records, copied to ``tmp_path``."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "docs").mkdir()
    for path in (ROOT / "docs").glob("*.md"):
        shutil.copy(path, tmp_path / "docs" / path.name)
    shutil.copytree(BENCH / "results", tmp_path / "results")
    return tmp_path


def check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / "report.py"), "--check", "--root", str(root),
         "--results", str(root / "results")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_check_fails_on_a_figure_whose_block_lost_its_closing_marker(copy):
    assert check(copy).returncode == 0
    readme = copy / "README.md"
    text = readme.read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("| `strong-honest` |"))
    edited = row.replace("| 0.682 |", "| 0.702 |", 1)
    assert edited != row
    # the figure no longer matches its record, and the block's closing marker is gone
    text = text.replace(row, edited).replace("<!-- /report:strong -->\n", "", 1)
    readme.write_text(text)
    failed = check(copy)
    assert failed.returncode != 0, failed.stdout
    assert "README.md" in failed.stderr and "marker" in failed.stderr


def _ttq_record(reference: str) -> dict:
    """A time-to-quality record of strong and fast-d3 (4,000 and 1,000 CPU s)."""
    curve = [{"epoch": 1, "cpu_s": 100.0, "selection_f1": 0.6}]
    recipes = {
        "fast-d3": {"cpu_s": 1000.0, "epochs": 30, "val_untouched_f1": 0.66, "curve": curve,
                    "status": "trained"},
        "strong": {"cpu_s": 4000.0, "epochs": 40, "val_untouched_f1": 0.68, "curve": curve,
                   "status": "trained"},
    }  # fmt: skip
    return {
        "name": "time-to-quality-x", "command": "python benchmarks/time_to_quality.py",
        "commit": "a" * 40, "dirty": False, "date": "2026-12-08T00:00:00+00:00",
        "machine": {"cpu": "cpu", "cores": 2}, "load": None, "data": None,
        "figures": {"reference": reference, "recipes": recipes},
    }  # fmt: skip


@pytest.mark.parametrize("reference", ["strong", "fast-d3"])
def test_ideas_ratio_is_to_strong_whatever_the_records_reference(reference):
    """The column says "x strong's CPU s": a record compared against --reference fast-d3
    must not divide by fast-d3's CPU seconds."""
    record = _ttq_record(reference)
    text = load("report").render_ideas({record["name"]: record})
    rows = {ln.split("|")[1].strip(): ln.split("|") for ln in text.splitlines()
            if ln.startswith("| `")}  # fmt: skip
    assert rows["`strong` (`time-to-quality-x`)"][5].strip() == "1.000"
    assert rows["`fast-d3` (`time-to-quality-x`)"][5].strip() == "0.250"


def _lists(folder: Path, **lists: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name, stems in lists.items():
        (folder / f"{name}.txt").write_text("".join(f"{s}\n" for s in stems))
    return folder


def test_ensemble_refuses_a_member_that_saw_the_val_it_scores_as_untouched(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    honest = _lists(tmp_path / "honest", train=["t0", "t1"], val=["s0"], test=["v0", "v1"])
    # trained on the plain lists: its checkpoint was chosen on val.txt, the given val
    plain = _lists(tmp_path / "plain", train=["t0", "t1", "s0"], val=["v0", "v1"])
    member = tmp_path / "member"
    member.mkdir()
    (member / "config.json").write_text(json.dumps({"split_dir": str(plain)}))
    out, results = tmp_path / "out", tmp_path / "records"
    eq = load("ensemble_quality")
    argv = ["--members", str(member), "--split-dir", str(honest), "--data", str(data),
            "--out", str(out), "--results", str(results)]  # fmt: skip
    assert eq.main(argv) == 2
    assert "untouched" in capsys.readouterr().err
    assert not out.exists() and not results.exists()
    # its lists gone: what it chose on cannot be told either
    shutil.rmtree(plain)
    assert eq.main(argv) == 2
    assert not out.exists() and not results.exists()
    # a member of the honest lists, or one that carved its selection from train, saw no val
    (member / "config.json").write_text(json.dumps({"split_dir": str(honest)}))
    assert eq.seen_stems(member) == {"t0", "t1", "s0"}
    carved = _lists(tmp_path / "given", train=["t0", "t1", "s0"], val=["v0", "v1"])
    (member / "config.json").write_text(
        json.dumps({"split_dir": str(carved), "select_from_train": 0.15})
    )
    assert eq.seen_stems(member) == {"t0", "t1", "s0"}
