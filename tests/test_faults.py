"""Issue 15: bad input and faults end as one line + exit 2, or are repaired; nothing is lost.

Zip extraction, checkpoint atomicity (kill inside the save), flat and nodata DEMs, damaged
run directories, I/O errors at the CLI edge, validation before writing.
"""

import json
import math
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from landslide_tf.data import archive
from landslide_tf.errors import DataError


def call(main, argv: list[str]) -> int:
    """``main(argv)``, turning argparse's SystemExit into its exit code."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def one_error_line(capsys) -> str:
    """The single ``error: ...`` line a CLI printed on stderr."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    return errors[0]


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder).as_posix())
    return zip_path


# --- item 1: extraction never deletes or overwrites what it did not create ----------------


@pytest.fixture
def user_folder_beside_zip(synth_dir, tmp_path):
    zip_path = zip_folder(synth_dir, tmp_path / "X.zip")
    user = tmp_path / "X"
    user.mkdir()
    (user / "notes.txt").write_text("my corrected masks are here\n")
    return zip_path, user


def test_data_check_zip_leaves_a_user_folder_beside_it_untouched(user_folder_beside_zip, capsys):
    from landslide_tf.cli.data import main

    zip_path, user = user_folder_beside_zip
    assert call(main, ["check", str(zip_path)]) == 1  # reported as the dataset's problem
    out = capsys.readouterr().out
    assert f"cannot extract into {user}: it exists and was not extracted by landslide_tf" in out
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    assert (user / "notes.txt").read_text() == "my corrected masks are here\n"
    assert [p.name for p in zip_path.parent.iterdir() if p.name.startswith(".")] == []


def test_train_zip_leaves_a_user_folder_beside_it_untouched(user_folder_beside_zip, capsys):
    from landslide_tf.cli.train import main

    zip_path, user = user_folder_beside_zip
    run_dir = zip_path.parent / "run"
    argv = ["--data", str(zip_path), "--run-dir", str(run_dir), "--epochs", "1"]
    assert call(main, argv) == 2
    assert "not extracted by landslide_tf" in one_error_line(capsys)
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    assert not run_dir.exists()


def test_zip_extracts_into_a_new_folder_and_reuses_its_own(synth_dir, tmp_path):
    zip_path = zip_folder(synth_dir, tmp_path / "Y.zip")
    root = archive.open_dataset(zip_path)
    assert root == tmp_path / "Y" and (root / archive.EXTRACTED_MARKER).is_file()
    (root / "mine.txt").write_text("kept")
    assert archive.open_dataset(zip_path) == root  # marked as ours: reused, not re-extracted
    assert (root / "mine.txt").read_text() == "kept"


# --- item 10: zip bombs -------------------------------------------------------------------


def _bomb(tmp_path: Path, size: int = 4 << 20) -> Path:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("landslide/image/a.png", b"\0" * size)
    return path


def test_zip_over_the_declared_budget_is_refused_before_inflating(tmp_path, monkeypatch):
    path = _bomb(tmp_path)
    monkeypatch.setenv(archive.MAX_UNZIP_ENV, str(1 << 20))
    with pytest.raises(DataError, match="zip bomb.*LANDSLIDE_TF_MAX_UNZIP_BYTES"):
        archive.open_dataset(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]  # nothing left


def test_zip_lying_about_its_sizes_is_stopped_while_inflating(tmp_path):
    path = _bomb(tmp_path)
    data = bytearray(path.read_bytes())
    real = (4 << 20).to_bytes(4, "little")
    fake = (1000).to_bytes(4, "little")
    assert data.count(real) == 2  # local header + central directory
    path.write_bytes(bytes(data).replace(real, fake))
    out = tmp_path / "out"
    with pytest.raises(DataError, match="inflates beyond its declared 1,000 bytes|damaged"):
        archive.safe_extract(path, out, max_bytes=1 << 30)
    assert not out.exists()  # what it wrote was removed


def test_zip_stream_budget_counts_inflated_bytes(tmp_path):
    path = _bomb(tmp_path, size=3 << 20)
    out = tmp_path / "out"
    with pytest.raises(DataError, match="zip bomb"):
        archive.safe_extract(path, out, max_bytes=(3 << 20) - 1)
    assert not out.exists()


