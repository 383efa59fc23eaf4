"""Tests for ``python -m landslide_tf.data synth|check``."""

import shutil
import subprocess
import sys

import pytest

from landslide_tf.cli.data import main


def test_synth_then_check(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["synth", "--out", str(out), "--n", "8", "--seed", "1", "--max-size", "100"]) == 0
    assert "wrote 8 landslide and 2 non-landslide tiles" in capsys.readouterr().out
    assert main(["check", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "usable tiles: 8 landslide" in printed and "result: OK" in printed


def test_check_refuses_a_split_train_would_refuse(tmp_path, capsys):
    """Three tiles split 2/0/1: train stops on the empty val split, so check says so."""
    out = tmp_path / "syn"
    assert main(["synth", "--out", str(out), "--n", "3", "--max-size", "100"]) == 0
    assert main(["check", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "the val split is empty (train 2, val 0, test 1): train stops" in printed
    assert "result: NOT USABLE" in printed


@pytest.mark.parametrize(
    "argv, message",
    [(["synth", "--out", "OUT", "--seed", "-1"], "a seed must be in [0, 2**32 - 1]"),
     (["check", "OUT", "--seed", "-1"], "a seed must be in [0, 2**32 - 1]"),
     (["check", "OUT", "--negatives", "foo"], "negatives='foo'; expected 'off', 'on'"),
     (["chip", "--image", "x.tif", "--mask", "m.tif", "--out", "OUT", "--seed", "x"],
      "expected an integer seed")],
)  # fmt: skip
def test_bad_seeds_and_negatives_are_usage_errors(tmp_path, capsys, argv, message):
    """Exit 2 with one line, before anything is read or written (not numpy's traceback)."""
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_check_groups_repeated_warnings_by_kind():
    from landslide_tf.data.check import grouped_warnings

    warnings = [f"/d/image/t{i}.png: RGBA image, alpha channel dropped" for i in range(30)]
    warnings += ["/d/mask/t7.png: mask has no landslide pixel", "DEMs mix 8-bit and 16-bit"]
    assert grouped_warnings(warnings) == [
        "30 files: RGBA image, alpha channel dropped (e.g. /d/image/t0.png)",
        "/d/mask/t7.png: mask has no landslide pixel",
        "DEMs mix 8-bit and 16-bit",
    ]


def test_check_real_sample_rgb(bijie_sample, capsys):
    assert main(["check", str(bijie_sample), "--modalities", "rgb"]) == 0
    assert "usable tiles: 20 landslide, 0 non-landslide" in capsys.readouterr().out


def test_synth_bad_arguments(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--n", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_check_corrupt_png_in_process(synth_dir, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(synth_dir, root)
    (root / "non-landslide/dem/neg0001.png").write_bytes(b"")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"  - {root}/non-landslide/dem/neg0001.png: empty file; expected a PNG image" in out
    assert "usable tiles: 24 landslide, 5 non-landslide" in out


def test_check_corrupt_png_subprocess(synth_dir, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(synth_dir, root)
    (root / "landslide/image/syn0005.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    result = subprocess.run(
        [sys.executable, "-m", "landslide_tf.data", "check", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert problems == [
        f"  - {root}/landslide/image/syn0005.png: corrupt PNG (truncated, no IEND chunk); expected a valid PNG image"
    ]
    assert "result: NOT USABLE" in result.stdout


def test_check_missing_dir(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nothing")]) == 1
    assert "no such file or folder" in capsys.readouterr().out


_RUN_AS_COMMAND = """
import runpy, sys
sys.argv = ["-m", *sys.argv[1:]]
try:
    runpy.run_module("landslide_tf.data", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
print("tensorflow loaded:", "tensorflow" in sys.modules, "keras loaded:", "keras" in sys.modules)
sys.exit(code)
"""


def test_check_and_synth_do_not_import_tensorflow(tmp_path):
    out = tmp_path / "syn"
    for args in (
        ["synth", "--out", str(out), "--n", "6", "--min-size", "32", "--max-size", "64"],
        ["check", str(out)],
    ):
        result = subprocess.run(
            [sys.executable, "-c", _RUN_AS_COMMAND, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "tensorflow loaded: False keras loaded: False" in result.stdout
