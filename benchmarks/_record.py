"""Result records: every benchmark and study writes one JSON file under ``benchmarks/results/``.

A record says what was run and where, so a figure in README.md or docs/ can be traced to a
command, a commit and a machine, and ``benchmarks/report.py`` can render the tables from it:

```
{"schema": 1, "name": ..., "benchmark": "real_quality.py", "command": "python benchmarks/...",
 "commit": "<git rev>", "dirty": false, "date": "2026-12-02T17:00:00+00:00",
 "machine": {"cpu": ..., "flags": [...], "cores": 2, "memory_gib": 23.4, "gpus": [],
             "python": ..., "tensorflow": ..., "keras": ..., "numpy": ...},
 "load": {"mean_1min": 1.9, "max_1min": 3.1, "samples": 120},
 "data": {"name": ..., "splits": {"train": n, ...}, "split_sha256": ...} or null,
 "figures": {...}}
```

``Recorder`` samples the load average while the work runs; ``write_record`` writes the file
atomically. ``$LANDSLIDE_TF_RESULTS`` (or ``--results DIR`` of a benchmark) redirects the
records, which the smoke tests use so they never touch the committed ones.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SCHEMA = 1
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RESULTS_ENV = "LANDSLIDE_TF_RESULTS"
#: The commit of a copy of the tree that has no ``.git`` (set by whoever copied it).
COMMIT_ENV = "LANDSLIDE_TF_COMMIT"
#: CPU flags worth naming beside a speed figure (the rest of /proc/cpuinfo's list is noise).
FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma", "sse4_2")
#: Fields every record has (tests check them).
FIELDS = ("schema", "name", "benchmark", "command", "commit", "dirty", "date", "machine",
          "load", "data", "figures")  # fmt: skip


def results_dir(override: str | Path | None = None) -> Path:
    """Where records go: ``override``, else ``$LANDSLIDE_TF_RESULTS``, else benchmarks/results."""
    if override:
        return Path(override)
    env = os.environ.get(RESULTS_ENV, "").strip()
    return Path(env) if env else RESULTS


def git_commit() -> tuple[str, bool]:
    """``(HEAD revision, whether the work tree has uncommitted changes)`` ("unknown" outside git)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # A copy of the tree without .git (an accelerator machine's): the caller names it.
        return os.environ.get(COMMIT_ENV, "unknown"), False
    return rev, bool(status)


def machine_info() -> dict[str, Any]:
    """CPU model and flags, cores, memory, GPUs, Python and library versions."""
    cpu, flags = platform.processor() or platform.machine(), []
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in FLAGS_OF_INTEREST if f in have]
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "flags": flags,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
    }
    for module in ("tensorflow", "keras", "numpy", "jax"):
        mod = sys.modules.get(module)
        if mod is not None:
            info[module] = getattr(mod, "__version__", "?")
        else:  # not imported here (a script that trains in subprocesses): the installed one
            try:
                info[module] = importlib.metadata.version(module)
            except importlib.metadata.PackageNotFoundError:
                pass
    info["gpus"] = _gpus()
    return info


def _gpus() -> list[str]:
    tf = sys.modules.get("tensorflow")
    if tf is None:  # no TensorFlow here (a JAX machine): ask the driver
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20, check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return []
        return [line.strip() for line in out.splitlines() if line.strip()]
    try:
        return [
            tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")
        ]
    except Exception:  # noqa: BLE001  (device queries differ between builds)
        return []


def sha256_lines(lines: Iterable[str]) -> str:
    """Hash of a split list (one stem per line, order kept)."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.strip().encode() + b"\n")
    return digest.hexdigest()


def split_summary(name: str, splits: Mapping[str, Iterable[str]]) -> dict[str, Any]:
    """``data`` entry of a record: the data's name, split sizes and one hash of the lists."""
    sizes, digest = {}, hashlib.sha256()
    for split in sorted(splits):
        stems = [str(s) for s in splits[split]]
        sizes[split] = len(stems)
        digest.update(f"{split}:{sha256_lines(stems)}\n".encode())
    return {"name": name, "splits": sizes, "split_sha256": digest.hexdigest()}


