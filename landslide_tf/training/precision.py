"""Numeric precision: what ``--precision auto`` picks on this hardware, and why.

``--precision`` takes ``auto`` (default for ``train`` and ``experiments``), ``float32``,
``bfloat16`` or ``float16``. The 16-bit choices are Keras *mixed* policies
(``mixed_bfloat16`` / ``mixed_float16``): variables and the optimizer stay float32, layers
compute in 16 bits, every model ends in a float32 ``probability`` activation, and Keras wraps
the optimizer in a ``LossScaleOptimizer`` for float16.

``auto`` decides from a ``Hardware`` description (so the rule is testable with fakes):

- a TPU -> bfloat16 (the MXU computes in bfloat16);
- GPUs, all of compute capability >= 8.0 (Ampere, Hopper, ...) -> bfloat16 (tensor cores,
  float32's range, no loss scaling);
- GPUs, all of compute capability >= 7.0 (Volta, Turing: T4, V100) -> float16 (tensor cores
  have no bfloat16 there);
- other GPUs -> float32;
- no accelerator, a CPU with ``avx512_bf16`` or ``amx_bf16`` -> bfloat16 (oneDNN runs
  convolutions in bfloat16 natively; measured ~2x per epoch on such an EPYC, see
  ``docs/readme_performance.md``);
- otherwise float32 (bfloat16 would be *emulated* and slower).

``$LANDSLIDE_TF_PRECISION`` (``float32``, ``bfloat16`` or ``float16``) overrides what ``auto``
resolves to, e.g. to run the test suite in float32 on a bfloat16 machine.

``--mixed-precision`` is kept as an alias of the old behaviour (float16 on GPU, bfloat16
elsewhere) and ``--no-mixed-precision`` of ``--precision float32``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

from landslide_tf.errors import UserError

logger = logging.getLogger(__name__)

#: Values of the ``--precision`` flags.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: Internal value for the legacy ``--mixed-precision`` flag.
LEGACY_MIXED = "mixed"
#: Keras global dtype policy of each concrete precision.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: Environment variable that fixes what ``auto`` resolves to (e.g. ``float32`` for a test run).
ENV_VAR = "LANDSLIDE_TF_PRECISION"
#: CPU flags (``/proc/cpuinfo``) that mean native bfloat16 arithmetic.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class Hardware:
    """What ``choose_precision`` looks at.

    Attributes:
        tpu: a TPU is used (``--strategy tpu`` or a TPU runtime).
        gpus: compute capability ``(major, minor)`` of each visible GPU.
        cpu_flags: CPU feature flags, lower case (``/proc/cpuinfo``).
        cpu_name: the CPU model name, for the recorded reason.
    """

    tpu: bool = False
    gpus: tuple[tuple[int, int], ...] = ()
    cpu_flags: frozenset[str] = frozenset()
    cpu_name: str = ""


def read_cpu_info(path: str | Path = "/proc/cpuinfo") -> tuple[frozenset[str], str]:
    """CPU flags and model name from ``/proc/cpuinfo`` (empty where absent, e.g. macOS)."""
    flags: set[str] = set()
    name = ""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return frozenset(), ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features") and not flags:
            flags = {f.lower() for f in value.split()}
        elif key == "model name" and not name:
            name = value.strip()
    return frozenset(flags), name


def detect_hardware(strategy: str = "default") -> Hardware:
    """Describe this machine: TPU (strategy or runtime), GPU compute capabilities, CPU flags."""
    import tensorflow as tf

    tpu = strategy == "tpu" or bool(os.environ.get("COLAB_TPU_ADDR"))
    if not tpu:
        try:
            tpu = bool(tf.config.list_logical_devices("TPU"))
        except RuntimeError:  # pragma: no cover - devices not initialisable
            tpu = False
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (RuntimeError, ValueError):  # pragma: no cover
            details = {}
        cc = details.get("compute_capability") or (0, 0)
        gpus.append((int(cc[0]), int(cc[1])))
    flags, name = read_cpu_info()
    return Hardware(tpu=tpu, gpus=tuple(gpus), cpu_flags=flags, cpu_name=name)


def choose_precision(hw: Hardware) -> tuple[str, str]:
    """The ``auto`` rule: ``(precision, reason)`` for a hardware description.

    >>> choose_precision(Hardware(gpus=((7, 5),)))[0]
    'float16'
    """
    if hw.tpu:
        return "bfloat16", "TPU: bfloat16 is its native matrix format"
    if hw.gpus:
        shown = ", ".join(f"{a}.{b}" for a, b in hw.gpus)
        low = min(hw.gpus)
        if low >= (8, 0):
            return "bfloat16", f"GPU compute capability {shown} >= 8.0: bfloat16 tensor cores"
        if low >= (7, 0):
            return "float16", f"GPU compute capability {shown} >= 7.0 (< 8.0): float16 tensor cores"
        return "float32", f"GPU compute capability {shown} < 7.0: no tensor cores"
    cpu = hw.cpu_name or "CPU"
    fast = [flag for flag in BF16_CPU_FLAGS if flag in hw.cpu_flags]
    if fast:
        return "bfloat16", f"{cpu} has {' and '.join(fast)}: native bfloat16 on CPU"
    return "float32", f"{cpu} has no avx512_bf16/amx_bf16 and no accelerator is visible"


def resolve_precision(requested: str, hw: Hardware | None = None) -> tuple[str, str]:
    """Turn a requested precision into a concrete one with the reason.

    Args:
        requested: one of ``PRECISIONS`` or ``"mixed"`` (legacy ``--mixed-precision``).
        hw: hardware description; detected when ``None`` and needed.

    Returns:
        ``(precision, reason)``, precision in ``float32``/``bfloat16``/``float16``.
    """
    if requested == "float16":
        hw = hw or detect_hardware()
        if not hw.gpus:
            logger.warning(
                "--precision float16 without a GPU: CPUs emulate float16 (slower than float32 "
                "and less exact); use --precision bfloat16 or auto on a CPU"
            )
            return requested, "--precision float16 given (no GPU: emulated, slow)"
    if requested in POLICIES:
        return requested, f"--precision {requested} given"
    if requested == LEGACY_MIXED:
        hw = hw or detect_hardware()
        chosen = "float16" if hw.gpus else "bfloat16"
        return chosen, f"--mixed-precision given: {chosen} ({'GPU' if hw.gpus else 'no GPU'})"
    if requested == "auto":
        forced = os.environ.get(ENV_VAR, "").strip().lower()
        if forced in POLICIES:
            return forced, f"${ENV_VAR}={forced}"
        return choose_precision(hw or detect_hardware())
    raise UserError(f"unknown precision {requested!r}; expected one of {', '.join(PRECISIONS)}")


def apply_precision(precision: str) -> str:
    """Set the Keras global dtype policy for a concrete precision; returns the policy name."""
    import keras

    if precision not in POLICIES:
        raise UserError(f"unknown precision {precision!r}; expected one of {', '.join(POLICIES)}")
    policy = POLICIES[precision]
    keras.mixed_precision.set_global_policy(policy)
    if precision != "float32":
        logger.info("precision %s: global dtype policy %s", precision, policy)
    return policy


def requested_precision(values: dict[str, Any]) -> str:
    """The requested precision of a config dict (old ``config.json``: from mixed_precision)."""
    if values.get("precision"):
        return str(values["precision"])
    return LEGACY_MIXED if values.get("mixed_precision") else "float32"


def _weighted_layer_policies(model: Any) -> Counter[str]:
    """Dtype policy names of the weighted layers of ``model``, nested sub-models included.

    A sub-model (e.g. the pretrained ``encoder``) counts through its own layers, not as one
    layer, so a backbone left in another precision is seen.
    """
    names: Counter[str] = Counter()
    for layer in getattr(model, "layers", []):
        if getattr(layer, "layers", None):
            names.update(_weighted_layer_policies(layer))
        elif layer.weights and hasattr(layer, "dtype_policy"):
            names[layer.dtype_policy.name] += 1
    return names


def model_precision(model: Any) -> str:
    """The precision a Keras model computes in (the policy of most of its weighted layers).

    The layers of nested sub-models (the pretrained ``encoder``) are counted too. The
    model's own ``dtype_policy`` is not reliable after loading a ``.keras`` file (the
    functional wrapper takes the global policy); the layers keep theirs.
    """
    names = _weighted_layer_policies(model)
    name = names.most_common(1)[0][0] if names else model.dtype_policy.name
    for precision, policy in POLICIES.items():
        if policy == name:
            return precision
    return "float32"


def convert_model(model: Any, precision: str) -> Any:
    """A copy of ``model`` computing in ``precision`` with the same (float32) weights.

    Nested sub-models (the pretrained ``encoder``) are cloned too, so every layer computes
    in ``precision``. Returns ``model`` itself when all its weighted layers, nested ones
    included, already do.
    """
    import keras

    if precision not in POLICIES:
        raise UserError(f"unknown precision {precision!r}; expected one of {', '.join(POLICIES)}")
    policy = POLICIES[precision]
    if (set(_weighted_layer_policies(model)) or {model.dtype_policy.name}) == {policy}:
        return model

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = policy
        if getattr(layer, "name", "") == "probability" or (
            isinstance(layer, keras.layers.InputLayer)
        ):
            config["dtype"] = layer.get_config().get("dtype", "float32")
        return layer.__class__.from_config(config)

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    for layer in model.layers:
        if getattr(layer, "layers", None) and not layer.trainable:
            copy.get_layer(layer.name).trainable = False  # a frozen encoder stays frozen
    copy.set_weights(model.get_weights())
    return copy


def run_precision(config: Any, stored: dict[str, Any] | None) -> dict[str, str]:
    """The precision a run trains in, for ``config.json``: ``precision_used``, ``precision_reason``.

    A new run resolves ``config.precision`` on this machine; a resumed run keeps what its
    ``config.json`` recorded (old files without it: float32, or the legacy mixed flag), so
    resuming on other hardware does not change the arithmetic half-way.
    """
    if stored is not None:
        used = stored.get("precision_used")
        if used in POLICIES:
            reason = str(stored.get("precision_reason") or "recorded in config.json")
        else:
            used, reason = resolve_precision(requested_precision(stored))
        if config.precision not in ("auto", used):
            logger.warning(
                "resuming in %s as recorded in config.json (--precision %s ignored; "
                "--force retrains)",
                used,
                config.precision,
            )
        return {"precision_used": used, "precision_reason": reason}
    hw = None
    if config.precision in ("auto", LEGACY_MIXED):
        hw = detect_hardware(config.strategy)
    used, reason = resolve_precision(config.precision, hw)
    logger.info("precision %s (%s)", used, reason)
    return {"precision_used": used, "precision_reason": reason}
