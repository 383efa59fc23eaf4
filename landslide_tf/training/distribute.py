"""Distribution strategies, mixed precision and CPU threading for training.

``train`` and ``experiments`` take ``--strategy {default,mirrored,multiworker,tpu}``,
``--mixed-precision`` and ``--jit``; this module turns those flags into TensorFlow settings.

Batch sizes: the command-line ``--batch-size`` is the **per-replica** batch. The dataset is
batched with the **global** batch::

    global_batch = per_replica_batch * strategy.num_replicas_in_sync

so with ``--strategy mirrored`` on 4 GPUs and ``--batch-size 2`` every step consumes 8 tiles,
2 per GPU; Keras splits each global batch across the replicas and sums the gradients (the
loss is averaged over the global batch, so the update matches one device seeing all 8 tiles,
except for BatchNorm statistics, which each replica computes on its own 2 tiles).

Example:
    >>> strategy = get_strategy("default")
    >>> global_batch_size(2, strategy)
    2
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import keras
import tensorflow as tf

from landslide_tf.errors import UserError
from landslide_tf.training.config import STRATEGIES  # the names; _BUILDERS builds them

logger = logging.getLogger(__name__)


def _default_strategy() -> tf.distribute.Strategy:
    return tf.distribute.get_strategy()


def _mirrored_strategy() -> tf.distribute.Strategy:
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        devices = [d.name for d in gpus]
    else:
        cpus = tf.config.list_logical_devices("CPU")
        devices = [d.name for d in cpus]
    logger.info("MirroredStrategy over %d device(s): %s", len(devices), ", ".join(devices))
    if len(devices) == 1:
        logger.warning(
            "--strategy mirrored found one device (%s): training runs on a single replica",
            devices[0],
        )
    # On CPU-only hosts NCCL is unavailable; reduce on one device instead.
    cross_ops = None if gpus else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_ops)


def _check_tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    hint = (
        'set TF_CONFIG, e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not raw:
        raise UserError(f"--strategy multiworker needs the TF_CONFIG environment variable: {hint}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"TF_CONFIG is not valid JSON ({exc.msg} at char {exc.pos}): {hint}"
        ) from None
    if not isinstance(cfg, dict):
        raise UserError(f"TF_CONFIG must be a JSON object, got {type(cfg).__name__}: {hint}")
    cluster = cfg.get("cluster")
    task = cfg.get("task")
    if not isinstance(cluster, dict) or not cluster.get("worker"):
        raise UserError(f"TF_CONFIG has no cluster.worker list: {hint}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UserError(f"TF_CONFIG has no task with type and index: {hint}")
    members = cluster.get(task["type"])
    if not isinstance(members, list) or not 0 <= int(task["index"]) < len(members):
        raise UserError(
            f"TF_CONFIG task {task['type']}:{task['index']} is not in cluster "
            f"{ {k: len(v) for k, v in cluster.items() if isinstance(v, list)} }"
        )
    return cfg


def _multiworker_strategy() -> tf.distribute.Strategy:
    cfg = _check_tf_config()
    logger.info(
        "MultiWorkerMirroredStrategy: %d worker(s), this is %s:%s",
        len(cfg["cluster"]["worker"]),
        cfg["task"]["type"],
        cfg["task"]["index"],
    )
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:  # "Collective ops must be configured at program startup"
        raise UserError(
            f"--strategy multiworker: {exc}; create the strategy before any TensorFlow op runs "
            "(first thing in the process)"
        ) from None


def _tpu_strategy() -> tf.distribute.Strategy:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"--strategy tpu: no TPU found ({first}); on Colab choose Runtime > Change runtime "
            "type > TPU, or use --strategy default"
        ) from None
    logger.info("TPUStrategy on %s", resolver.master())
    return tf.distribute.TPUStrategy(resolver)


_BUILDERS = {
    "default": _default_strategy,
    "mirrored": _mirrored_strategy,
    "multiworker": _multiworker_strategy,
    "tpu": _tpu_strategy,
}


def get_strategy(name: str = "default") -> tf.distribute.Strategy:
    """Build the ``tf.distribute`` strategy named on the command line.

    Args:
        name: ``"default"`` (the current/default strategy: one device), ``"mirrored"``
            (``MirroredStrategy`` over all visible GPUs; over the logical CPU devices when
            there is no GPU), ``"multiworker"`` (``MultiWorkerMirroredStrategy`` configured by
            the ``TF_CONFIG`` environment variable) or ``"tpu"`` (``TPUStrategy`` through
            ``TPUClusterResolver``, e.g. a Colab TPU runtime).

    Returns:
        The strategy; build and compile the model inside ``strategy.scope()``.

    Raises:
        ValueError: ``name`` is not one of ``STRATEGIES`` (the message lists them).
        UserError: ``multiworker`` without a usable ``TF_CONFIG``; ``tpu`` without a TPU.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")
    return _BUILDERS[name]()


