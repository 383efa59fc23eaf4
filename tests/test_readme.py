"""The README's commands: what they write is ignored by git (issue 22 item 7)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Flags whose value is a file or folder a command writes.
OUTPUT_FLAGS = ("--out", "--polygons", "--preview", "--run-dir")


def readme_outputs() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    found = []
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("#", 1)[0].strip()
            if "landslide_tf" not in command and "benchmarks/" not in command:
                continue
            tokens = shlex.split(command)
            for flag, value in zip(tokens, tokens[1:], strict=False):
                if flag in OUTPUT_FLAGS and not value.startswith(("/", "~", "$")):
                    if value.upper() != value:  # placeholders such as OUT or DIR are not paths
                        found.append(value)
    return sorted(set(found))


def test_the_readme_names_outputs():
    assert {"chips", "map.tif", "saved_model/"} <= set(readme_outputs())


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_every_readme_output_is_ignored_by_git():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    missed = []
    for value in readme_outputs():
        probe = value.rstrip("/") + ("/x" if value.endswith("/") or "." not in value else "")
        done = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT)
        if done.returncode != 0:
            missed.append(value)
    assert missed == []


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_module_path_the_docs_name_exists():
    """A file path such as ``landslide_tf/training/optim.py`` in README.md or docs/ exists
    (the redesign moved modules; the docs must follow)."""
    missing = [
        f"{doc.name}: {path}"
        for doc in _documents()
        for path in sorted(set(re.findall(r"landslide_tf/[a-z_/]+\.py", doc.read_text())))
        if not (ROOT / path).is_file()
    ]
    assert missing == []


def test_every_dotted_name_the_docs_name_imports():
    """``landslide_tf.x.y`` in README.md or docs/ is a module or an attribute of one
    (placeholders in capitals, such as ``landslide_tf.X``, are skipped)."""
    import importlib

    missing = []
    for doc in _documents():
        for name in sorted(set(re.findall(r"landslide_tf(?:\.[A-Za-z_]\w*)+", doc.read_text()))):
            parts = name.split(".")
            if any(p.isupper() for p in parts):
                continue
            for cut in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:cut]))
                    break
                except ImportError:
                    continue
            for attr in parts[cut:]:
                if not hasattr(obj, attr):
                    missing.append(f"{doc.name}: {name}")
                    break
                obj = getattr(obj, attr)
    assert missing == []
