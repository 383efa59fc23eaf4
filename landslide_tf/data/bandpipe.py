"""The tf.data pipeline of the multi-band formats, and the dispatching ``make_dataset``.

``landslide_tf.data.make_dataset`` resolves to ``make_dataset`` here: Bijie ``Sample`` lists
go to ``landslide_tf.data.pipeline`` unchanged; ``BandSample`` lists (``l4s``, ``folder``)
are read with ``data.formats.load_band_sample``, normalised and resized with
``landslide_tf.data.band_preprocessing.preprocess_bands`` (the function the export traces) and
batched the same way (cache, shuffle, dihedral augmentation, batch, prefetch).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from landslide_tf.data.augment import AUGMENTATIONS, augment_dataset
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
    from landslide_tf.data.band_preprocessing import preprocess_bands
    from landslide_tf.data.formats import load_band_sample
    from landslide_tf.data.preprocess import preprocess_mask

    image, mask = load_band_sample(sample, data_format, band_indices)
    x = preprocess_bands(image, band_norm, image_size).numpy()
    if mask is None:
        y = np.zeros((image_size, image_size, 1), np.float32)
    else:
        y = preprocess_mask(mask, image_size).numpy()
    return x.astype(np.float32), y.astype(np.float32)


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
    augment_policy: str = "dihedral",
    seed: int = 42,
    cache: bool = True,
    repeat: bool = False,
) -> tf.data.Dataset:
    """``(x (B, S, S, C), y (B, S, S, 1))`` float32 batches of multi-band tiles.

    ``augment_policy`` is a ``landslide_tf.data.augment.AUGMENTATIONS`` name; band inputs get
    its geometric part only (no colour jitter: the bands are standardised reflectances).
    """
    samples = list(samples)
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
        ds = augment_dataset(ds, AUGMENTATIONS[augment_policy](0), seed)
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
