"""Tests for landslide_tf.training.distribute: strategies, global batch, mixed precision, threads.

The mirrored-strategy test needs two logical CPU devices, which TensorFlow only allows to be
configured before it initialises its devices; pytest's process has long done that, so the
scenario runs in a fresh ``python -c`` subprocess that prints one JSON line of results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from landslide_tf.errors import UserError
from landslide_tf.training import distribute

# Runs in a fresh interpreter: 2 logical CPUs, then one model trained two ways from the same
# initial weights on the same global batches:
#   * "mirrored": Keras ``fit`` under MirroredStrategy over the 2 logical CPUs, global batch 4
#     (2 tiles per replica);
#   * "reference": one device, the same semantics written out by hand: each global batch is
#     cut into the two per-replica halves, each half runs the model in training mode on its
#     own (so BatchNorm normalises with that half's statistics, as each replica does), the two
#     mean-loss gradients are averaged (= the all-reduced sum of the per-replica gradients of
#     loss / num_replicas) and one SGD update is applied;
#   * "single": plain ``fit`` on one device with the whole global batch of 4 (BatchNorm sees
#     all 4 tiles), to show how far the BatchNorm difference alone moves the loss.
_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from landslide_tf.training.distribute import configure_threads, get_strategy, global_batch_size
    from landslide_tf.training.distribute import split_logical_cpus
    threads = configure_threads(2, cores=2)
    devices = split_logical_cpus(2)
    import numpy as np, keras, tensorflow as tf
    from landslide_tf.models import build_model

    STEPS, PER_REPLICA, LR = 4, 2, 0.05
    strategy = get_strategy("mirrored")
    gbs = global_batch_size(PER_REPLICA, strategy)
    rng = np.random.default_rng(0)
    n = STEPS * gbs
    x = rng.random((n, 32, 32, 4), dtype=np.float32)  # (n, h, w, c)
    y = (x[..., :1] + 0.3 * x[..., 3:4] > 0.8).astype("float32")  # (n, h, w, 1)

    def build():
        return build_model("unet", input_shape=(32, 32, 4), base_filters=4, depth=2,
                           dropout=0.0)

    def dataset():
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(gbs)

    keras.utils.set_random_seed(0)
    init = build().get_weights()

    class StepLoss(keras.callbacks.Callback):
        # Keras logs the running mean of the epoch; recover each step's loss from it.
        def on_epoch_begin(self, epoch, logs=None):
            self.means = []
        def on_train_batch_end(self, batch, logs=None):
            self.means.append(float(logs["loss"]))
        def steps(self):
            m = [0.0] + self.means
            return [(k + 1) * m[k + 1] - k * m[k] for k in range(len(self.means))]

    def fit(model):
        model.set_weights(init)
        model.compile(optimizer=keras.optimizers.SGD(LR),
                      loss=keras.losses.BinaryCrossentropy())
        cb = StepLoss()
        model.fit(dataset(), epochs=1, verbose=0, callbacks=[cb], shuffle=False)
        return cb.steps(), model.trainable_weights

    with strategy.scope():
        mirrored = build()
        mirrored_losses, mirrored_w = fit(mirrored)
    mirrored_w = [np.asarray(v.value if hasattr(v, "value") else v) for v in mirrored_w]

    single = build()
    single_losses, _ = fit(single)

    ref = build()
    ref.set_weights(init)
    start_w = [np.array(v) for v in ref.trainable_weights]
    opt = keras.optimizers.SGD(LR)
    bce = keras.losses.BinaryCrossentropy()
    ref_losses = []
    for xb, yb in dataset():
        grads, losses = None, []
        for r in range(strategy.num_replicas_in_sync):
            xs = xb[r * PER_REPLICA:(r + 1) * PER_REPLICA]
            ys = yb[r * PER_REPLICA:(r + 1) * PER_REPLICA]
            with tf.GradientTape() as tape:
                loss = bce(ys, ref(xs, training=True))
            g = tape.gradient(loss, ref.trainable_weights)
            grads = g if grads is None else [a + b for a, b in zip(grads, g)]
            losses.append(float(loss))
        grads = [g / strategy.num_replicas_in_sync for g in grads]
        opt.apply_gradients(zip(grads, ref.trainable_weights))
        ref_losses.append(float(np.mean(losses)))
    ref_w = [np.asarray(v) for v in ref.trainable_weights]
    max_w = max(float(np.max(np.abs(a - b))) for a, b in zip(mirrored_w, ref_w))
    delta = max(float(np.max(np.abs(a - b))) for a, b in zip(ref_w, start_w))
    print(json.dumps({
        "devices": devices, "replicas": strategy.num_replicas_in_sync, "global_batch": gbs,
        "threads": list(threads),
        "tf_threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                       tf.config.threading.get_inter_op_parallelism_threads()],
        "mirrored": mirrored_losses, "reference": ref_losses, "single": single_losses,
        "max_weight_diff": max_w, "max_weight_update": delta,
    }))
    """
)