def test_default_budget_is_generous_but_bounded(tmp_path, monkeypatch):
    monkeypatch.delenv(archive.MAX_UNZIP_ENV, raising=False)
    small = _bomb(tmp_path, size=1000)
    assert archive.unzip_budget(small) == archive.MIN_UNZIP_BUDGET
    monkeypatch.setenv(archive.MAX_UNZIP_ENV, "lots")
    with pytest.raises(DataError, match="expected a number of bytes"):
        archive.unzip_budget(small)


# --- item 3: a kill inside the checkpoint save resumes exactly the committed epoch --------

ROOT = Path(__file__).resolve().parents[1]


def tiny_flags(data: Path, run_dir: Path, epochs: int) -> list[str]:
    return ["--model", "unet", "--data", str(data), "--run-dir", str(run_dir),
            "--epochs", str(epochs), "--image-size", "32", "--base-filters", "4",
            "--depth", "2", "--batch-size", "4", "--lr", "1e-3", "--verbose", "0"]  # fmt: skip


def steps_per_epoch(run_dir: Path, batch: int = 4) -> int:
    n = len((run_dir / "train.txt").read_text().split())
    return math.ceil(n / batch)


@pytest.mark.parametrize(
    "point, committed",
    [
        ("after-checkpoint:2", 1),  # the sweep's case: the new checkpoint, no commit yet
        pytest.param("after-best:1", 0, marks=pytest.mark.slow),  # epoch 1 always improves
        pytest.param("after-state:2", 2, marks=pytest.mark.slow),  # committed, not rolled
    ],
)
def test_kill_inside_the_checkpoint_save_resumes_exactly_the_committed_epoch(
    point, committed, synth_dir, tmp_path, monkeypatch
):
    from landslide_tf.cli.train import main
    from landslide_tf.training import runstate as cb

    run_dir, epochs = tmp_path / "run", 3
    env = {**os.environ, cb.FAULT_ENV: point, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "landslide_tf.train", *tiny_flags(synth_dir, run_dir, epochs)]
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (cb.read_state(run_dir) or {"epochs_done": 0})["epochs_done"] == committed

    monkeypatch.delenv(cb.FAULT_ENV, raising=False)
    assert call(main, tiny_flags(synth_dir, run_dir, epochs)) == 0
    state = cb.read_state(run_dir)
    assert state["epochs_done"] == epochs
    assert state["optimizer_iterations"] == epochs * steps_per_epoch(run_dir)
    assert [row["epoch"] for row in cb.read_history(run_dir / "history.csv")] == [1, 2, 3]
    names = sorted(p.name for p in run_dir.glob("*.keras")) + [
        p.name for p in run_dir.glob(".*.keras")
    ]
    assert names == ["best.keras", "epoch-0002.keras", "epoch-0003.keras", "last.keras"]


@pytest.fixture(scope="module")
def _two_epoch_master(synth_dir, tmp_path_factory):
    from landslide_tf.cli.train import main

    run_dir = tmp_path_factory.mktemp("two") / "run"
    assert call(main, tiny_flags(synth_dir, run_dir, 2)) == 0
    return run_dir