class Recorder:
    """Samples the 1-minute load average every ``every_s`` seconds while the block runs.

    Example::

        with Recorder() as rec:
            work()
        write_record("name", "script.py", figures, load=rec.load())
    """

    def __init__(self, every_s: float = 15.0) -> None:
        self.every_s = every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.commit: tuple[str, bool] | None = None

    def _sample(self) -> None:
        try:
            self.samples.append(os.getloadavg()[0])
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._sample()

    def __enter__(self) -> Recorder:
        # the code that runs is the tree at the start: a commit made while a long run goes
        # on must not be named as what ran (see ``save``)
        self.commit = git_commit()
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def load(self) -> dict[str, Any]:
        if not self.samples:
            return {"mean_1min": None, "max_1min": None, "samples": 0}
        return {
            "mean_1min": round(sum(self.samples) / len(self.samples), 2),
            "max_1min": round(max(self.samples), 2),
            "samples": len(self.samples),
        }


def make_record(
    name: str,
    benchmark: str,
    figures: Mapping[str, Any],
    *,
    command: str | None = None,
    load: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    commit: tuple[str, bool] | None = None,
) -> dict[str, Any]:
    """The record dict (see the module docstring); ``commit`` is ``(rev, dirty)``, else HEAD now."""
    commit, dirty = commit or git_commit()
    if command is None:
        command = "python " + " ".join([_shown(sys.argv[0]), *sys.argv[1:]])
    return {
        "schema": SCHEMA,
        "name": name,
        "benchmark": benchmark,
        "command": command,
        "commit": commit,
        "dirty": dirty,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load": dict(load) if load is not None else None,
        "data": dict(data) if data is not None else None,
        "figures": dict(figures),
    }


def tree_changed_note(start: tuple[str, bool], end: tuple[str, bool]) -> str:
    """The record's note when the work tree changed between a run's start and its end.

    >>> tree_changed_note(("a" * 40, False), ("b" * 40, False))
    'the work tree changed during the run: HEAD aaaaaaaaaa (clean) at the start, bbbbbbbbbb (clean) at the end'
    """

    def shown(state: tuple[str, bool]) -> str:
        return f"{state[0][:10]} ({'local changes' if state[1] else 'clean'})"

    return f"the work tree changed during the run: HEAD {shown(start)} at the start, {shown(end)} at the end"


def _shown(script: str) -> str:
    path = Path(script).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return script


def write_record(record: Mapping[str, Any], directory: str | Path | None = None) -> Path:
    """Write ``record`` to ``<results dir>/<name>.json`` atomically; return the path."""
    out_dir = results_dir(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{record['name']}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read_records(directory: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Every record of a results directory, by name."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir(directory).glob("*.json")):
        record = json.loads(path.read_text())
        out[record["name"]] = record
    return out


def add_results_args(parser: Any, default_name: str | None = None) -> None:
    """Add ``--results DIR`` (where the record goes) and ``--name`` (the record's name).

    ``default_name``: the name ``benchmarks/report.py`` reads records of this script by
    (``time-to-quality``, ``ensemble-...``); None: the script's name.
    """
    parser.add_argument(
        "--results",
        type=Path,
        help=f"write the result record here (default: ${RESULTS_ENV} or benchmarks/results)",
    )
    parser.add_argument(
        "--name",
        default=default_name,
        help=f"record name (default: {default_name or 'the script name'})",
    )


def command_line(script: str, argv: list[str] | None) -> str:
    """``python benchmarks/SCRIPT ARGS``: the command as a user types it (``argv`` or sys.argv)."""
    import shlex

    args = list(argv) if argv is not None else sys.argv[1:]
    return shlex.join(["python", f"benchmarks/{script}", *args])


def save(
    args: Any,
    script: str,
    argv: list[str] | None,
    figures: Mapping[str, Any],
    *,
    recorder: Recorder | None = None,
    data: Mapping[str, Any] | None = None,
) -> Path:
    """Write the record of one benchmark run (``args`` has ``results`` and ``name``); print it.

    The record is named ``args.name`` or the script's stem; its command is ``script`` with
    ``argv`` (the arguments ``main`` was given, else ``sys.argv``).
    """
    name = getattr(args, "name", None) or Path(script).stem
    start = recorder.commit if recorder is not None else None
    end = git_commit()
    changed = start is not None and start != end
    record = make_record(
        name,
        script,
        figures,
        command=command_line(script, argv),
        load=recorder.load() if recorder is not None else None,
        data=data,
        # the tree at the start, marked dirty when it changed while the run went on
        commit=(start[0], start[1] or changed) if start is not None else end,
    )
    if changed:
        record["note"] = tree_changed_note(start, end)
    path = write_record(record, getattr(args, "results", None))
    print(f"record: {path}")
    return path