@pytest.fixture(scope="module")
def mirrored_run() -> dict:
    """Run the two-logical-CPU scenario once and return its JSON results."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mirrored_uses_two_logical_cpus(mirrored_run):
    assert mirrored_run["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert mirrored_run["replicas"] == 2
    assert mirrored_run["global_batch"] == 4  # per-replica 2 x 2 replicas


def test_mirrored_loss_matches_single_device_reference(mirrored_run):
    mirrored = np.array(mirrored_run["mirrored"])
    reference = np.array(mirrored_run["reference"])
    assert mirrored.shape == reference.shape == (4,)
    assert np.all(np.isfinite(mirrored))
    # Same maths, different float32 summation order (all-reduce of per-replica gradients vs
    # a hand-written average), so only rounding differs: measured ~2e-7 relative on the loss
    # and ~6e-8 on the weights. rtol 2e-5 is ~100x above that and still ~15x below the
    # BatchNorm-only difference to a plain single-device fit (~3e-4, checked below), let
    # alone a real bug such as a gradient summed instead of averaged over replicas (2x step).
    np.testing.assert_allclose(mirrored, reference, rtol=2e-5, atol=0)
    # The weights moved (so this is not a comparison of untrained models) and ended equal.
    assert mirrored_run["max_weight_update"] > 1e-3
    assert mirrored_run["max_weight_diff"] < 1e-5
    # The reference models per-replica BatchNorm, which a plain single-device fit does not:
    # the test can tell the two apart.
    single = np.array(mirrored_run["single"])
    assert np.max(np.abs(mirrored - single)) > 10 * np.max(np.abs(mirrored - reference))


def test_mirrored_loss_close_to_plain_single_device_fit(mirrored_run):
    # Plain single-device fit with the same global batch differs only in BatchNorm statistics
    # (4 tiles vs 2 per replica): the first step's forward pass differs, so compare loosely.
    mirrored = np.array(mirrored_run["mirrored"])
    single = np.array(mirrored_run["single"])
    # Measured ~3e-4 relative; 1e-2 allows other seeds/platforms while still catching a
    # diverging or wrongly scaled mirrored run.
    np.testing.assert_allclose(mirrored, single, rtol=1e-2)


# Runs in a fresh interpreter with 2 logical CPUs: the losses that return one value for the
# whole batch (not one per pixel) under ``mirrored``. One tiny model with one 1x1-conv sigmoid
# head per loss (heads share no weights, so each head's update comes from its own loss) takes
# one SGD step on a global batch of 4 (2 tiles per replica); the reference computes each loss
# on each replica's 2 tiles on one device and averages the two gradients, i.e. trains on the
# mean of the per-replica losses. Keras once returned these 0-d losses unscaled, so the
# replicas' gradients were summed: twice the reference step and twice the logged loss.
_WHOLE_BATCH = ("dice", "bce_dice", "tversky", "focal_tversky", "lovasz_hinge")
_WHOLE_BATCH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from landslide_tf.training.distribute import configure_threads, get_strategy
    from landslide_tf.training.distribute import split_logical_cpus
    configure_threads(2, cores=2)
    split_logical_cpus(2)
    import numpy as np, keras, tensorflow as tf
    from landslide_tf.losses import get_loss

    NAMES, PER_REPLICA, LR = sys.argv[1].split(","), 2, 0.5
    strategy = get_strategy("mirrored")
    replicas = strategy.num_replicas_in_sync
    rng = np.random.default_rng(0)
    x = rng.normal(size=(PER_REPLICA * replicas, 8, 8, 2)).astype("float32")  # (n, h, w, c)
    y = np.zeros((len(x), 8, 8, 1), "float32")  # (n, h, w, 1)
    y[0, :6, :6] = y[1, 2:5, :3] = y[2, :1, :1] = 1  # replica 1: big scars; replica 2: a dot

    def build():
        inputs = keras.Input((8, 8, 2))
        heads = {
            n: keras.layers.Activation("sigmoid", dtype="float32", name=n)(
                keras.layers.Conv2D(1, 1, name=f"{n}_logits")(inputs)
            )
            for n in NAMES
        }
        return keras.Model(inputs, heads)

    keras.utils.set_random_seed(0)
    init = build().get_weights()

    with strategy.scope():
        model = build()
        model.set_weights(init)
        model.compile(optimizer=keras.optimizers.SGD(LR),
                      loss={n: get_loss(n) for n in NAMES})
        logs = model.fit(x, {n: y for n in NAMES}, batch_size=len(x), epochs=1, verbose=0,
                         shuffle=False).history
    mirrored = {v.path: np.asarray(v) for v in model.trainable_weights}

    ref = build()
    ref.set_weights(init)
    out = ref(x)
    with tf.GradientTape() as tape:
        per_replica = {n: [] for n in NAMES}
        for r in range(replicas):
            part = slice(r * PER_REPLICA, (r + 1) * PER_REPLICA)
            pred = ref(x[part])
            for n in NAMES:
                per_replica[n].append(get_loss(n)(y[part], pred[n]))
        total = sum(tf.add_n(v) / replicas for v in per_replica.values())
    grads = tape.gradient(total, ref.trainable_weights)
    result = {}
    for n in NAMES:
        paths = [v.path for v in ref.trainable_weights if v.path.startswith(f"{n}_logits/")]
        ref_delta = [-LR * np.asarray(g) for v, g in zip(ref.trainable_weights, grads)
                     if v.path in paths]
        start = [w for v, w in zip(ref.trainable_weights, init) if v.path in paths]
        result[n] = {
            "mirrored_delta": np.concatenate([(mirrored[p] - w).ravel()
                                              for p, w in zip(paths, start)]).tolist(),
            "reference_delta": np.concatenate([d.ravel() for d in ref_delta]).tolist(),
            "mirrored_loss": float(logs[f"{n}_loss"][0]),
            "per_replica_losses": [float(v) for v in per_replica[n]],
            "whole_batch_loss": float(get_loss(n)(y, out[n])),
        }
    print(json.dumps({"replicas": replicas, "losses": result}))
    """
)


