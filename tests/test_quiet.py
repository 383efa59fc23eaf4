"""Tests for landslide_tf.console (TensorFlow start-up noise) and summarised reader notes."""

import logging
import os
import subprocess
import sys

import cv2
import numpy as np

from landslide_tf.data import readers


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    full_env.pop("LANDSLIDE_TF_QUIET", None)
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=full_env
    )


def test_silenced_fd2_hides_c_level_writes_and_restores():
    result = _python(
        "import os\n"
        "from landslide_tf.console import silenced_fd2\n"
        "with silenced_fd2():\n"
        "    os.write(2, b'hidden line\\n')\n"
        "os.write(2, b'shown line\\n')\n"
    )
    assert result.returncode == 0
    assert result.stderr == "shown line\n"


def test_install_sets_level_without_importing_tensorflow():
    result = _python(
        "import os, sys\n"
        "from landslide_tf import console as _quiet\n"
        "print(_quiet.install(), os.environ['TF_CPP_MIN_LOG_LEVEL'], 'tensorflow' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "2", "False"]


def test_a_level_the_user_set_wins():
    result = _python(
        "import os\n"
        "from landslide_tf import console as _quiet\n"
        "print(_quiet.install(), os.environ['TF_CPP_MIN_LOG_LEVEL'])\n",
        TF_CPP_MIN_LOG_LEVEL="0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "0"]


def test_plain_import_of_the_package_changes_nothing():
    result = _python(
        "import os, sys\nimport landslide_tf\n"
        "print('TF_CPP_MIN_LOG_LEVEL' in os.environ, 'tensorflow' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_repeated_notes_are_summarised(tmp_path, caplog):
    paths = []
    for i in range(3):
        path = tmp_path / f"t{i}.png"
        cv2.imwrite(str(path), np.full((8, 8, 4), 200, np.uint8))
        paths.append(path)
    with caplog.at_level(logging.WARNING, logger="landslide_tf"):
        with readers.summarized_notes():
            for path in paths:
                assert readers.read_rgb(path).shape == (8, 8, 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"3 files: RGBA image, alpha channel dropped (e.g. {paths[0]}; "
        "--verbose 2 lists every file)"
    ]


def test_single_note_outside_a_summary_is_logged_per_file(tmp_path, caplog):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((8, 8, 4), 200, np.uint8))
    with caplog.at_level(logging.WARNING, logger="landslide_tf"):
        readers.read_rgb(path)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: RGBA image, alpha channel dropped"
    ]


def test_progress_is_one_line_per_epoch_when_not_a_terminal(monkeypatch):
    import io

    from landslide_tf.console import interactive_stdout
    from landslide_tf.training.fit import progress_verbosity

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    if "ipykernel" not in sys.modules:
        assert not interactive_stdout() and progress_verbosity("auto") == 2
    assert progress_verbosity(0) == 0 and progress_verbosity(1) == 1


def test_silenced_fd2_replays_what_a_failing_block_printed():
    result = _python(
        "import os\n"
        "from landslide_tf.console import silenced_fd2\n"
        "try:\n"
        "    with silenced_fd2():\n"
        "        os.write(2, b'why it failed\\n')\n"
        "        raise ImportError('boom')\n"
        "except ImportError:\n"
        "    os.write(2, b'after\\n')\n"
    )
    assert result.returncode == 0
    assert result.stderr == "why it failed\nafter\n"