@pytest.fixture
def two_epoch_run(_two_epoch_master, tmp_path):
    """A copy of a finished 2-epoch run (the tests damage it), links kept as links."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(_two_epoch_master, run_dir)
    return run_dir


def test_damaged_checkpoint_falls_back_to_the_previous_one(two_epoch_run, synth_dir, caplog):
    from landslide_tf.cli.train import main
    from landslide_tf.training import runstate as cb

    run_dir = two_epoch_run
    (run_dir / "epoch-0002.keras").write_bytes(b"PK\x03\x04 truncated")
    assert call(main, tiny_flags(synth_dir, run_dir, 3)) == 0
    assert "resuming from epoch-0001.keras instead" in caplog.text
    state = cb.read_state(run_dir)
    assert state["optimizer_iterations"] == 3 * steps_per_epoch(run_dir)
    assert [row["epoch"] for row in cb.read_history(run_dir / "history.csv")] == [1, 2, 3]


def test_fallback_past_the_best_epoch_takes_the_restored_best(two_epoch_run, synth_dir, caplog):
    """Epoch 2 was the best (a value no retrained epoch reaches) and its checkpoint is
    damaged: after falling back to epoch 1, best.keras, best_value and best_epoch describe
    one epoch of the run's history, not the discarded epoch 2."""
    from landslide_tf.cli.train import main
    from landslide_tf.training import runstate as cb

    run_dir = two_epoch_run
    state = cb.read_state(run_dir)
    (run_dir / "state.json").write_text(json.dumps({**state, "best_epoch": 2, "best_value": 1.0}))
    lost = (run_dir / "best.keras").read_bytes()
    (run_dir / "epoch-0002.keras").write_bytes(b"PK\x03\x04 truncated")
    assert call(main, tiny_flags(synth_dir, run_dir, 3)) == 0
    state = cb.read_state(run_dir)
    rows = {row["epoch"]: row for row in cb.read_history(run_dir / "history.csv")}
    assert state["best_value"] < 1.0
    assert f"{state['best_value']:.6g}" == f"{rows[state['best_epoch']]['val_miou']:.6g}"
    assert (run_dir / "best.keras").read_bytes() != lost
    assert "best.keras held epoch 2, discarded by the fallback" in caplog.text


def test_no_loadable_checkpoint_says_force_and_deletes_nothing(two_epoch_run, synth_dir, capsys):
    from landslide_tf.cli.train import main

    run_dir = two_epoch_run
    for name in ("epoch-0001.keras", "epoch-0002.keras"):
        (run_dir / name).write_bytes(b"garbage")
    before = sorted(p.name for p in run_dir.iterdir())
    assert call(main, tiny_flags(synth_dir, run_dir, 3)) == 2
    line = one_error_line(capsys)
    assert "epoch-0002.keras is damaged" in line and "--force" in line
    assert sorted(p.name for p in run_dir.iterdir()) == before


# --- item 2: a flat DEM stays flat through resize and min-max ---------------------------


@pytest.mark.parametrize("value", [100.0, 65535.0, -37.5, 0.0, 8848.0])
@pytest.mark.parametrize("shape, size", [((100, 90), 64), ((64, 64), 128), ((37, 53), (48, 80))])
def test_flat_dem_normalises_to_zero_at_any_size(value, shape, size):
    from keras import ops

    from landslide_tf.data.preprocess import preprocess
    from landslide_tf.data.spec import bijie_spec

    image = np.full((*shape, 3), 120, np.uint8)
    dem = np.full(shape, value, np.float32)
    spec = bijie_spec(size if isinstance(size, int) else size[0])
    x = ops.convert_to_numpy(preprocess(image, dem, spec))
    assert np.all(x[..., 3] == 0.0), (x[..., 3].min(), x[..., 3].max())


def test_a_real_relief_is_still_stretched_to_0_1():
    from keras import ops

    from landslide_tf.data.preprocess import minmax, resize

    dem = 1000.0 + np.linspace(0, 0.5, 64 * 64, dtype=np.float32).reshape(64, 64)  # 50 cm
    out = ops.convert_to_numpy(minmax(resize(dem[..., None], 32)[..., 0]))
    assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)


# --- items 9, 11: everything validated before anything is written -----------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--loss", "focal", "--loss-kwargs", "gamma=-3"], "bad --loss-kwargs for focal"),
        (["--loss", "focal", "--loss-kwargs", "beta=2"], "bad --loss-kwargs for focal"),
        (["--seed", "-1"], "seed must be in [0, 2**32 - 1], got -1"),
        (["--seed", str(2**40)], f"got {2**40}"),
    ],
)
def test_rejected_options_leave_no_run_directory(flags, message, synth_dir, tmp_path, capsys):
    from landslide_tf.cli.train import main

    run_dir = tmp_path / "run"
    assert call(main, tiny_flags(synth_dir, run_dir, 1) + flags) == 2
    assert message in one_error_line(capsys)
    assert not run_dir.exists()  # so the corrected command is not blocked by a config.json


