"""Running the study's trainings: resume/skip logic, error capture, parallel processes.

Each run lives in ``OUT/runs/<model>-<loss>-s<seed>/`` (the ``train`` run dir) plus our
``experiment.json`` (status, wall time, the config we asked for) and, for a failed run,
``error.txt`` (the traceback). On a rerun:

- ``metrics.json`` present and ``config.json`` equal to the requested config, scoring
  options included: skipped (status ``cached``); other scoring options (TTA, threshold
  tuning): scored again by ``train`` without training;
- a different config in the folder: the folder is moved aside to ``<name>.stale-<k>`` and
  the run starts afresh;
- no ``metrics.json`` (interrupted or failed before): trained again; ``train`` resumes from
  its own ``last.keras`` / ``state.json`` where an interrupted run left them.

With ``jobs > 1`` every run is a fresh ``spawn`` process; where GPUs are visible each process
sees one (``CUDA_VISIBLE_DEVICES``, round robin), otherwise each gets
``cores // jobs`` intra-op threads (``landslide_tf.training.distribute.configure_threads``).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from landslide_tf.experiments.placement import Slot, plan_slots
from landslide_tf.experiments.runs import (
    ERROR_FILE,
    RECORD_FILE,
    RunResult,
    RunSpec,
    read_test_metrics,
    read_val_miou,
)
from landslide_tf.files import atomic_write_text
from landslide_tf.metrics.thresholds import read_threshold
from landslide_tf.training.config import (
    TrainConfig,
    config_differences,
    epochs_fixed_by,
    scoring_differences,
)

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_matches(requested: dict[str, Any], saved: dict[str, Any]) -> bool:
    """Whether a run dir's ``config.json`` holds the same run as the requested config.

    Both sides are normalized through ``TrainConfig`` (unknown keys dropped, ``loss``
    resolved); loss arguments ``train`` filled in itself (``auto_loss_kwargs``, e.g. the WCE
    class weights) and the fields in ``RESUME_FREE_FIELDS`` are not compared.
    """
    diff = config_differences(saved, requested)
    if diff:
        logger.info("config differs on %s", ", ".join(diff))
    return not diff


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _move_aside(run_dir: Path) -> Path:
    k = 1
    while (target := run_dir.with_name(f"{run_dir.name}.stale-{k}")).exists():
        k += 1
    run_dir.rename(target)
    return target


def prepare_run(spec: RunSpec) -> RunResult | None:
    """Return the cached result when the run already finished with this config.

    Otherwise clear what would get in the way and return ``None`` (the run is to be trained):
    a folder holding another config (or more epochs than asked for, or a schedule laid out
    over another number of epochs: ``epochs_fixed_by``) is moved aside to
    ``<name>.stale-<k>``; the ``error.txt`` of an earlier failure is removed. An interrupted
    run's checkpoints stay, so ``train`` resumes it; a finished run asked with other scoring
    options (``SCORING_FIELDS``) is left to ``train``, which scores it again.
    """
    run_dir = spec.run_dir
    saved = _read_json(run_dir / "config.json")
    if saved is None:
        (run_dir / ERROR_FILE).unlink(missing_ok=True)
        return None
    state = _read_json(run_dir / "state.json") or {}
    epochs_done = int(state.get("epochs_done", 0))
    epochs = int(spec.config["epochs"])
    planned = TrainConfig.from_dict(saved)
    # a schedule laid out over other epochs cannot go on (train refuses it): start afresh
    refit = bool(epochs_done and planned.epochs != epochs and epochs_fixed_by(planned))
    if not config_matches(spec.config, saved) or epochs_done > epochs or refit:
        moved = _move_aside(run_dir)
        logger.warning("%s: the folder holds another config; moved to %s", spec.name, moved)
        return None
    rescore = scoring_differences(saved, spec.config)  # train scores it again, fits nothing
    if epochs_done == epochs and (run_dir / "metrics.json").is_file() and not rescore:
        rescore_at_tuned_threshold(run_dir)
        record = _read_json(run_dir / RECORD_FILE) or {}
        return RunResult.from_spec(
            spec,
            "cached",
            metrics=read_test_metrics(run_dir),
            val_miou=read_val_miou(run_dir),
            wall_s=record.get("wall_s"),
        )
    (run_dir / ERROR_FILE).unlink(missing_ok=True)
    return None


def rescore_at_tuned_threshold(run_dir: Path) -> bool:
    """Score the test split again when the run's tuned threshold is not the one its
    ``metrics.json`` used (``evaluate --tune-threshold`` ran after training).

    ``evaluate_run`` at the run's threshold (the tuned one) rewrites ``metrics.json``; a
    failure is logged and the old metrics kept. Returns whether it re-scored.
    """
    tuned = read_threshold(run_dir)
    if tuned is None:
        return False
    used = read_test_metrics(run_dir).get("threshold")
    if used is not None and abs(used - tuned) < 1e-9:
        return False
    from landslide_tf.errors import UserError
    from landslide_tf.evaluation.evaluate import evaluate_run

    try:
        evaluate_run(run_dir, split="test")
    except (UserError, OSError) as exc:
        logger.warning("%s: kept the metrics at threshold %s: %s", run_dir.name, used, exc)
        return False
    logger.info("%s: test metrics re-scored at its tuned threshold %.4f", run_dir.name, tuned)
    return True


def _write_record(spec: RunSpec, status: str, wall_s: float, **extra: Any) -> None:
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "status": status,
        "wall_s": round(wall_s, 3),
        "finished": _now(),
        "pid": os.getpid(),
        "config": spec.config,
        **extra,
    }
    atomic_write_text(spec.run_dir / RECORD_FILE, json.dumps(record, indent=2) + "\n")


def _failed(spec: RunSpec, wall_s: float, error: str, details: str) -> RunResult:
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(spec.run_dir / ERROR_FILE, details)
    _write_record(spec, "failed", wall_s, error=error)
    return RunResult.from_spec(spec, "failed", wall_s=wall_s, error=error)


def execute_run(spec: RunSpec, verbose: int = 0) -> RunResult:
    """Train one run in this process; record its wall time, or its error (never raises).

    Args:
        spec: the run.
        verbose: Keras ``fit`` verbosity (0 silent, 2 one line per epoch).

    ``KeyboardInterrupt`` is not caught: interrupting stops the study, and the run resumes
    on the next invocation.
    """
    import keras

    from landslide_tf.experiments.run import train

    earlier = _read_json(spec.run_dir / RECORD_FILE) or {}  # before train replaces anything
    start = time.perf_counter()
    try:
        about = train(TrainConfig.from_dict(spec.config), verbose=verbose)
        metrics = read_test_metrics(spec.run_dir)
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the study
        wall = time.perf_counter() - start
        first = (str(exc).strip().splitlines() or [""])[0]
        return _failed(spec, wall, f"{type(exc).__name__}: {first}", traceback.format_exc())
    finally:
        keras.backend.clear_session()
    wall = time.perf_counter() - start
    status = "trained"
    if not about.get("epochs_trained") and about.get("resumed_from"):  # only scored here
        status = "rescored"
        if earlier.get("status") in ("trained", "rescored") and earlier.get("wall_s"):
            wall = float(earlier["wall_s"])  # the training's wall time, not the scoring's
    _write_record(spec, status, wall)
    return RunResult.from_spec(
        spec, status, metrics=metrics, val_miou=read_val_miou(spec.run_dir), wall_s=wall
    )


def visible_gpus() -> list[str]:
    """GPU ids visible to child processes, found without importing TensorFlow.

    ``CUDA_VISIBLE_DEVICES`` when set, else the GPUs ``nvidia-smi -L`` lists, else none.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]


