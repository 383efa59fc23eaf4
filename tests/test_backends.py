"""The backend-neutral core under JAX: every model, loss and training metric gives the numbers
it gives under TensorFlow (within 1e-5).

Each backend runs in its own subprocess (``KERAS_BACKEND`` is read once, at the first
``import keras``): the same script builds every registered model at a tiny size, sets its
weights from a fixed numpy generator (so both backends hold the same weights whatever their
random initialisers), runs one inference-mode forward pass, then every registered loss and
the training metrics on small fixed arrays, and prints the numbers as JSON. The two
subprocesses run side by side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax")

ATOL = 1e-5

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from landslide_tf.losses import LOSSES, get_loss
    from landslide_tf.metrics.keras_metrics import keras_metrics
    from landslide_tf.models import MODELS, build_model

    def fixed_weights(model, seed):
        rng = np.random.default_rng(seed)
        values = []
        for w in model.weights:
            shape = tuple(w.shape)
            if "moving_variance" in w.path:
                v = rng.uniform(0.5, 1.5, shape)
            elif "gamma" in w.path:
                v = rng.uniform(0.8, 1.2, shape)
            elif len(shape) >= 2:  # kernels: fan-in scaled, activations stay O(1)
                v = rng.normal(0.0, 1.0, shape) / np.sqrt(np.prod(shape[:-1]))
            else:
                v = rng.normal(0.0, 0.1, shape)
            values.append(v.astype("float32"))
        model.set_weights(values)

    out = {"backend": keras.backend.backend(), "models": {}, "losses": {}, "metrics": {}}
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16, 4)).astype("float32")  # (batch, h, w, c)
    for seed, name in enumerate(MODELS):
        # in a StatelessScope the initializers are deferred (never run: fixed_weights sets
        # every variable), which halves the JAX build time
        with keras.StatelessScope():
            model = build_model(name, input_shape=(16, 16, 4), base_filters=4, depth=2)
        fixed_weights(model, seed)
        prob = keras.ops.convert_to_numpy(model(x, training=False))
        out["models"][name] = prob.reshape(-1).tolist()

    y_true = (rng.random((2, 8, 8, 1)) < 0.3).astype("float32")
    y_pred = rng.uniform(0.01, 0.99, (2, 8, 8, 1)).astype("float32")
    y_pred[0, 0, :4, 0] = 0.5  # probabilities exactly on the threshold
    for name in LOSSES:
        value = get_loss(name)(y_true, y_pred)
        out["losses"][name] = float(keras.ops.convert_to_numpy(value))
    for threshold in (0.3, 0.5):
        for metric in keras_metrics(threshold):
            metric.update_state(y_true[:1], y_pred[:1])
            metric.update_state(y_true[1:], y_pred[1:])
            value = float(keras.ops.convert_to_numpy(metric.result()))
            out["metrics"][f"{metric.name}@{threshold}"] = value
    json.dump(out, sys.stdout)
    """
)


#: JAX compiles every eager op (and every initializer shape) on first use; on CPU, XLA's
#: optimisation passes dominate that time for these tiny graphs (about 5x), so the JAX run
#: switches them off. The maths is unchanged (the comparison is what the test is for).
JAX_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def _start(backend: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        KERAS_BACKEND=backend,
        JAX_PLATFORMS="cpu",
        CUDA_VISIBLE_DEVICES="",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    if backend == "jax":
        env["XLA_FLAGS"] = JAX_XLA_FLAGS
    else:
        env.pop("XLA_FLAGS", None)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, backend: str) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f"{backend} run failed:\n{stderr[-3000:]}"
    result = json.loads(stdout)
    assert result["backend"] == backend
    return result


@pytest.fixture(scope="module")
def runs() -> dict[str, dict]:
    processes = {backend: _start(backend) for backend in ("tensorflow", "jax")}
    return {backend: _finish(p, backend) for backend, p in processes.items()}


def test_every_model_forward_pass_matches(runs):
    from landslide_tf.models import MODELS

    tf_models, jax_models = runs["tensorflow"]["models"], runs["jax"]["models"]
    assert list(jax_models) == list(MODELS) == list(tf_models)
    for name in MODELS:
        ref = np.asarray(tf_models[name])
        assert ref.shape == (2 * 16 * 16,) and 0.0 <= ref.min() and ref.max() <= 1.0
        assert ref.std() > 1e-4, f"{name}: a constant output compares nothing"
        np.testing.assert_allclose(jax_models[name], ref, atol=ATOL, rtol=0, err_msg=name)


def test_every_loss_matches(runs):
    from landslide_tf.losses import LOSSES

    tf_losses, jax_losses = runs["tensorflow"]["losses"], runs["jax"]["losses"]
    assert list(jax_losses) == list(LOSSES) == list(tf_losses)
    for name, ref in tf_losses.items():
        assert np.isfinite(ref) and ref > 0.0, name
        assert jax_losses[name] == pytest.approx(ref, abs=ATOL), name


def test_training_metrics_match(runs):
    tf_metrics, jax_metrics = runs["tensorflow"]["metrics"], runs["jax"]["metrics"]
    assert sorted(jax_metrics) == sorted(tf_metrics) and len(tf_metrics) == 6
    for name, ref in tf_metrics.items():
        assert 0.0 < ref < 1.0, name
        assert jax_metrics[name] == pytest.approx(ref, abs=ATOL), name
