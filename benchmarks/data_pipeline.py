"""First-epoch tiles/s of the input pipeline: the former eager loader against the parallel one.

Usage::

    python benchmarks/data_pipeline.py [--n 120] [--image-size 128] [--batch-size 8] [--turns 3]
        [--real ../shared/data/l4s-rgb-dev] [--limit 0] [--baseline-src /tmp/before]

Two datasets, same process, same machine: a synthetic set (``--n`` landslide tiles plus
``n // 4`` negatives, RGB + DEM, made in a temporary folder) and the real RGB set
``l4s-rgb-dev`` (skipped with a note where absent). For each, in turns (old, new, old, new...
so a load change on a shared machine hits both alike):

- ``old``: ``load_tiles`` (tile by tile: read, eager TensorFlow preprocessing) then one
  epoch over the in-memory dataset: what ``make_dataset`` did before issue 14;
- ``new``: ``make_dataset`` (parallel decode + traced preprocessing in tf.data) and one epoch;
- ``stream``: ``make_dataset(cache=False)``: one epoch decoded from disk on the fly.

Every figure is a first, uncached epoch: the files are in the OS page cache after the first
turn for both implementations alike, the decoded tiles are not. Prints the median tiles/s of
each, the CPU milliseconds per tile (all threads of the process: the figure a shared machine
disturbs least) and the ratios new / old, with the load average.

``--baseline-src DIR`` (a checkout of the commit before the parallel pipeline, e.g.
``git worktree add /tmp/before ab93c5b``) adds the comparison the issue asks for: the
*released* former ``make_dataset`` against today's, each in a fresh process per turn
(``benchmarks/_first_epoch.py``: nothing traced or decoded before the timed build + pass),
in turns before / after. ``load_tiles`` above is today's tile-by-tile loader, which already
shares the faster readers; the baseline is the code users ran.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
# this checkout's landslide_tf before an installed one
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from _children import INTERRUPTED, run_child  # noqa: E402
from _record import Recorder, add_results_args, save, split_summary  # noqa: E402

from landslide_tf.cli.common import run_cli  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "l4s-rgb-dev"


def _epoch(ds) -> int:
    return sum(int(x.shape[0]) for x, _ in ds)


def _old(samples, batch: int, options: dict) -> int:
    import tensorflow as tf

    from landslide_tf.data.pipeline import load_tiles
    from landslide_tf.data.spec import bijie_spec

    x, y = load_tiles(samples, bijie_spec(options["image_size"], options["modalities"]))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(batch)
    return _epoch(ds.prefetch(tf.data.AUTOTUNE))


def _new(samples, batch: int, options: dict, cache: bool = True) -> int:
    from landslide_tf.data.pipeline import make_dataset
    from landslide_tf.data.spec import bijie_spec

    spec = bijie_spec(options["image_size"], options["modalities"])
    ds = make_dataset(samples, spec, batch_size=batch, shuffle=True, seed=0, cache=cache)
    return _epoch(ds)


def _time(fn, *args, **kwargs) -> tuple[float, float]:
    """(tiles/s wall, CPU ms per tile over all threads of this process)."""
    start, cpu = time.perf_counter(), time.process_time()
    n = fn(*args, **kwargs)
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e3


def bench(name: str, samples, args, options: dict) -> dict:
    rates: dict[str, list[float]] = {"old": [], "new": [], "stream": []}
    cpus: dict[str, list[float]] = {"old": [], "new": [], "stream": []}
    _new(samples[: min(16, len(samples))], args.batch_size, options)  # trace once
    for _ in range(args.turns):
        for key, fn, extra in (
            ("old", _old, {}),
            ("new", _new, {}),
            ("stream", _new, {"cache": False}),
        ):
            rate, cpu = _time(fn, samples, args.batch_size, options, **extra)
            rates[key].append(rate)
            cpus[key].append(cpu)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpus.items()}
    print(f"{name}: {len(samples)} tiles, {options['modalities']}, {options['image_size']} px")
    for key, label in (
        ("old", "old (eager, tile by tile)"),
        ("new", "new (parallel, in memory)"),
        ("stream", "new, streaming (cache=False)"),
    ):
        turns = " ".join(f"{r:.0f}" for r in rates[key])
        print(
            f"  {label:30s} {med[key]:8.1f} tiles/s, {cpu_med[key]:5.2f} CPU ms/tile "
            f"(turns: {turns})"
        )
    print(
        f"  ratio new / old: {med['new'] / med['old']:.1f}x first epoch tiles/s, "
        f"{cpu_med['old'] / cpu_med['new']:.1f}x less CPU per tile"
    )
    return {
        "tiles": len(samples),
        "modalities": options["modalities"],
        "image_size": options["image_size"],
        "tiles_per_s": med,
        "cpu_ms_per_tile": cpu_med,
        "turns_tiles_per_s": rates,
        "ratio_new_over_old": med["new"] / med["old"],
        "cpu_ratio_old_over_new": cpu_med["old"] / cpu_med["new"],
    }


def _fresh(src: Path, data: Path, modalities: str, negatives: str, limit: int, args) -> dict:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "_first_epoch.py"),
        f"--src={src}",
        f"--data={data}",
        f"--modalities={modalities}",
        f"--negatives={negatives}",
        f"--image-size={args.image_size}",
        f"--batch-size={args.batch_size}",
        f"--limit={limit}",
    ]
    done = run_child(cmd)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise SystemExit(f"{src}: first-epoch run failed: {' '.join(tail)}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_commits(name: str, data: Path, modalities: str, negatives: str, limit: int, args) -> dict:
    """The former release against today's code, fresh processes, in turns."""
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.turns):
        for key, src in (("before", Path(args.baseline_src)), ("after", ROOT)):
            runs[key].append(_fresh(src, data, modalities, negatives, limit, args))
    med = {k: statistics.median(r["tiles_per_s"] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r["cpu_ms_per_tile"] for r in v) for k, v in runs.items()}
    tiles = runs["after"][0]["tiles"]
    print(f"{name}: {tiles} tiles, {modalities}, fresh process per turn")
    for key, label in (("before", f"before ({args.baseline_src})"), ("after", "after (this tree)")):
        turns = " ".join(f"{r['tiles_per_s']:.0f}" for r in runs[key])
        print(
            f"  {label:30s} {med[key]:8.1f} tiles/s, {cpu[key]:5.2f} CPU ms/tile (turns: {turns})"
        )
    print(
        f"  ratio after / before: {med['after'] / med['before']:.1f}x first epoch tiles/s, "
        f"{cpu['before'] / cpu['after']:.1f}x less CPU per tile"
    )
    return {
        "tiles": tiles,
        "baseline_src": str(args.baseline_src),
        "tiles_per_s": med,
        "cpu_ms_per_tile": cpu,
        "ratio_after_over_before": med["after"] / med["before"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=120, help="synthetic landslide tiles")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--turns", type=int, default=3, help="timed turns per implementation")
    parser.add_argument("--real", default=str(REAL), help="real RGB set (l4s-rgb-dev)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N real tiles")
    parser.add_argument(
        "--baseline-src",
        help="checkout of the former release: compare its make_dataset with this tree's",
    )
    add_results_args(parser)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # RGBA notes per tile would dominate the output

    import tensorflow as tf

    from landslide_tf.data import find_samples, synthesize

    print(
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, "
        f"TensorFlow {tf.__version__}"
    )
    figures: dict = {"batch_size": args.batch_size, "turns": args.turns}
    data = None
    with Recorder() as recorder:
        with tempfile.TemporaryDirectory() as tmp:
            root = synthesize(os.path.join(tmp, "synth"), n=args.n, seed=0)
            samples = find_samples(root, negatives="on")
            options = dict(image_size=args.image_size, modalities="rgb+dem")
            figures["synthetic"] = bench("synthetic", samples, args, options)
            if args.baseline_src:
                figures["synthetic_commits"] = bench_commits(
                    "synthetic", Path(root), "rgb+dem", "on", 0, args
                )
        real = Path(args.real)
        if (real / "landslide" / "image").is_dir():
            samples = find_samples(real, modalities="rgb")
            if args.limit:
                samples = samples[: args.limit]
            options = dict(image_size=args.image_size, modalities="rgb")
            figures["real"] = bench("l4s-rgb-dev", samples, args, options)
            data = split_summary("l4s-rgb-dev", {"tiles": [s.stem for s in samples]})
            if args.baseline_src:
                figures["real_commits"] = bench_commits(
                    "l4s-rgb-dev", real, "rgb", "off", args.limit, args
                )
        else:
            print(f"l4s-rgb-dev: skipped ({real} not found)")
            figures["real"] = None
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    save(args, "data_pipeline.py", argv, figures, recorder=recorder, data=data)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main, interrupted=INTERRUPTED))
