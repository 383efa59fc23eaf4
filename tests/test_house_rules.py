"""The house rules as checks (issue 19): layered imports, no circles, no private names across
modules, no re-export shims, no band twins, every root module documented."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "landslide_tf"
#: The entry points among the root modules (the others: the shared bottom errors, files, console).
ENTRY_POINTS = {"train", "evaluate", "predict", "export", "gradcam"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node


def test_import_contracts_hold():
    """setup.cfg's import-linter contracts: stages import downwards only, no circles."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.fail("lint-imports is missing: pip install -e '.[dev]'")
    done = subprocess.run([exe, str(ROOT / "setup.cfg")], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]


def test_no_private_name_is_imported_across_modules():
    found = []
    for name, path in _modules().items():
        for node in _imports(path):
            if not node.module.startswith("landslide_tf"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{name}: from {node.module} import {alias.name}")
    assert found == []


def test_no_re_export_shims():
    """A module imports names to use them, not to pass them on (package __init__ files state
    their package's API and the entry points import main)."""
    found = []
    for name, path in _modules().items():
        if path.name in ("__init__.py", "__main__.py") or name.split(".")[-1] in ENTRY_POINTS:
            continue
        text = path.read_text()
        for lineno, line in enumerate(text.splitlines(), 1):
            if re.search(r"noqa: F401.*re-?export|re-?exported", line, re.I):
                found.append(f"{name}:{lineno}: {line.strip()}")
        tree = ast.parse(text)
        if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            found.append(f"{name}: module __getattr__ (lazy re-export)")
    assert found == []


def test_no_band_twins():
    twins = [p.relative_to(ROOT) for p in PACKAGE.rglob("*.py") if p.stem.startswith("band_")]
    twins += [p.relative_to(ROOT) for p in PACKAGE.rglob("bandpipe.py")]
    assert twins == []


def test_entry_points_are_thin():
    for name in ENTRY_POINTS:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        imports = [n for n in tree.body if isinstance(n, ast.ImportFrom)]
        assert [(n.module, [a.name for a in n.names]) for n in imports] == [
            (f"landslide_tf.cli.{name}", ["main"])
        ]


def test_root_modules_are_few_and_documented():
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    root = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert set(root) - ENTRY_POINTS <= {"errors", "files", "console"}, root
    for name in [*root, *packages]:
        assert f"`{name}" in architecture, f"docs/ARCHITECTURE.md does not describe {name}"
