"""Running a study end to end: shared split, three stages, then the outputs (``report``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError
from landslide_tf.experiments import tables
from landslide_tf.experiments.reference import loss_label, model_label
from landslide_tf.experiments.report import (
    StudyOutcome,
    write_figures,
    write_readme,
    write_runs_csv,
    write_tables,
)
from landslide_tf.experiments.runner import Progress, run_all
from landslide_tf.experiments.runs import RunResult, RunSpec, run_name
from landslide_tf.experiments.study import Study
from landslide_tf.files import atomic_write_json, atomic_write_text
from landslide_tf.training.config import PAPER_BEST_LOSS, TrainConfig
from landslide_tf.training.encoder_phases import apply_encoder_defaults

logger = logging.getLogger(__name__)

#: Append-only log of every run outcome of every invocation (``OUT/runs.log.jsonl``).
RUN_LOG = "runs.log.jsonl"
#: The options the shared split was made with (``OUT/split/plan.json``).
SPLIT_PLAN = "plan.json"


def make_spec(
    study: Study, model: str, loss: str, seed: int, stage: int, data: Path, out: Path
) -> RunSpec:
    """The ``RunSpec`` of one run: study training settings + model, loss, seed, paths."""
    values = dict(study.train)
    values.update(
        model=model,
        loss=loss,
        seed=seed,
        loss_kwargs=dict(study.loss_kwargs.get(loss, {})),
        data=str(data),
        split_dir=str(out / "split"),
        run_dir=str(out / "runs" / run_name(model, loss, seed)),
    )
    apply_encoder_defaults(values, depth_given="depth" in study.train)  # as train does
    return RunSpec(model, loss, seed, stage, TrainConfig.from_dict(values).to_dict())


def split_plan(study: Study) -> dict[str, Any]:
    """The options that decide a study's shared split (what ``OUT/split/plan.json`` holds)."""
    return {
        "seed": study.split_seed,
        "fractions": list(study.split_fractions),
        "modalities": study.train.get("modalities", "rgb+dem"),
        "negatives": study.train.get("negatives", "off"),
        "data_format": study.train.get("data_format"),
    }


def check_split_plan(study: Study, out: Path) -> bool:
    """Whether ``OUT/split`` holds lists to reuse; refuse lists of another split.

    Lists made by a study with other split options (``plan.json``) would silently stand for
    the split this study asks for; and a new split beside runs already in ``OUT/runs`` would
    mix runs scored on two test splits in one table.

    Raises:
        UserError: ``OUT/split`` was made with other options, or it has no lists while
            ``OUT/runs`` holds runs (nothing is written).
    """
    from landslide_tf.data.split import given_split_files

    split_dir = out / "split"
    if given_split_files(split_dir) is not None:
        path = split_dir / SPLIT_PLAN
        if path.is_file():  # lists without plan.json: given by hand, or an older study
            try:
                made = json.loads(path.read_text())
            except ValueError as exc:  # OSError: the command line's one line naming the path
                raise UserError(
                    f"{path} is damaged ({exc}): delete it to reuse the lists"
                ) from None
            if not isinstance(made, dict):
                raise UserError(
                    f"{path} is damaged (not a JSON object): delete it to reuse the lists"
                )
            wanted = split_plan(study)
            differ = sorted(k for k in wanted if made.get(k) != wanted[k])
            if differ:
                shown = ", ".join(f"{k} {made.get(k)!r} (asked: {wanted[k]!r})" for k in differ)
                raise UserError(
                    f"{split_dir} was made with other split options: {shown}; use another "
                    "--out, or the options of that study"
                )
        return True
    trained = sorted((out / "runs").glob("*/config.json"))
    if trained:
        raise UserError(
            f"{out / 'runs'} holds runs ({trained[0].parent.name}, ...) but {split_dir} has no "
            "split lists: a new split would mix test splits in one table; use another --out"
        )
    return False


def prepare_split(study: Study, data: str | Path, out: Path) -> tuple[Path, dict[str, int]]:
    """Write (or reuse) the one split all runs share, in ``OUT/split/`` (with ``plan.json``,
    the options it was made with: a later study with other options is refused).

    Returns:
        ``(dataset root, split sizes)``.
    """
    from landslide_tf import data as ldata

    if not Path(data).exists():
        raise UserError(f"dataset {data} does not exist")
    root = ldata.open_dataset(data).resolve()
    study = resolve_study_data(study, root)  # the data format decides the split too
    reused = check_split_plan(study, out)
    split = multiband_split(study, root, out)  # issue 13: l4s / folder datasets
    if split is None:
        samples = ldata.find_samples(
            root,
            modalities=study.train.get("modalities", "rgb+dem"),
            negatives=study.train.get("negatives", "off"),
        )
        split = ldata.make_split(
            samples, seed=study.split_seed, out_dir=out / "split", fractions=study.split_fractions
        )
    sizes = {k: len(v) for k, v in split.items()}
    if min(sizes.values()) == 0:
        raise UserError(f"the split of {root} has an empty part {sizes}: need more tiles")
    if not reused:
        atomic_write_json(out / "split" / SPLIT_PLAN, split_plan(study))
    return root, sizes


