"""Strip outputs and execution counts from notebooks before committing them.

Usage::

    python colab/strip_outputs.py                 # every colab/*.ipynb
    python colab/strip_outputs.py a.ipynb b.ipynb
    python colab/strip_outputs.py --check         # exit 1 if any notebook has outputs

``tests/test_notebooks.py`` fails on a notebook committed with outputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def strip(nb: nbformat.NotebookNode) -> bool:
    """Remove outputs, execution counts and run metadata in place; return whether it changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.outputs or cell.execution_count is not None:
            changed = True
        cell.outputs = []
        cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled"):
            changed |= cell.metadata.pop(key, None) is not None
    for key in ("widgets", "papermill"):
        changed |= nb.metadata.pop(key, None) is not None
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default colab/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if unstripped")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(HERE.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if strip(nb):
            dirty.append(path)
            if not args.check:
                nbformat.validate(nb)
                nbformat.write(nb, path)
    for path in dirty:
        print(f"{'has outputs' if args.check else 'stripped'}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    raise SystemExit(main())