@pytest.fixture(scope="module")
def whole_batch_run() -> dict:
    """Run the whole-batch-loss scenario once and return its JSON results."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", _WHOLE_BATCH_SCRIPT, ",".join(_WHOLE_BATCH)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", _WHOLE_BATCH)
def test_mirrored_whole_batch_loss_is_the_mean_over_replicas(whole_batch_run, name):
    assert whole_batch_run["replicas"] == 2
    run = whole_batch_run["losses"][name]
    per_replica = np.array(run["per_replica_losses"])
    # the logged loss is the mean of the replicas' losses, not their sum
    assert run["mirrored_loss"] == pytest.approx(per_replica.mean(), rel=1e-5)
    assert run["mirrored_loss"] < 0.75 * per_replica.sum()
    # and the step is the single-device step on that mean (a summed loss would double it)
    mirrored, reference = np.array(run["mirrored_delta"]), np.array(run["reference_delta"])
    assert np.abs(reference).max() > 1e-3  # the weights moved
    np.testing.assert_allclose(mirrored, reference, rtol=1e-4, atol=1e-7)


def test_mirrored_dice_is_per_replica_not_over_the_global_batch(whole_batch_run):
    # docs/readme_performance.md: under several replicas a whole-batch loss such as Dice is
    # computed on each replica's batch and averaged, which differs from one Dice over all
    # tiles of the global batch (here replica 2 holds only a one-pixel scar).
    run = whole_batch_run["losses"]["dice"]
    assert abs(run["mirrored_loss"] - run["whole_batch_loss"]) > 0.01


def test_configure_threads_before_init(mirrored_run):
    assert mirrored_run["threads"] == [1, 1]
    assert mirrored_run["tf_threads"] == [1, 1]


def test_configure_threads_single_job_and_bad_value():
    assert distribute.configure_threads(1) == (0, 0)
    with pytest.raises(UserError, match="jobs must be at least 1"):
        distribute.configure_threads(0)


def test_default_strategy_and_global_batch():
    strategy = distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert distribute.global_batch_size(2, strategy) == 2
    with pytest.raises(UserError, match="at least 1"):
        distribute.global_batch_size(0, strategy)


def test_unknown_strategy_lists_names():
    with pytest.raises(ValueError, match="default, mirrored, multiworker, tpu"):
        distribute.get_strategy("horovod")


def test_multiworker_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs the TF_CONFIG environment variable"):
        distribute.get_strategy("multiworker")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "no cluster.worker"),
        ('{"cluster": {"worker": ["a:1"]}}', "no task"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "not in"),
    ],
)
def test_multiworker_invalid_tf_config(monkeypatch, value, message):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(UserError, match=message) as info:
        distribute.get_strategy("multiworker")
    assert "\n" not in str(info.value)


def test_multiworker_after_tensorflow_started_is_one_line_error(monkeypatch):
    import tensorflow as tf

    tf.constant(1.0).numpy()  # pytest's process has long initialised TensorFlow
    tf_config = {"cluster": {"worker": ["localhost:23456"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    with pytest.raises(UserError, match="before any TensorFlow op runs") as info:
        distribute.get_strategy("multiworker")
    assert "\n" not in str(info.value)


def test_tpu_without_tpu_is_one_line_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(UserError, match="--strategy tpu: no TPU found") as info:
        distribute.get_strategy("tpu")
    assert "\n" not in str(info.value)


@pytest.fixture
def _reset_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.usefixtures("_reset_policy")
def test_apply_mixed_precision_sets_and_resets_policy():
    policy = distribute.apply_mixed_precision(True)
    assert policy == "mixed_bfloat16"  # no GPU on CPU-only test machines
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    assert distribute.apply_mixed_precision(False) is None
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.usefixtures("_reset_policy")
def test_apply_mixed_precision_uses_float16_on_gpu(monkeypatch):
    monkeypatch.setattr(distribute, "_has_gpu", lambda: True)
    assert distribute.apply_mixed_precision(True) == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "mixed_float16"


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--mixed-precision", "--jit"])
def test_train_cli_with_mixed_precision_or_jit_finishes_on_cpu(synth_dir, tmp_path, flag):
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "landslide_tf.train", "--model", "unet", "--loss", "bce",
        "--epochs", "1", "--base-filters", "4", "--depth", "2", "--image-size", "32",
        "--data", str(synth_dir), "--run-dir", str(run_dir), "--verbose", "0", flag,
    ]  # fmt: skip
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((run_dir / "config.json").read_text())
    key = "mixed_precision" if flag == "--mixed-precision" else "jit"
    assert config[key] is True
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0
    assert (run_dir / "best.keras").is_file()


# Runs in a fresh interpreter with 2 logical CPUs: a cosine run trained 1 of 2 epochs under
# the default strategy with --batch-size 4 (global batch 4), then resumed under
# ``mirrored`` (2 replicas): --batch-size 4 would make the global batch 8 and is refused,
# --batch-size 2 keeps it at 4 and goes on. A run from before the record is resumed as is.
_RESUME_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from landslide_tf.training.distribute import split_logical_cpus
    split_logical_cpus(2)
    import keras
    from landslide_tf.cli.train import main

    data, root = sys.argv[1], sys.argv[2]
    original_fit = keras.Model.fit

    class CtrlCAfterEpoch1(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    def interrupted_fit(model, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs["callbacks"], CtrlCAfterEpoch1()]
        return original_fit(model, *args, **kwargs)

    def train(run, *extra, interrupt=False):
        keras.Model.fit = interrupted_fit if interrupt else original_fit
        argv = ["--data", data, "--run-dir", f"{root}/{run}", "--model", "unet",
                "--image-size", "32", "--base-filters", "4", "--depth", "2", "--epochs", "2",
                "--lr-schedule", "cosine", "--precision", "float32", "--verbose", "0", *extra]
        code = main(argv)
        print(json.dumps({"run": run, "code": code}), file=sys.stderr, flush=True)
        return code

    def config(run):
        with open(f"{root}/{run}/config.json") as f:
            return json.load(f)

    out = {"interrupted": train("run", "--batch-size", "4", interrupt=True)}
    out["recorded"] = config("run").get("global_batch")
    out["other_global"] = train("run", "--batch-size", "4", "--strategy", "mirrored")
    out["same_global"] = train("run", "--batch-size", "2", "--strategy", "mirrored")
    with open(f"{root}/run/state.json") as f:
        out["iterations"] = json.load(f)["optimizer_iterations"]
    out["final"] = {k: config("run").get(k) for k in ("global_batch", "batch_size", "strategy")}
    with open(f"{root}/run/train.txt") as f:
        out["n_train"] = len(f.read().split())

    train("old", "--batch-size", "4", interrupt=True)
    old = config("old")
    old.pop("global_batch", None)  # a config.json from before the record
    with open(f"{root}/old/config.json", "w") as f:
        json.dump(old, f)
    out["old"] = train("old", "--batch-size", "4", "--strategy", "mirrored")
    out["old_recorded"] = config("old").get("global_batch", "absent")
    print(json.dumps(out))
    """
)


def test_a_resume_under_another_strategy_keeps_the_global_batch(synth_dir, tmp_path):
    """--batch-size is per replica: a resume whose --strategy changes the global batch is
    refused (the restored step count and the cosine schedule were counted with the old steps
    per epoch) with the --batch-size that keeps it, which then resumes."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, "-c", _RESUME_SCRIPT, str(synth_dir), str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["interrupted"] == 130 and out["recorded"] == 4
    assert out["other_global"] == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "global batch of 4" in errors[0] and "makes it 8" in errors[0]
    assert "use --batch-size 2 so that the global batch stays 4, or --force" in errors[0]
    assert out["same_global"] == 0
    assert out["final"] == {"global_batch": 4, "batch_size": 2, "strategy": "mirrored"}
    assert out["iterations"] == 2 * -(-out["n_train"] // 4)  # both epochs counted in steps of 4
    assert out["old"] == 0 and out["old_recorded"] == "absent"  # cannot know: not refused
