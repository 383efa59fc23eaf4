"""``train --strategy multiworker`` really run: two local worker processes, one epoch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.slow
def test_two_local_workers_finish_with_identical_weights(synth_dir, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            CUDA_VISIBLE_DEVICES="",
            PYTHONPATH=ROOT,
            TF_CPP_MIN_LOG_LEVEL="2",
            LANDSLIDE_TF_PRECISION="float32",
        )
        cmd = [
            sys.executable, "-m", "landslide_tf.train", "--strategy", "multiworker",
            "--model", "unet", "--loss", "bce", "--epochs", "1", "--data", str(synth_dir),
            "--run-dir", str(tmp_path / f"worker{index}"), "--image-size", "32",
            "--base-filters", "4", "--depth", "2", "--batch-size", "4", "--lr", "1e-3",
            "--seed", "7", "--verbose", "0",
        ]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=900))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode(errors="replace")[-3000:]

    import keras

    import landslide_tf.models  # noqa: F401  (custom layers)

    models = [
        keras.models.load_model(tmp_path / f"worker{i}" / "last.keras", compile=False)
        for i in range(2)
    ]
    # The gradients are all-reduced: every trainable weight is the same on both workers. The
    # batch-norm moving statistics are each worker's own (its shard's batches), as in any
    # data-parallel training without synchronized batch norm.
    trainable = [[v.numpy() for v in m.trainable_weights] for m in models]
    assert len(trainable[0]) == len(trainable[1]) > 0
    for a, b in zip(*trainable, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any("moving_mean" in v.path for v in models[0].non_trainable_weights)
    # The logged loss and metrics are reduced across the workers: the same on both.
    rows = [(tmp_path / f"worker{i}" / "history.csv").read_text().splitlines() for i in range(2)]
    header = rows[0][0].split(",")
    logged = [h for h in header if h not in ("epoch", "seconds", "cpu_seconds")]
    assert "loss" in logged and "val_miou" in logged
    values = [dict(zip(header, r[1].split(","), strict=True)) for r in rows]
    assert [values[0][k] for k in logged] == [values[1][k] for k in logged]
    for i in range(2):
        config = json.loads((tmp_path / f"worker{i}" / "config.json").read_text())
        assert config["strategy"] == "multiworker"