def test_wce_on_all_background_masks_is_one_line(synth_dir, tmp_path, capsys):
    import shutil

    import cv2

    from landslide_tf.cli.train import main

    data = tmp_path / "empty"
    shutil.copytree(synth_dir / "landslide", data / "landslide")
    for mask in (data / "landslide" / "mask").glob("*.png"):
        cv2.imwrite(str(mask), np.zeros_like(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)))
    run_dir = tmp_path / "run"
    assert call(main, tiny_flags(data, run_dir, 1) + ["--loss", "wce"]) == 2
    line = one_error_line(capsys)
    assert "--loss wce: the training split has 0 % landslide pixels" in line
    assert not run_dir.exists()


# --- item 8: I/O problems are reported with their path ----------------------------------


def test_run_dir_under_a_regular_file_names_the_path(synth_dir, tmp_path, capsys):
    from landslide_tf.cli.train import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert call(main, tiny_flags(synth_dir, blocker / "run", 1)) == 2
    line = one_error_line(capsys)
    assert str(blocker) in line and "Not a directory" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_run_dir_in_a_read_only_folder_names_the_path(synth_dir, tmp_path, capsys):
    from landslide_tf.cli.train import main

    parent = tmp_path / "ro"
    parent.mkdir(mode=0o555)
    try:
        assert call(main, tiny_flags(synth_dir, parent / "run", 1)) == 2
        line = one_error_line(capsys)
        assert str(parent / "run") in line and "Permission denied" in line
    finally:
        parent.chmod(0o755)


def test_run_cli_turns_a_missed_damaged_file_and_ctrl_c_into_one_line(capsys):
    from landslide_tf.cli.common import run_cli

    def damaged() -> int:
        return json.loads("{")

    assert run_cli(damaged) == 2
    assert "a damaged file (JSONDecodeError" in one_error_line(capsys)

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_cli(interrupted, interrupted="interrupted: rerun") == 130
    assert capsys.readouterr().err == "interrupted: rerun\n"


def test_run_cli_turns_sigterm_into_the_interrupted_line_and_restores_the_handler(capsys):
    import time

    from landslide_tf.cli.common import run_cli

    before = signal.getsignal(signal.SIGTERM)
    cleaned = []

    def killed() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
            return 0
        finally:
            cleaned.append(True)  # what runs after Ctrl-C runs after SIGTERM

    assert run_cli(killed, interrupted="interrupted: rerun") == 143
    assert capsys.readouterr().err == "interrupted: rerun (terminated by SIGTERM)\n"
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before


def test_run_cli_turns_os_errors_into_one_line_with_the_path(capsys):
    from landslide_tf.cli.common import run_cli

    def body() -> int:
        raise PermissionError(13, "Permission denied", "/some/where/metrics.json")

    assert run_cli(body) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: /some/where/metrics.json: Permission denied")


# --- item 7: damaged run directories -----------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(synth_dir, tmp_path_factory):
    """One 1-epoch tiny run; tests damage copies of it."""
    from landslide_tf.cli.train import main

    run_dir = tmp_path_factory.mktemp("faults") / "run"
    assert call(main, tiny_flags(synth_dir, run_dir, 1)) == 0
    return run_dir