def _worker(spec: RunSpec, slot: Slot, jobs: int, log_level: int, verbose: int) -> None:
    """Body of one spawned training process."""
    slot.apply()  # CUDA_VISIBLE_DEVICES (+ memory growth on a shared GPU), before TF loads
    gpu = slot.gpu
    logging.basicConfig(level=log_level, format=f"[{spec.name}] %(levelname)s %(message)s")
    if gpu is None:
        from landslide_tf.training.distribute import configure_threads

        configure_threads(jobs)
    execute_run(spec, verbose)


def _result_from_record(spec: RunSpec, exitcode: int | None, wall: float, pid: int) -> RunResult:
    """The result of a training process from the ``experiment.json`` it wrote.

    Args:
        spec: the run the process trained.
        exitcode: the process's exit code (negative: killed by that signal).
        wall: seconds the process ran, used where it wrote no record.
        pid: the process id; a record written by another process (an earlier invocation's,
            kept in the run folder) is not this run's result.

    Returns:
        ``trained``, ``rescored`` or ``failed`` as the process recorded, else ``failed``
        naming the exit code.
    """
    record = _read_json(spec.run_dir / RECORD_FILE) or {}
    if record.get("pid") != pid:
        record = {}  # stale: left by an earlier run, not by this process
    if (
        record.get("status") in ("trained", "rescored")
        and (spec.run_dir / "metrics.json").is_file()
    ):
        return RunResult.from_spec(
            spec,
            record["status"],
            metrics=read_test_metrics(spec.run_dir),
            val_miou=read_val_miou(spec.run_dir),
            wall_s=record.get("wall_s", wall),
        )
    if record.get("status") == "failed":
        return RunResult.from_spec(
            spec, "failed", wall_s=record.get("wall_s", wall), error=record.get("error")
        )
    error = f"training process exited with code {exitcode} (killed or crashed)"
    return _failed(spec, wall, error, error + "\n")


