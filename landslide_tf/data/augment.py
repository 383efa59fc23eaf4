"""Paired training augmentation: one geometry for image, DEM and mask; colour for RGB only.

Policies (``AUGMENTATIONS``, chosen with ``--augment-policy`` when ``--augment`` is on):

- ``dihedral``: a random flip and 90-degree rotation (the 8 symmetries of the square),
  identical for the input and its mask; exact, no interpolation.
- ``strong`` (the strong recipe's): ``dihedral``, then a small rotation (up to
  ``MAX_ROTATION_DEG``) and zoom (``1 +- MAX_ZOOM``) about the tile centre, resampled
  bilinearly for the input and with nearest neighbour for the mask (the labels stay 0/1),
  border filled by reflection; then brightness, contrast, saturation and hue jitter on the
  three RGB channels only: the DEM and its derived channels are never recoloured.

Written with TensorFlow image ops (``tf.image.stateless_random_*`` and the
``ImageProjectiveTransformV3`` kernel that Keras' own ``RandomRotation``/``RandomZoom`` use on
the TensorFlow backend) rather than Keras 3 preprocessing layers: the layers draw one
transform per call from their own seed generator, so keeping image, DEM and mask aligned
would mean stacking them into one tensor (then the colour layers would recolour the DEM and
the mask would be interpolated bilinearly); here every tile gets its own stateless seed from
the pipeline's seeded random stream, so a run is reproducible and resumable, and each channel
group gets the transform it needs inside ``tf.data`` (no Keras layer state in the graph).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

#: Largest random rotation of the ``strong`` policy, in degrees.
MAX_ROTATION_DEG = 15.0
#: Largest relative zoom in or out of the ``strong`` policy.
MAX_ZOOM = 0.1
#: Colour jitter of the ``strong`` policy (RGB in [0, 1]).
BRIGHTNESS = 0.08
CONTRAST = (0.85, 1.15)
SATURATION = (0.85, 1.15)
HUE = 0.02

PairFn = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


def augment_pair(x: tf.Tensor, y: tf.Tensor, rand: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Apply the same random flip and 90-degree rotation to a tile and its mask.

    Args:
        x: ``(H, W, C)`` input (square).
        y: ``(H, W, 1)`` mask.
        rand: int64 scalar that picks one of the 8 dihedral transforms.
    """
    channels = tf.shape(x)[-1]
    both = tf.concat([x, y], axis=-1)  # (H, W, C + 1)
    rand = tf.math.floormod(rand, 8)
    both = tf.image.rot90(both, k=tf.cast(rand % 4, tf.int32))
    both = tf.cond(rand >= 4, lambda: tf.image.flip_left_right(both), lambda: both)
    return both[..., :channels], both[..., channels:]


def affine_matrix(angle: tf.Tensor, zoom: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The ``(1, 8)`` projective transform for a rotation and zoom about the centre.

    It maps output pixel ``(x, y)`` to the input point it samples:
    ``centre + R(angle) (out - centre) / zoom`` (zoom > 1 magnifies).
    """
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    a2 = cx - cos * cx + sin * cy
    b2 = cy - sin * cx - cos * cy
    zero = tf.zeros_like(cos)
    return tf.reshape(tf.stack([cos, -sin, a2, sin, cos, b2, zero, zero]), (1, 8))


def _warp(image: tf.Tensor, transform: tf.Tensor, interpolation: str) -> tf.Tensor:
    """Resample ``(H, W, C)`` with a ``(1, 8)`` transform (reflecting the border)."""
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=tf.cast(transform, tf.float32),
        output_shape=tf.shape(image)[:2],
        interpolation=interpolation,
        fill_mode="REFLECT",
        fill_value=0.0,
    )
    return out[0]


def jitter_rgb(rgb: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
    """Brightness, contrast, saturation and hue jitter of an ``(H, W, 3)`` tile in [0, 1].

    Args:
        rgb: the RGB channels only.
        seeds: ``(4, 2)`` stateless seeds, one per jitter.
    """
    rgb = tf.image.stateless_random_brightness(rgb, BRIGHTNESS, seeds[0])
    rgb = tf.image.stateless_random_contrast(rgb, *CONTRAST, seeds[1])
    rgb = tf.image.stateless_random_saturation(rgb, *SATURATION, seeds[2])
    rgb = tf.image.stateless_random_hue(rgb, HUE, seeds[3])
    return tf.clip_by_value(rgb, 0.0, 1.0)


def make_strong(rgb_channels: int) -> PairFn:
    """The ``strong`` policy for inputs whose first ``rgb_channels`` channels are RGB (3 or 0)."""

    def strong_pair(x: tf.Tensor, y: tf.Tensor, rand: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x, y = augment_pair(x, y, rand)  # (H, W, C), (H, W, 1)
        seed = tf.stack([tf.cast(rand, tf.int64), tf.constant(12, tf.int64)])
        seeds = tf.random.experimental.stateless_split(seed, num=6)  # (6, 2)
        angle = tf.random.stateless_uniform((), seeds[0], -MAX_ROTATION_DEG, MAX_ROTATION_DEG) * (
            math.pi / 180.0
        )
        zoom = tf.exp(
            tf.random.stateless_uniform((), seeds[1], math.log1p(-MAX_ZOOM), math.log1p(MAX_ZOOM))
        )
        shape = x.shape
        transform = affine_matrix(angle, zoom, int(shape[0]), int(shape[1]))
        x = _warp(x, transform, "BILINEAR")
        y = _warp(y, transform, "NEAREST")
        if rgb_channels:
            rgb = jitter_rgb(x[..., :rgb_channels], seeds[2:])
            x = tf.concat([rgb, x[..., rgb_channels:]], axis=-1)
        return tf.ensure_shape(x, shape), tf.ensure_shape(y, y.shape)

    return strong_pair


#: policy name -> builder(rgb_channels) -> pair function ``(x, y, rand) -> (x, y)``.
AUGMENTATIONS: dict[str, Callable[[int], PairFn]] = {
    "dihedral": lambda rgb_channels: augment_pair,
    "strong": make_strong,
}


def make_augmenter(policy: str, modalities: str) -> PairFn:
    """The pair function of a policy for a modality string (``rgb+dem``, ``rgb``, ``dem``).

    Raises:
        ValueError: unknown policy (``rundir.validate_config`` reports it to users first).
    """
    if policy not in AUGMENTATIONS:
        raise ValueError(
            f"unknown augment policy {policy!r}; expected one of {list(AUGMENTATIONS)}"
        )
    return AUGMENTATIONS[policy](3 if modalities in ("rgb+dem", "rgb") else 0)


def augment_dataset(ds: tf.data.Dataset, pair_fn: PairFn, seed: int) -> tf.data.Dataset:
    """Map ``pair_fn`` over ``(x, y)`` elements with one seeded random draw per element and pass.

    The draws come from ``tf.data.Dataset.random`` re-randomized every iteration, so each epoch
    sees new transforms while a seed reproduces the run.
    """
    rand = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    # Plain graph code: skipping AutoGraph's source transformation saves its tracing time.
    @tf.autograph.experimental.do_not_convert
    def apply(pair, r):
        return pair_fn(pair[0], pair[1], r)

    return tf.data.Dataset.zip((ds, rand)).map(
        apply,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