@pytest.fixture
def run_copy(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def _tool_argv(tool: str, run_dir: Path, synth_dir: Path, tmp_path: Path) -> list[str]:
    tile = sorted((synth_dir / "landslide" / "image").glob("*.png"))[0]
    dem = synth_dir / "landslide" / "dem" / tile.name
    return {
        "evaluate": [str(run_dir)],
        "predict": [str(run_dir), "--image", str(tile), "--dem", str(dem),
                    "--out", str(tmp_path / "mask.png")],
        "export": [str(run_dir), "--out", str(tmp_path / "saved")],
    }[tool]  # fmt: skip


def _tool_main(tool: str):
    import importlib

    return importlib.import_module(f"landslide_tf.{tool}").main


@pytest.mark.parametrize("tool", ["evaluate", "predict", "export"])
@pytest.mark.parametrize(
    "damage, expected",
    [
        ("", "config.json is damaged: not valid JSON"),
        ('{"model": "unet", "image_si', "config.json is damaged: not valid JSON"),
        ("wrong-type", "config.json is damaged: image_size is 'big', expected int"),
    ],
)
def test_damaged_config_json_is_one_line(
    tool, damage, expected, run_copy, synth_dir, tmp_path, capsys
):
    path = run_copy / "config.json"
    if damage == "wrong-type":
        values = json.loads(path.read_text())
        path.write_text(json.dumps({**values, "image_size": "big"}))
    else:
        path.write_text(damage)
    assert call(_tool_main(tool), _tool_argv(tool, run_copy, synth_dir, tmp_path)) == 2
    line = one_error_line(capsys)
    assert str(path) in line and expected in line and "--force" in line


@pytest.mark.parametrize("tool", ["evaluate", "predict", "export"])
@pytest.mark.parametrize("cut", [0, 100, 0.5])
def test_damaged_best_keras_is_one_line(tool, cut, run_copy, synth_dir, tmp_path, capsys):
    path = run_copy / "best.keras"
    data = path.read_bytes()
    path.write_bytes(data[: int(cut * len(data)) if isinstance(cut, float) else cut])
    assert call(_tool_main(tool), _tool_argv(tool, run_copy, synth_dir, tmp_path)) == 2
    line = one_error_line(capsys)
    assert f"{path} is damaged" in line and "not found" not in line


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("state.json", '{"epochs_done": 1, "chec', "state.json is damaged"),
        ("state.json", '{"epochs_done": "one"}', "state.json is damaged (epochs_done='one')"),
        ("history.csv", "epoch,loss\n1,0.5\nfoo,bar\n", "history.csv is damaged"),
    ],
)
def test_damaged_resume_files_are_one_line(name, content, expected, run_copy, synth_dir, capsys):
    from landslide_tf.cli.train import main

    (run_copy / name).write_text(content)
    assert call(main, tiny_flags(synth_dir, run_copy, 2)) == 2
    line = one_error_line(capsys)
    assert expected in line and "--force" in line


def test_evaluate_in_a_read_only_run_dir_prints_the_metrics(run_copy, monkeypatch, capsys):
    from landslide_tf.cli.evaluate import main as evaluate_main
    from landslide_tf.evaluation import evaluate

    def refuse(path, values):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(evaluate, "atomic_write_json", refuse)
    before = (run_copy / "metrics.json").read_text()
    assert call(evaluate_main, [str(run_copy)]) == 2
    captured = capsys.readouterr()
    assert "mIoU" in captured.out  # the metrics are shown
    line = [x for x in captured.err.splitlines() if x.startswith("error: ")]
    assert line == [
        f"error: the metrics above could not be saved: {run_copy / 'metrics.json'}: "
        "Permission denied (check its permissions or choose another location)"
    ]
    assert (run_copy / "metrics.json").read_text() == before


def test_undefined_auc_is_written_as_null_with_a_reason(run_copy, monkeypatch):
    from landslide_tf.evaluation import evaluate
    from landslide_tf.metrics.segmentation import SegmentationMetrics

    def all_background(model, samples, batch_size, **options):
        stats = SegmentationMetrics()
        stats.update(np.zeros((1, 8, 8, 1)), np.full((1, 8, 8, 1), 0.2, np.float32))
        return stats, 0  # (metrics, tiles left out for having no valid DEM cell)

    monkeypatch.setattr(evaluate, "accumulate", all_background)
    result = evaluate.evaluate_run(run_copy)
    written = json.loads((run_copy / "metrics.json").read_text())
    assert written["auc"] is None and result["auc"] is None
    assert "no landslide pixels" in written["auc_note"]
    assert "NaN" not in (run_copy / "metrics.json").read_text()


# --- items 4, 5, 9: datasets: name clashes, nodata spikes, tiny tiles -------------------


@pytest.fixture
def small_copy(synth_dir, tmp_path):
    """Three landslide tiles of the synthetic set, copied so tests can damage them."""
    import shutil

    out = tmp_path / "small"
    stems = sorted(p.stem for p in (synth_dir / "landslide" / "image").glob("*.png"))[:3]
    for sub in ("image", "dem", "mask"):
        (out / "landslide" / sub).mkdir(parents=True)
        for stem in stems:
            shutil.copy(synth_dir / "landslide" / sub / f"{stem}.png", out / "landslide" / sub)
    return out, stems


