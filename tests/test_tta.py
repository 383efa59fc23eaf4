"""Tests for landslide_tf.inference.tta: flip averaging in evaluate and in the raw-input graph."""

import numpy as np
import tensorflow as tf

from landslide_tf.data.spec import bijie_spec
from landslide_tf.inference.predictor import raw_probability
from landslide_tf.inference.settings import InferenceSettings
from landslide_tf.inference.tta import FLIP_AXES, apply_model, flip_average


def _corner_model(x):
    """A deliberately non-equivariant model: the top-left pixel's red value, everywhere."""
    return tf.ones_like(x[..., :1]) * x[:, :1, :1, :1]


def test_flip_average_is_the_mean_of_four_flipped_passes():
    x = tf.constant(np.random.default_rng(0).uniform(size=(2, 6, 6, 3)), tf.float32)
    got = flip_average(_corner_model, x).numpy()
    corners = [x[:, 0, 0, 0], x[:, 0, -1, 0], x[:, -1, 0, 0], x[:, -1, -1, 0]]
    expected = np.mean([c.numpy() for c in corners], axis=0)
    np.testing.assert_allclose(got[:, 2, 3, 0], expected, rtol=1e-6)
    assert len(FLIP_AXES) == 4


def test_flip_average_maps_each_prediction_back():
    x = tf.constant(np.random.default_rng(1).uniform(size=(1, 5, 7, 3)), tf.float32)
    identity = flip_average(lambda t: t[..., :1], x)  # an equivariant model is unchanged
    np.testing.assert_allclose(identity.numpy(), x.numpy()[..., :1], rtol=1e-6)
    np.testing.assert_allclose(
        apply_model(_corner_model, x, tta=False).numpy(), _corner_model(x).numpy()
    )


def test_raw_probability_applies_tta_when_the_settings_say_so():
    image = tf.constant(np.random.default_rng(2).integers(0, 255, (1, 8, 8, 3)), tf.uint8)
    plain = InferenceSettings(bijie_spec(8, "rgb"))
    tta = InferenceSettings(bijie_spec(8, "rgb"), tta=True)
    a = raw_probability(_corner_model, image, None, plain).numpy()
    b = raw_probability(_corner_model, image, None, tta).numpy()
    assert not np.allclose(a, b)
    x = image.numpy()[0].astype(np.float32) / 255.0
    mean_corner = np.mean([x[0, 0, 0], x[0, -1, 0], x[-1, 0, 0], x[-1, -1, 0]])
    np.testing.assert_allclose(b[0, 4, 4], mean_corner, rtol=1e-5)
    assert InferenceSettings.from_dict({"tta": True}).tta is True
    assert InferenceSettings.from_dict({}).tta is False


def _directional_model(x):
    """Shape-agnostic and not equivariant: the running sum of the red channel along rows."""
    return tf.cumsum(x[..., :1], axis=2)


def test_dihedral_average_is_the_mean_over_the_eight_symmetries_of_the_square():
    from landslide_tf.inference.tta import TTA_TRANSFORMS

    x = np.random.default_rng(3).uniform(size=(2, 6, 6, 3)).astype(np.float32)
    expected = []
    for k in range(4):  # the 8 symmetries as rotations, each with and without a mirror
        for mirror in (False, True):
            view = np.rot90(x, k, axes=(1, 2))
            view = view[:, :, ::-1] if mirror else view
            prob = _directional_model(tf.constant(np.ascontiguousarray(view))).numpy()
            prob = prob[:, :, ::-1] if mirror else prob
            expected.append(np.rot90(prob, -k, axes=(1, 2)))
    got = flip_average(_directional_model, tf.constant(x), "dihedral").numpy()
    np.testing.assert_allclose(got, np.mean(expected, axis=0), rtol=1e-5)
    assert len(TTA_TRANSFORMS["dihedral"]) == 8 and len(TTA_TRANSFORMS["flips"]) == 4
    flips = flip_average(_directional_model, tf.constant(x), "flips").numpy()
    assert not np.allclose(got, flips)  # the transposed passes add something


def test_dihedral_average_keeps_a_non_square_shape_and_an_equivariant_model():
    x = tf.constant(np.random.default_rng(4).uniform(size=(1, 5, 7, 3)), tf.float32)
    got = apply_model(lambda t: t[..., :1], x, tta=True, transforms="dihedral")
    assert got.shape == (1, 5, 7, 1)
    np.testing.assert_allclose(got.numpy(), x.numpy()[..., :1], rtol=1e-6)


def test_unknown_transforms_and_transforms_without_tta_are_one_line_errors(tmp_path):
    import json

    import pytest

    from landslide_tf.errors import UserError
    from landslide_tf.inference.predictor import Predictor

    x = tf.zeros((1, 4, 4, 3))
    with pytest.raises(UserError, match="unknown --tta-transforms 'rot'"):
        flip_average(_corner_model, x, "rot")
    (tmp_path / "config.json").write_text(json.dumps({"modalities": "rgb", "tta": False}))
    with pytest.raises(UserError, match="needs flip averaging on: add --tta"):
        Predictor.load(tmp_path, tta_transforms="dihedral")
    with pytest.raises(UserError, match="unknown --tta-transforms"):
        Predictor.load(tmp_path, tta=True, tta_transforms="rot")


def test_settings_carry_the_transforms_and_old_runs_read_as_flips():
    settings = InferenceSettings(bijie_spec(8, "rgb"), tta=True, tta_transforms="dihedral")
    again = InferenceSettings.from_dict(settings.to_dict())
    assert again.tta and again.tta_transforms == "dihedral"
    assert InferenceSettings.from_dict({"tta": True}).tta_transforms == "flips"
    image = tf.constant(np.random.default_rng(5).integers(0, 255, (1, 8, 8, 3)), tf.uint8)
    flips = raw_probability(
        _directional_model, image, None, settings.replace(tta_transforms="flips")
    )
    d4 = raw_probability(_directional_model, image, None, settings)
    assert not np.allclose(flips.numpy(), d4.numpy())  # the raw-input graph uses the setting


def test_the_recipe_names_the_registry_and_refuses_unknown_transforms():
    import pytest

    from landslide_tf.errors import UserError
    from landslide_tf.inference.tta import TTA_TRANSFORMS
    from landslide_tf.training.config import TrainConfig
    from landslide_tf.training.recipe import TTA_TRANSFORM_NAMES, validate_recipe

    assert tuple(TTA_TRANSFORMS) == TTA_TRANSFORM_NAMES
    validate_recipe(TrainConfig(tta=True, tta_transforms="dihedral"))
    with pytest.raises(UserError, match="unknown --tta-transforms 'rot'"):
        validate_recipe(TrainConfig(tta=True, tta_transforms="rot"))
