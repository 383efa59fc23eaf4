"""Pretrained encoder backbones from keras-hub at any input channel count.

:func:`build_backbone` makes the keras-hub backbone of an :class:`EncoderSpec` for ``C``
input channels with ``weights``:

- ``"none"``: random initialisation of the registry's architecture;
- ``"imagenet"``: the keras-hub preset (``spec.preset``), fetched from Kaggle on first use and
  cached by kagglehub (``$KAGGLEHUB_CACHE``, default ``~/.cache/kagglehub``);
- a folder: a local keras-hub preset (``Backbone.save_to_preset``; its ``config.json`` gives
  the architecture);
- a ``.weights.h5`` file: weights of the registry's architecture (``backbone.save_weights``).

Any channel count (:func:`adapt_stem_kernel`, the rule of segmentation_models.pytorch's
``encoders/_utils.py``): the pretrained stem kernel ``W`` (``kh, kw, 3, out``) becomes, for
``C`` input channels, ``W'[..., i, :] = W[..., i % 3, :] * 3 / C`` (for ``C = 1``:
``W.sum(axis=2)``). So the RGB channels keep the pretrained kernels, the extra ones (DEM,
slope, more bands) cycle through them, and all are rescaled so the response to inputs of
similar statistics keeps its magnitude; at ``C = 3`` the kernel is unchanged.

:func:`fetch_preset` saves an ImageNet preset for an offline machine; its command line is
``python -m landslide_tf.cli.encoder_weights [--fetch NAME DIR]``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from landslide_tf.errors import UserError, require_module
from landslide_tf.models.encoders import ENCODERS, EncoderSpec

__all__ = [
    "adapt_stem_kernel",
    "build_backbone",
    "fetch_preset",
    "import_keras_hub",
    "kaggle_cache_dir",
    "load_pretrained",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = "encoder models need keras-hub: pip install landslide_tf[encoders]"


def import_keras_hub() -> Any:
    """Import keras-hub or fail with the one-line install hint."""
    return require_module("keras_hub", INSTALL_HINT)


def kaggle_cache_dir() -> Path:
    """Where kagglehub caches downloaded presets."""
    return Path(os.environ.get("KAGGLEHUB_CACHE", "~/.cache/kagglehub")).expanduser()


def adapt_stem_kernel(kernel: np.ndarray, channels: int) -> np.ndarray:
    """The stem kernel for ``channels`` inputs, as segmentation_models.pytorch adapts it.

    Example:
        >>> w = np.arange(3.0).reshape(1, 1, 3, 1)
        >>> adapt_stem_kernel(w, 4)[0, 0, :, 0].tolist()
        [0.0, 0.75, 1.5, 0.0]
        >>> adapt_stem_kernel(w, 1)[0, 0, :, 0].tolist()
        [3.0]

    Args:
        kernel: ``(kh, kw, c0, out)`` pretrained kernel (``c0 = 3`` for RGB).
        channels: New input channel count ``C >= 1``.

    Returns:
        ``(kh, kw, C, out)``: the sum over input channels for ``C = 1``, else channel ``i``
        is ``kernel[..., i % c0, :] * c0 / C``.
    """
    kernel = np.asarray(kernel)
    c0 = kernel.shape[2]
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if channels == 1:
        return kernel.sum(axis=2, keepdims=True)
    index = np.arange(channels) % c0
    return kernel[:, :, index, :] * (c0 / channels)


def _shape_key(spec: EncoderSpec) -> str:
    return "image_shape" if spec.family == "resnet" else "input_shape"


def _backbone_class(spec: EncoderSpec) -> Any:
    keras_hub = import_keras_hub()
    return {
        "resnet": keras_hub.models.ResNetBackbone,
        "efficientnet": keras_hub.models.EfficientNetBackbone,
    }[spec.family]


def cached_preset_dirs(preset: str) -> list[Path]:
    """kagglehub's cached copies of a keras-hub preset
    (``CACHE/models/OWNER/MODEL/FRAMEWORK/PRESET``; each holds version folders)."""
    return sorted(p for p in kaggle_cache_dir().glob(f"models/*/*/*/{preset}") if p.is_dir())


def _fetch_message(name: str, spec: EncoderSpec, reason: str) -> str:
    cached = cached_preset_dirs(spec.preset)
    if cached:  # --fetch would read the same copy again: say how to get a fresh one
        return (
            f"cannot load the ImageNet weights of encoder {name} (keras-hub preset "
            f"{spec.preset}): {reason}; a cached copy is at {cached[0]}: if a download was "
            "interrupted it is damaged, so delete that folder and retry (with internet), or "
            "pass --encoder-weights DIR (or --encoder-weights none)"
        )
    return (
        f"cannot fetch the ImageNet weights of encoder {name} (keras-hub preset {spec.preset}, "
        f"cached in {kaggle_cache_dir()}): {reason}; with internet run "
        f"`python -m landslide_tf.cli.encoder_weights --fetch {name} DIR` and pass "
        "--encoder-weights DIR (or --encoder-weights none)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def load_pretrained(name: str, spec: EncoderSpec, weights: str) -> Any:
    """The 3-channel source backbone for ``weights`` = ``imagenet``, a folder or a file.

    Raises:
        UserError: offline or a missing/unreadable preset or weights file (one line).
    """
    cls = _backbone_class(spec)
    if weights == "imagenet":
        try:
            return cls.from_preset(spec.preset)
        except Exception as exc:  # kagglehub/requests raise many types when offline
            raise UserError(_fetch_message(name, spec, _first_line(exc))) from exc
    path = Path(weights).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"--encoder-weights {path} is a folder without config.json")
        check_preset_architecture(name, spec, path)
        try:
            backbone = cls.from_preset(str(path))
        except Exception as exc:  # keras-hub raises many types for bad presets
            raise UserError(f"cannot load encoder preset {path}: {_first_line(exc)}") from exc
        if not isinstance(backbone, cls):
            raise UserError(
                f"encoder preset {path} holds a {type(backbone).__name__}, "
                f"encoder {name} needs a {cls.__name__}"
            )
        return backbone
    if path.is_file():
        if not path.name.endswith(".weights.h5"):
            raise UserError(f"--encoder-weights {path}: expected a .weights.h5 file or a folder")
        backbone = cls(**spec.config, **{_shape_key(spec): (None, None, 3)})
        try:
            backbone.load_weights(str(path))
        except Exception as exc:  # h5py/keras raise many types for mismatched files
            raise UserError(f"cannot load {path} into encoder {name}: {_first_line(exc)}") from exc
        return backbone
    raise UserError(
        f"--encoder-weights {weights!r} is neither imagenet, none, a preset folder "
        "nor a .weights.h5 file"
    )


def _normalized(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _architecture_of(spec: EncoderSpec, config: dict[str, Any]) -> dict[str, Any]:
    return {k: _normalized(config.get(k)) for k in spec.config}


def check_preset_architecture(name: str, spec: EncoderSpec, path: Path) -> None:
    """Refuse a preset folder whose architecture (``config.json``) is not encoder ``name``'s.

    A ResNet-50 preset given as ``--encoder resnet18`` would otherwise build a ResNet-50
    and record resnet18. The preset's backbone class and every architecture key of the
    registry's config (blocks, block type, filters, strides, ...) must match.

    Raises:
        UserError: another architecture (naming the registered encoder it matches, if any)
            or an unreadable ``config.json``.
    """
    try:
        preset = json.loads((path / "config.json").read_text())
        class_name = preset.get("class_name")
        config = preset.get("config") or {}
        if not isinstance(config, dict):
            raise ValueError("no config mapping")
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(
            f"--encoder-weights {path}: unreadable config.json ({_first_line(exc)})"
        ) from exc
    expected_class = _backbone_class(spec).__name__
    wanted = _architecture_of(spec, spec.config)
    got = _architecture_of(spec, config)
    if class_name == expected_class and got == wanted:
        return
    matches = [
        other
        for other, candidate in ENCODERS.items()
        if other != name
        and _backbone_class(candidate).__name__ == class_name
        and _architecture_of(candidate, config) == _architecture_of(candidate, candidate.config)
    ]
    if class_name != expected_class:
        what = f"a {class_name}"
    else:
        diff = [k for k in wanted if got[k] != wanted[k]]
        what = ", ".join(f"{k}={got[k]}" for k in diff[:2])
        what = (
            f"another {class_name} ({what}; {name} has "
            + ", ".join(f"{k}={wanted[k]}" for k in diff[:2])
            + ")"
        )
    hint = (
        f"use --encoder {matches[0]}"
        if matches
        else f"give weights of {name} (python -m landslide_tf.cli.encoder_weights --fetch "
        f"{name} DIR)"
    )
    raise UserError(f"--encoder-weights {path} holds {what}, not encoder {name}: {hint}")


def build_backbone(name: str, spec: EncoderSpec, channels: int, weights: str) -> Any:
    """The keras-hub backbone of ``spec`` for ``channels`` inputs, with ``weights`` set.

    Args:
        name: Registry name (for messages).
        spec: The :class:`landslide_tf.models.encoders.EncoderSpec`.
        channels: Input channel count ``C >= 1``.
        weights: ``"imagenet"``, ``"none"``, a preset folder or a ``.weights.h5`` file.

    Returns:
        A keras-hub ``Backbone`` taking ``(batch, h, w, C)``.
    """
    cls = _backbone_class(spec)
    shape = {_shape_key(spec): (None, None, int(channels))}
    if weights == "none":
        return cls(**spec.config, **shape)
    source = load_pretrained(name, spec, weights)
    config = source.get_config()
    config.update(shape)
    target = cls.from_config(config)
    if len(source.weights) != len(target.weights):
        raise UserError(f"encoder {name}: the weights do not match the architecture")
    for src, dst in zip(source.weights, target.weights, strict=True):
        value = np.asarray(src.numpy())
        if tuple(src.shape) != tuple(dst.shape):
            # the only weight whose shape depends on C: the stem conv kernel (kh, kw, 3, out)
            value = adapt_stem_kernel(value, int(channels))
        dst.assign(value)
    logger.info("encoder %s: weights from %s adapted to %d channels", name, weights, channels)
    return target


def fetch_preset(name: str, out_dir: str | Path) -> Path:
    """Save the ImageNet preset of encoder ``name`` into the new folder ``out_dir``.

    The folder is what ``--encoder-weights DIR`` takes on a machine without internet.

    Args:
        name: A key of ``ENCODERS``.
        out_dir: A folder that does not exist yet (or is empty).

    Returns:
        ``out_dir`` as a path.

    Raises:
        UserError: An unknown name, a non-empty folder, or no internet (one line each).
    """
    if name not in ENCODERS:
        raise UserError(f"unknown encoder {name!r}; valid: {', '.join(ENCODERS)}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not empty: give a new folder")
    load_pretrained(name, ENCODERS[name], "imagenet").save_to_preset(str(out))
    return out