def test_names_differing_only_in_extension_case_are_a_problem(small_copy):
    import shutil

    from landslide_tf.data import find_samples
    from landslide_tf.data.check import check_dataset

    root, stems = small_copy
    image = root / "landslide" / "image" / f"{stems[0]}.png"
    shutil.copy(image, image.with_suffix(".PNG"))
    report = check_dataset(root)
    assert not report.ok
    assert any("extension differs only in case" in p for p in report.problems)
    with pytest.raises(DataError, match="extension differs only in case"):
        find_samples(root)


def test_check_warns_on_a_nodata_spike_at_the_16_bit_extreme(small_copy):
    import cv2

    from landslide_tf.data.check import check_dataset

    root, stems = small_copy
    dem = np.linspace(1200, 1800, 64 * 64).reshape(64, 64).astype(np.uint16)
    dem[:16, :16] = 65535  # a nodata block
    cv2.imwrite(str(root / "landslide" / "dem" / f"{stems[0]}.png"), dem)
    report = check_dataset(root)
    spikes = [w for w in report.warnings if "likely nodata" in w]
    assert len(spikes) == 1 and "--dem-nodata 65535" in spikes[0] and stems[0] in spikes[0]


def test_check_does_not_flag_an_ordinary_8_bit_dem(synth_dir):
    from landslide_tf.data.check import check_dataset

    assert not [w for w in check_dataset(synth_dir).warnings if "likely nodata" in w]


def test_dem_nodata_fills_like_nan_through_the_loader():
    from keras import ops

    from landslide_tf.data.preprocess import preprocess
    from landslide_tf.data.spec import bijie_spec

    def preprocess_inputs(image, dem, size, nodata=None):
        return ops.convert_to_numpy(preprocess(image, dem, bijie_spec(size, nodata=nodata)))

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    dem = rng.uniform(1200, 1800, (40, 40)).astype(np.float32)
    holed, nan = dem.copy(), dem.copy()
    holed[:10, :10], nan[:10, :10] = 65535, np.nan
    with_nodata = preprocess_inputs(image, holed, 32, nodata=65535.0)
    np.testing.assert_allclose(with_nodata, preprocess_inputs(image, nan, 32))
    squashed = preprocess_inputs(image, holed, 32)[..., 3]
    assert squashed[16:, 16:].max() < 0.05  # what happens without the option


def test_train_stores_dem_nodata_and_evaluate_accepts_it(trained_run, synth_dir, tmp_path):
    from landslide_tf.cli.train_args import build_parser, config_from_args
    from landslide_tf.evaluation.evaluate import evaluate_run
    from landslide_tf.inference.settings import InferenceSettings

    args = build_parser().parse_args(["--dem-nodata", "65535"])
    assert config_from_args(args).dem_nodata == 65535.0
    config = json.loads((trained_run / "config.json").read_text())
    assert config["dem_nodata"] is None  # stored (default: none)
    assert InferenceSettings.from_dict({**config, "dem_nodata": 7.0}).nodata == 7.0
    result = evaluate_run(trained_run, split="val", dem_nodata=255.0)
    assert 0.0 <= result["miou"] <= 1.0


def test_tiles_below_the_minimum_size_are_refused_by_check_and_loader(small_copy):
    import cv2

    from landslide_tf.data import bijie_spec, find_samples
    from landslide_tf.data.check import check_dataset
    from landslide_tf.data.pipeline import load_tile

    root, stems = small_copy
    for sub in ("image", "dem", "mask"):
        path = root / "landslide" / sub / f"{stems[0]}.png"
        tile = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(path), tile[:, :1])
    report = check_dataset(root)
    assert any("tiles must be at least 8 px a side" in p for p in report.problems)
    sample = next(s for s in find_samples(root) if s.stem == stems[0])
    with pytest.raises(DataError, match="tiles must be at least 8 px a side"):
        load_tile(sample, bijie_spec(32))