def global_batch_size(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """Global batch = per-replica batch x replicas in sync (what the dataset is batched with).

    Args:
        per_replica: the ``--batch-size`` option: tiles per replica per step.
        strategy: the strategy returned by ``get_strategy``.

    Returns:
        ``per_replica * strategy.num_replicas_in_sync``.
    """
    if per_replica < 1:
        raise UserError(f"batch size must be at least 1, got {per_replica}")
    return int(per_replica) * int(strategy.num_replicas_in_sync)


def _has_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def apply_mixed_precision(enabled: bool) -> str | None:
    """Set (or reset) the global Keras dtype policy.

    ``mixed_float16`` on GPU (tensor cores; Keras wraps the optimizer in a
    ``LossScaleOptimizer`` when compiling), ``mixed_bfloat16`` elsewhere (TPU, recent CPUs):
    variables stay float32, computation runs in 16 bits. Every model ends in a float32
    ``probability`` activation, so losses and metrics see float32.

    Args:
        enabled: ``True`` to turn mixed precision on; ``False`` resets the policy to
            ``float32`` (so one process can run mixed and full-precision models in turn).

    Returns:
        The policy name set (``"mixed_float16"`` or ``"mixed_bfloat16"``), or ``None`` when
        disabled.
    """
    if not enabled:
        keras.mixed_precision.set_global_policy("float32")
        return None
    policy = "mixed_float16" if _has_gpu() else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    logger.info("mixed precision: global dtype policy %s", policy)
    return policy


def configure_threads(jobs: int = 1, cores: int | None = None) -> tuple[int, int]:
    """Share the CPU cores among ``jobs`` concurrent TensorFlow processes.

    Call before TensorFlow runs its first op (thread pools are fixed afterwards). Each
    process gets ``max(1, cores // jobs)`` intra-op threads and ``1`` inter-op thread when
    ``jobs > 1`` (the default ``0`` lets TF pick, i.e. all cores, which oversubscribes the CPU
    when several training processes run side by side).

    Args:
        jobs: number of processes running at once.
        cores: CPU cores to share; ``os.cpu_count()`` when ``None``.

    Returns:
        ``(intra_op, inter_op)`` as set (``(0, 0)`` = TF defaults when ``jobs <= 1``).
    """
    if jobs < 1:
        raise UserError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        return 0, 0
    cores = cores or os.cpu_count() or 1
    intra, inter = max(1, cores // jobs), 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as exc:  # TF already initialised in this process
        logger.warning("could not set thread pools (%s); TF defaults stay", exc)
        return (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        )
    logger.info("threads per process: intra-op %d, inter-op %d (%d jobs)", intra, inter, jobs)
    return intra, inter


def split_logical_cpus(n: int = 2) -> list[str]:
    """Split the physical CPU into ``n`` logical devices (for testing ``mirrored`` on CPU).

    Must run before TensorFlow initialises its devices (i.e. first thing in a process).

    Args:
        n: number of logical CPU devices.

    Returns:
        The logical CPU device names.

    Raises:
        RuntimeError: TensorFlow's devices were already initialised in this process.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
    )
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def prepare_multiworker_fit(model: Any, strategy: tf.distribute.Strategy, dataset: Any) -> None:
    """Work around Keras 3's first ``fit`` under ``MultiWorkerMirroredStrategy``.

    ``fit`` builds the model symbolically from the first distributed batch by calling
    ``strategy.reduce("MEAN", (x, y))``; the collective strategy cannot reduce that tuple of
    per-replica values and ``fit`` fails (``Attempt to convert a value (PerReplica...)``,
    seen with Keras 3.15 / TF 2.21). Building from one local batch instead gives the same
    variables (shapes only) and leaves training untouched. No-op for other strategies.

    Each step then reduces the scalar logs (loss, metrics) across workers with
    ``strategy.reduce("MEAN", v, axis=0)``, which fails on 0-d tensors ("Invalid reduction
    dimension 0 for input with 0 dimensions", tensorflow/tensorflow#72388);
    ``_patch_scalar_reduction`` reduces those with ``axis=None``.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    if not hasattr(model, "_maybe_symbolic_build"):  # pragma: no cover - other Keras
        return
    _patch_scalar_reduction()
    x, y = next(iter(dataset.take(1)))
    build = type(model)._maybe_symbolic_build

    def local_build(iterator: Any = None, data_batch: Any = None) -> None:
        build(model, data_batch=(x, y))

    model._maybe_symbolic_build = local_build


def _patch_scalar_reduction() -> None:
    """Make Keras' per-step ``reduce_per_replica`` handle 0-d values under multi-worker.

    Only ``MultiWorkerMirroredStrategy`` with the ``auto``/``mean`` reduction is changed:
    a 0-d value is averaged across workers with ``axis=None`` (what ``axis=0`` means for a
    batch); everything else goes to Keras' own function. Idempotent.
    """
    try:
        from keras.src.backend.tensorflow import trainer as keras_trainer
    except ImportError:  # pragma: no cover - other Keras layouts
        return
    original = keras_trainer.reduce_per_replica
    if getattr(original, "landslide_tf_patch", False):
        return

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction not in ("auto", "mean") or not isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            return original(values, strategy, reduction)

        def reduce(value: Any) -> Any:
            rank = getattr(getattr(value, "shape", None), "rank", None)
            return strategy.reduce("MEAN", value, axis=None if rank == 0 else 0)

        return tf.nest.map_structure(reduce, values)

    reduce_per_replica.landslide_tf_patch = True
    keras_trainer.reduce_per_replica = reduce_per_replica
