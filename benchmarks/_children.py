"""Run a benchmark's child process so that stopping the benchmark stops the child too.

``subprocess.run`` kills its child only when Ctrl-C reaches the whole process group; a
SIGTERM sent to the benchmark alone (``kill PID``, a job scheduler) left the child running
without it. :func:`run_child` handles SIGTERM like Ctrl-C while the child runs and then
terminates the child, so a child that cleans up on SIGTERM (a study stops its workers) does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landslide_tf.cli.common import sigterm_as_interrupt

#: What a benchmark that runs children prints after Ctrl-C or SIGTERM (``run_cli``'s line).
INTERRUPTED = "interrupted: its child process was stopped and no result record was written"

#: Seconds a terminated child gets to clean up before it is killed.
GRACE_S = 30.0


def run_child(cmd: Sequence[str | Path], **popen: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, **popen)``, stoppable.

    Ctrl-C or SIGTERM (raised as ``KeyboardInterrupt``/``Terminated`` here) stops the child
    (:func:`stop`) and re-raises.
    """
    with (
        sigterm_as_interrupt(),
        subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
        ) as proc,
    ):
        try:
            out, err = proc.communicate()
        except BaseException:
            stop(proc)
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc`` and reap it: SIGTERM, up to ``GRACE_S`` seconds, then SIGKILL."""
    proc.terminate()
    try:
        proc.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