# --- items 6, 8, 9: predict and export outputs, thresholds, the SavedModel's own checks --


def _tile_argv(run_dir: Path, synth_dir: Path, out: str, *extra: str) -> list[str]:
    tile = sorted((synth_dir / "landslide" / "image").glob("*.png"))[0]
    dem = synth_dir / "landslide" / "dem" / tile.name
    return [str(run_dir), "--image", str(tile), "--dem", str(dem), "--out", out, *extra]


@pytest.mark.parametrize(
    "out, extra, expected",
    [
        ("mask", (), "has no extension; expected .png"),
        ("mask.jpeg", (), "ends in '.jpeg'; expected .png"),
        ("FOLDER", (), "is a folder"),
        ("mask.png", ("--threshold", "5"), "--threshold must be in [0, 1], got 5.0"),
        ("mask.png", ("--threshold", "-0.1"), "--threshold must be in [0, 1], got -0.1"),
        ("mask.png", ("--threshold", "nan"), "--threshold must be in [0, 1], got nan"),
        ("mask.png", ("--probability", "p.txt"), "--probability"),
    ],
)
def test_predict_bad_outputs_and_thresholds_are_one_line(
    out, extra, expected, trained_run, synth_dir, tmp_path, capsys
):
    from landslide_tf.cli.predict import main

    target = tmp_path if out == "FOLDER" else tmp_path / out
    argv = _tile_argv(trained_run, synth_dir, str(target), *extra)
    assert call(main, argv) == 2
    assert expected in one_error_line(capsys)


def test_export_out_that_is_a_file_or_a_user_folder_is_refused(trained_run, tmp_path, capsys):
    from landslide_tf.cli.export import main

    existing = tmp_path / "model"
    existing.write_text("mine")
    assert call(main, [str(trained_run), "--out", str(existing)]) == 2
    assert "is an existing file" in one_error_line(capsys)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    argv = [str(trained_run), "--out", str(folder), "--overwrite"]
    assert call(main, argv) == 2
    assert "not a SavedModel" in one_error_line(capsys)
    assert (folder / "keep.txt").read_text() == "mine" and existing.read_text() == "mine"


def test_export_out_under_a_file_names_the_path(trained_run, tmp_path, capsys):
    from landslide_tf.cli.export import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert call(main, [str(trained_run), "--out", str(blocker / "saved")]) == 2
    line = one_error_line(capsys)
    assert f"{blocker}: File exists (a file is in the way where a folder is needed" in line


@pytest.fixture(scope="module")
def saved_model(trained_run, tmp_path_factory):
    import tensorflow as tf

    from landslide_tf.inference.export import export_run

    out = export_run(trained_run, tmp_path_factory.mktemp("export") / "saved")
    return tf.saved_model.load(str(out)).signatures["serving_default"]


def test_saved_model_flat_dems_at_any_level_give_the_same_probabilities(saved_model):
    image = np.random.default_rng(0).integers(0, 255, (1, 100, 90, 3), dtype=np.uint8)
    probs = [
        saved_model(image=image, dem=np.full((1, 100, 90), v, np.float32))["probability"]
        for v in (100.0, 2500.0, 65535.0)
    ]
    for prob in probs[1:]:
        np.testing.assert_allclose(prob.numpy(), probs[0].numpy(), atol=1e-6)


def test_saved_model_checks_aspect_ratio_and_empty_batches_in_graph(saved_model):
    import tensorflow as tf

    image = np.zeros((1, 100, 90, 3), np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="different aspect ratios"):
        saved_model(image=image, dem=np.zeros((1, 10, 900), np.float32))
    saved_model(image=image, dem=np.zeros((1, 50, 45), np.float32))  # coarser, same extent
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
        saved_model(image=image[:0], dem=np.zeros((0, 100, 90), np.float32))


def test_predictor_refuses_an_empty_batch(trained_run):
    from landslide_tf.inference.predictor import Predictor

    predictor = Predictor.load(trained_run)
    with pytest.raises(DataError, match="empty batch"):
        predictor.predict_batch(np.zeros((0, 32, 32, 3), np.uint8), np.zeros((0, 32, 32)))