def run_all(
    specs: Sequence[RunSpec],
    *,
    jobs: int = 1,
    progress: Progress = logger.info,
    counter: tuple[int, int] = (0, 0),
    stage: str = "",
    verbose: int = 0,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run (or skip) every spec; return one result per spec, in order.

    Args:
        specs: the runs.
        jobs: runs at once; ``1`` trains in this process, more spawn one process per run.
        progress: called with one line per run (``[k/total] name: ...``).
        counter: ``(runs already reported, total runs of the study)`` for the progress lines.
        stage: label put in the progress lines.
        verbose: Keras ``fit`` verbosity of each run.
        on_result: called with each result as soon as it is known (a cached run's at once,
            a trained or failed run's when it ends), so an interrupted stage keeps a record
            of the runs it finished.

    Returns:
        The results, in the order of ``specs``.
    """
    done, total = counter
    total = total or len(specs)
    results: dict[str, RunResult] = {}
    todo: list[RunSpec] = []
    for spec in specs:
        cached = prepare_run(spec)
        if cached is None:
            todo.append(spec)
        else:
            done += 1
            results[spec.name] = cached
            progress(f"[{done}/{total}] {stage}{spec.name}: {_describe(cached)}")
            if on_result is not None:
                on_result(cached)

    walls: list[float] = []  # wall seconds of the runs trained here, for the estimate

    def report(result: RunResult) -> None:
        nonlocal done
        done += 1
        results[result.name] = result
        progress(f"[{done}/{total}] {stage}{result.name}: {_describe(result)}")
        if on_result is not None:
            on_result(result)
        if result.status == "trained" and result.wall_s:
            walls.append(result.wall_s)
        left = len(todo) - sum(1 for s in todo if s.name in results)
        if walls and left:
            progress(f"      {_estimate(walls, left, jobs)}")

    if jobs <= 1:
        for spec in todo:
            progress(
                f"      {stage}{spec.name}: training ({spec.model}, {spec.loss}, seed {spec.seed})"
            )
            report(execute_run(spec, verbose))
    else:
        _run_parallel(todo, jobs, report, progress, stage, verbose)
    return [results[s.name] for s in specs]


def _run_parallel(
    todo: Sequence[RunSpec],
    jobs: int,
    report: Callable[[RunResult], None],
    progress: Progress,
    stage: str,
    verbose: int,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    gpus = visible_gpus()
    slots = plan_slots(jobs, gpus)
    if gpus and jobs > len(gpus):
        logger.info("%d jobs on %d GPU(s): runs share GPUs, with memory growth on", jobs, len(gpus))
    pending = list(todo)
    active: dict[Any, tuple[RunSpec, int, float]] = {}  # sentinel -> (spec, slot, start)
    level = logging.getLogger().getEffectiveLevel()
    try:
        while pending or active:
            free = [s for s in range(jobs) if s not in {v[1] for v in active.values()}]
            while pending and free:
                spec, slot = pending.pop(0), free.pop(0)
                proc = ctx.Process(
                    target=_worker, args=(spec, slots[slot], jobs, level, verbose), name=spec.name
                )
                proc.start()
                where = slots[slot].describe()
                progress(f"      {stage}{spec.name}: training in process {proc.pid} ({where})")
                active[proc] = (spec, slot, time.perf_counter())
            sentinels = {p.sentinel: p for p in active}
            for sentinel in multiprocessing.connection.wait(list(sentinels)):
                proc = sentinels[sentinel]
                proc.join()
                spec, _, start = active.pop(proc)
                wall = time.perf_counter() - start
                report(_result_from_record(spec, proc.exitcode, wall, proc.pid))
    finally:
        for proc in active:  # interrupted: stop the children we started
            proc.terminate()
            proc.join()


def _estimate(walls: Sequence[float], left: int, jobs: int) -> str:
    """``about 12 min left: 3 run(s) ...`` from the mean wall time of the runs trained so far."""
    seconds = sum(walls) / len(walls) * left / max(1, min(jobs, left))
    when = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
    return (
        f"about {when} left: {left} run(s) to train, at the mean wall time of the "
        f"{len(walls)} trained so far"
    )


def _describe(result: RunResult) -> str:
    if result.status == "failed":
        return f"FAILED after {result.wall_s or 0:.1f} s: {result.error}"
    miou = result.metrics.get("miou")
    text = {"cached": "done earlier (same config), ",
            "rescored": "trained earlier, scored again now; "}.get(result.status, "")  # fmt: skip
    if result.wall_s is not None:
        text += f"{result.wall_s:.1f} s, "
    text += f"test mIoU {miou:.3f}" if miou is not None else "no test mIoU"
    if result.threshold_source == "tuned":
        text += f" at the tuned threshold {result.metrics.get('threshold', 0):.3f}"
    if result.val_miou is not None:
        text += f", val mIoU {result.val_miou:.3f}"
    return text