def run_study(
    study: Study,
    data: str | Path | None,
    out: str | Path,
    *,
    jobs: int = 1,
    progress: Progress = logger.info,
    command: str | None = None,
    figures_n: int = 4,
    verbose: int = 0,
) -> StudyOutcome:
    """Run a study's protocol and write its tables, figures and README into ``out``.

    Stage 1 trains every base x loss (x seed); stage 2 picks each base's loss with the best
    mean mIoU on ``study.select_on``; stage 3 trains the attention models with the loss
    picked for ``study.attention_base``. Finished runs with the same config are skipped.

    Args:
        study: the study (see ``load_study``).
        data: dataset folder or zip (Bijie layout); ``None`` = the synthetic default dataset
            (generated on first use, like ``train``'s).
        out: output folder.
        jobs: runs trained at once (separate processes when more than one).
        progress: called with one line per run.
        command: the command line, for the README.
        figures_n: test tiles in figures 5 and 6.
        verbose: Keras ``fit`` verbosity of each run (0 silent, 2 one line per epoch).

    Returns:
        The ``StudyOutcome``.
    """
    start = time.perf_counter()
    started = datetime.now(timezone.utc)
    out = Path(out).resolve()
    root, sizes = prepare_split(study, study_data(data, progress), out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    # after the data and the split passed their checks: a refused call keeps the description
    # of the results already in OUT
    atomic_write_text(out / "study.json", json.dumps(study.to_dict(), indent=2) + "\n")
    study = resolve_study_data(study, root)  # issue 13: format + bands in every run's config
    progress(f"split: train {sizes['train']}, val {sizes['val']}, test {sizes['test']} tiles "
             f"({out / 'split'})")  # fmt: skip

    seeds = study.seed_list
    stage1 = [
        make_spec(study, base, loss, seed, 1, root, out)
        for base in study.bases
        for loss in study.losses
        for seed in seeds
    ]
    total = len(stage1) + len(study.attention_models) * len(seeds)

    def log(result: RunResult) -> None:  # each outcome as it comes, not at a stage's end
        _log_results(out, [result])

    results = run_all(stage1, jobs=jobs, progress=progress, counter=(0, total),
                      stage="stage 1 ", verbose=verbose, on_result=log)  # fmt: skip

    selected = tables.select_best_losses(results, study.bases, study.losses, study.select_on)
    for base, loss in selected.items():
        progress(f"stage 2: {model_label(base)} -> "
                 f"{loss_label(loss) if loss else 'none (all runs failed)'} "
                 f"(best mean mIoU on the {study.select_on} split)")  # fmt: skip
    attention_loss = selected.get(study.attention_base)
    note = f"selected for {model_label(study.attention_base)} in stage 2"
    if not study.attention_models:
        attention_loss, note = None, "this study has no stage 3"
    elif attention_loss is None:
        attention_loss = PAPER_BEST_LOSS.get(study.attention_base, "dice")
        note = (f"every {study.attention_base} run failed in stage 1: the paper's "
                f"{loss_label(attention_loss)} is used instead")  # fmt: skip
        logger.warning(note)

    stage3 = [
        make_spec(study, model, attention_loss, seed, 3, root, out)
        for model in study.attention_models
        for seed in seeds
    ]
    if stage3:
        more = run_all(stage3, jobs=jobs, progress=progress, counter=(len(stage1), total),
                       stage="stage 3 ", verbose=verbose, on_result=log)  # fmt: skip
        results += more

    outcome = StudyOutcome(
        study=study, out=out, results=results, selected=selected,
        attention_loss=attention_loss, attention_loss_note=note, split_sizes=sizes,
        figures={}, gradcam_energy={}, wall_s=0.0,
        synthetic=(root / "synthetic.json").is_file(),
    )  # fmt: skip
    write_tables(outcome)
    write_runs_csv(outcome)
    write_figures(outcome, n=figures_n)
    outcome.wall_s = time.perf_counter() - start
    write_readme(outcome, root, command, started)
    progress(f"done in {outcome.wall_s:.0f} s: {len(results) - len(outcome.failed)} of "
             f"{len(results)} runs finished; results in {out}")  # fmt: skip
    return outcome


def _log_results(out: Path, results: Sequence[RunResult]) -> None:
    with (out / RUN_LOG).open("a") as fh:
        for r in results:
            entry = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "run": r.name, "status": r.status, "wall_s": r.wall_s,
                     "miou": r.metrics.get("miou"), "error": r.error}  # fmt: skip
            fh.write(json.dumps(entry) + "\n")


def study_data(data: str | Path | None, progress: Callable[[str], None]) -> str | Path:
    """The dataset a study trains on: ``data``, or without it the synthetic default (said)."""
    if data is not None:
        return data
    from landslide_tf.data import ensure_default_dataset

    data = ensure_default_dataset()
    progress(f"no --data: using the synthetic dataset {data}")
    return data


def study_format(study: Any, root: Path) -> str:
    """The study's ``data_format`` setting, or the detected format of ``root``."""
    from landslide_tf.data.formats import check_format, detect_format

    name = study.train.get("data_format") or detect_format(root)
    check_format(name)
    return name


def multiband_split(study: Any, root: Path, out: Path) -> dict[str, list] | None:
    """The shared split of a multi-band dataset in ``OUT/split`` (None for Bijie)."""
    from landslide_tf.data.formats import FORMATS, find_format_samples, plan_splits

    name = study_format(study, root)
    if not FORMATS[name].multiband:
        return None
    samples = find_format_samples(name, root)
    return plan_splits(name, samples, study.split_seed, out / "split")


def resolve_study_data(study: Any, root: Path) -> Any:
    """The study with ``data_format`` and the resolved ``bands`` in its training settings."""
    from landslide_tf.data.formats import resolve_data_config

    config = resolve_data_config(TrainConfig.from_dict(dict(study.train)), root)
    values = {"data_format": config.data_format, "bands": config.bands}
    if config.data_format is None:  # bijie
        values["modalities"] = config.modalities
    return dataclasses.replace(study, train={**study.train, **values})
