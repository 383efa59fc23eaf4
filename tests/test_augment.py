"""Tests for landslide_tf.data.augment: one geometry for image, DEM and mask; colour on RGB only."""

import numpy as np
import pytest
import tensorflow as tf

from landslide_tf.data.augment import (
    AUGMENTATIONS,
    affine_matrix,
    augment_pair,
    make_augmenter,
)
from landslide_tf.training.recipe import AUGMENT_POLICIES

SIZE = 32


def _tile(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RGB + DEM tile whose channels are all the same pattern, mask = that pattern > 0.5."""
    rng = np.random.default_rng(seed)
    base = np.zeros((SIZE, SIZE), np.float32)
    base[6:14, 9:25] = 1.0
    base[20:27, 3:8] = 1.0
    noise = rng.uniform(0, 0.2, (SIZE, SIZE)).astype(np.float32)
    pattern = np.clip(base * 0.7 + noise, 0, 1)
    x = np.stack([pattern] * 4, axis=-1)  # (H, W, 4): R, G, B, DEM
    y = base[..., None]
    return x, y


def test_registry_names_match_the_cli_choices():
    assert tuple(AUGMENTATIONS) == AUGMENT_POLICIES


def test_identity_transform_matrix_is_identity():
    m = affine_matrix(tf.constant(0.0), tf.constant(1.0), SIZE, SIZE).numpy()
    np.testing.assert_allclose(m, [[1, 0, 0, 0, 1, 0, 0, 0]], atol=1e-6)


@pytest.mark.parametrize("rand", [0, 3, 5, 123456789])
def test_strong_moves_dem_and_mask_together_and_leaves_dem_values_uncoloured(rand):
    x, y = _tile()
    fn = make_augmenter("strong", "rgb+dem")
    xa, ya = fn(tf.constant(x), tf.constant(y), tf.constant(rand, tf.int64))
    xa, ya = xa.numpy(), ya.numpy()
    assert xa.shape == x.shape and ya.shape == y.shape
    assert set(np.unique(ya)) <= {0.0, 1.0}  # nearest neighbour: labels stay 0/1
    dem = xa[..., 3]
    # the DEM only moved: its values are interpolations of the original range, never recoloured
    assert dem.min() >= x[..., 3].min() - 1e-5 and dem.max() <= x[..., 3].max() + 1e-5
    # the mask follows the DEM: high DEM where the mask is 1, low where 0 (same geometry)
    inside, outside = dem[ya[..., 0] == 1], dem[ya[..., 0] == 0]
    assert inside.mean() > 0.6 and outside.mean() < 0.25


def test_strong_recolours_rgb_but_not_the_dem():
    x, y = _tile()
    fn = make_augmenter("strong", "rgb+dem")
    xa, _ = fn(tf.constant(x), tf.constant(y), tf.constant(7, tf.int64))
    xa = xa.numpy()
    # all channels were equal before; the geometry is shared, so any RGB/DEM difference is colour
    assert np.abs(xa[..., :3] - xa[..., 3:4]).max() > 1e-3
    # with the dihedral + warp only (no colour: DEM-only input), nothing is recoloured
    dem_only = make_augmenter("strong", "dem")
    xd, _ = dem_only(tf.constant(x[..., 3:]), tf.constant(y), tf.constant(7, tf.int64))
    np.testing.assert_allclose(xd.numpy()[..., 0], xa[..., 3], atol=1e-6)


def test_strong_is_deterministic_per_seed_and_varies_across_seeds():
    x, y = _tile()
    fn = make_augmenter("strong", "rgb")
    a = fn(tf.constant(x[..., :3]), tf.constant(y), tf.constant(11, tf.int64))[0].numpy()
    b = fn(tf.constant(x[..., :3]), tf.constant(y), tf.constant(11, tf.int64))[0].numpy()
    c = fn(tf.constant(x[..., :3]), tf.constant(y), tf.constant(12, tf.int64))[0].numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_dihedral_policy_is_the_exact_pair_transform():
    x, y = _tile()
    fn = make_augmenter("dihedral", "rgb+dem")
    assert fn is augment_pair
    xa, ya = fn(tf.constant(x), tf.constant(y), tf.constant(5, tf.int64))
    expected = np.fliplr(np.rot90(x, k=1))
    np.testing.assert_array_equal(xa.numpy(), expected)


def test_pipeline_with_strong_augmentation_keeps_shapes(synth_dir):
    from bijie_options import make_dataset

    from landslide_tf.data import find_samples

    samples = find_samples(synth_dir)[:4]
    ds = make_dataset(samples, image_size=SIZE, batch_size=4, augment=True, augment_policy="strong")
    x, y = next(iter(ds))
    assert x.shape == (4, SIZE, SIZE, 4) and y.shape == (4, SIZE, SIZE, 1)
    assert set(np.unique(y.numpy())) <= {0.0, 1.0}
