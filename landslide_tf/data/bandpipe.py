"""The tf.data pipeline of the multi-band formats, and the dispatching ``make_dataset``.

``landslide_tf.data.make_dataset`` resolves to ``make_dataset`` here: Bijie ``Sample`` lists
go to ``landslide_tf.data.pipeline`` unchanged; ``BandSample`` lists (``l4s``, ``folder``)
are read with ``data.formats.load_band_sample``, normalised and resized with
``landslide_tf.band_preprocessing.preprocess_bands`` (the function the export traces) and
batched the same way (cache, shuffle, dihedral augmentation, batch, prefetch).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from landslide_tf.data.bands import BandSample


def load_band_tile(
    sample: BandSample,
    *,
    image_size: int,
    data_format: str,
    band_indices: Sequence[int],
    band_norm: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """One tile as network input ``x (S, S, C)`` and mask ``y (S, S, 1)`` float32."""
    from landslide_tf.band_preprocessing import preprocess_bands
    from landslide_tf.data.formats import load_band_sample
    from landslide_tf.preprocessing import preprocess_mask

    image, mask = load_band_sample(sample, data_format, band_indices)
    x = preprocess_bands(image, band_norm, image_size).numpy()
    if mask is None:
        y = np.zeros((image_size, image_size, 1), np.float32)
    else:
        y = preprocess_mask(mask, image_size).numpy()
    return x.astype(np.float32), y.astype(np.float32)


def _dihedral(x: tf.Tensor, y: tf.Tensor, rand: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The same one of the 8 flips/90-degree rotations for ``x (H, W, C)`` and ``y (H, W, 1)``.

    Kept here (not imported from ``pipeline``) so the Bijie pipeline can change freely.
    """
    channels = tf.shape(x)[-1]
    both = tf.concat([x, y], axis=-1)  # (H, W, C + 1)
    rand = tf.math.floormod(rand, 8)
    both = tf.image.rot90(both, k=tf.cast(rand % 4, tf.int32))
    both = tf.cond(rand >= 4, lambda: tf.image.flip_left_right(both), lambda: both)
    return both[..., :channels], both[..., channels:]


def make_band_dataset(
    samples: Sequence[BandSample],
    *,
    image_size: int = 128,
    data_format: str = "l4s",
    band_indices: Sequence[int] = (),
    band_norm: dict[str, Any] | None = None,
    batch_size: int = 2,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 42,
    cache: bool = True,
    repeat: bool = False,
    augment_policy: str = "dihedral",
) -> tf.data.Dataset:
    """``(x (B, S, S, C), y (B, S, S, 1))`` float32 batches of multi-band tiles.

    ``augment_policy`` is taken for the same call as ``pipeline.make_dataset`` (fitting
    passes it); multi-band tiles get the dihedral flips/rotations only (the ``strong``
    colour jitter is defined on RGB channels), with a warning when ``strong`` was asked for.
    """
    samples = list(samples)
    if augment and augment_policy != "dihedral":
        logging.getLogger(__name__).warning(
            "multi-band tiles get dihedral augmentation only (not %r)", augment_policy
        )
    if not samples:
        raise ValueError("make_dataset needs at least one sample")
    if band_norm is None:
        raise ValueError("multi-band data needs band_norm (the training statistics)")
    options = {
        "image_size": image_size,
        "data_format": data_format,
        "band_indices": list(band_indices),
        "band_norm": band_norm,
    }
    if cache:
        pairs = [load_band_tile(s, **options) for s in samples]
        ds = tf.data.Dataset.from_tensor_slices(
            (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
        )
    else:
        x0, y0 = load_band_tile(samples[0], **options)

        def generate() -> Iterable[tuple[np.ndarray, np.ndarray]]:
            for sample in samples:
                yield load_band_tile(sample, **options)

        ds = tf.data.Dataset.from_generator(
            generate,
            output_signature=(
                tf.TensorSpec(x0.shape, tf.float32),
                tf.TensorSpec(y0.shape, tf.float32),
            ),
        )
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(samples)))
    if shuffle:
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    if augment:
        rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, rand)).map(
            lambda pair, r: _dihedral(pair[0], pair[1], r),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    ds = ds.batch(batch_size)
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE)


def _is_band(samples: Any) -> bool:
    return isinstance(samples, Sequence) and bool(samples) and isinstance(samples[0], BandSample)


def make_dataset(samples: Sequence[Any], **options: Any) -> tf.data.Dataset:
    """``landslide_tf.data.make_dataset``: Bijie samples -> ``pipeline.make_dataset``,
    multi-band samples -> ``make_band_dataset`` (options from ``runs.dataset_options``)."""
    if _is_band(list(samples)):
        return make_band_dataset(samples, **options)
    from landslide_tf.data import pipeline

    return pipeline.make_dataset(samples, **options)


def load_tile(sample: Any, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """One tile as network input and mask, for Bijie and multi-band samples alike."""
    if isinstance(sample, BandSample):
        return load_band_tile(sample, **options)
    from landslide_tf.data.bijie import load_sample

    return load_sample(sample, **options)


def display_input(x: np.ndarray, config: Any) -> tuple[np.ndarray, str]:
    """``(what to show, its modalities)``: multi-band inputs become a stretched RGB."""
    if config.data_format in ("l4s", "folder"):
        from landslide_tf.data.bands import display_rgb

        return display_rgb(x, config.bands), "rgb"
    return x, config.modalities
