"""Run-directory lock and the history/state reconciliation on resume (no TensorFlow)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from landslide_tf.errors import UserError
from landslide_tf.training import runstate


def test_second_process_is_refused_with_the_owner(tmp_path):
    with runstate.RunLock(tmp_path, "training"):
        info = json.loads((tmp_path / runstate.LOCK_FILE).read_text())
        assert info["pid"] > 0 and info["purpose"] == "training"
        code = textwrap.dedent(f"""
            from landslide_tf.training import runstate
            try:
                runstate.RunLock({str(tmp_path)!r}).acquire()
            except Exception as exc:
                print(type(exc).__name__, exc)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.stdout.startswith("UserError"), out.stderr
        assert f"pid {info['pid']}" in out.stdout and "is in use" in out.stdout
    assert not (tmp_path / runstate.LOCK_FILE).exists()  # released and removed


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal
        from landslide_tf.training import runstate
        runstate.RunLock({str(tmp_path)!r}).acquire()
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", code], check=False)
    assert (tmp_path / runstate.LOCK_FILE).is_file()  # the stale file is still there
    with runstate.RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] != 0


def test_same_process_twice_is_refused(tmp_path):
    with runstate.RunLock(tmp_path), pytest.raises(UserError, match="is in use"):
        runstate.RunLock(tmp_path).acquire()


def _rows():
    return [
        {"epoch": 1, "loss": 0.9, "val_loss": 0.8},
        {"epoch": 2, "loss": 0.6, "val_loss": 0.7049},
        {"epoch": 3, "loss": 0.5, "val_loss": 0.69},
    ]


def test_torn_last_row_is_rewritten_from_the_state(tmp_path, caplog):
    path = tmp_path / runstate.HISTORY_FILE
    rows = _rows()
    runstate.write_history(path, rows)
    state = {"epochs_done": 2, "last_row": rows[1]}
    # a torn file: epoch 2's val_loss lost its last digits, epoch 3 is beyond the commit
    path.write_text(path.read_text().replace("0.7049", "0.7"))
    kept = runstate.reconcile_history(runstate.read_history(path), state, path)
    assert [r["epoch"] for r in kept] == [1, 2]
    assert kept[1]["val_loss"] == pytest.approx(0.7049)
    assert runstate.read_history(path)[1]["val_loss"] == pytest.approx(0.7049)
    assert "rewritten from the checkpoint's record" in caplog.text


def test_intact_history_is_left_alone(tmp_path):
    path = tmp_path / runstate.HISTORY_FILE
    rows = _rows()
    runstate.write_history(path, rows)
    before = path.stat().st_mtime_ns
    kept = runstate.reconcile_history(
        runstate.read_history(path), {"epochs_done": 3, "last_row": rows[2]}, path
    )
    assert len(kept) == 3 and path.stat().st_mtime_ns == before
