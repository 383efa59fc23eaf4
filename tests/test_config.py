"""TrainConfig defaults, paper losses and the JSON round trip."""

import pytest

from landslide_tf.training.config import TrainConfig, default_loss_for, num_channels


@pytest.mark.parametrize(
    ("model", "loss"),
    [
        ("unet", "bce"),
        ("unet_spatial_ctx", "bce"),
        ("resunet", "wce"),
        ("unetpp", "dice"),
        ("unetpp_spatial", "dice"),
        ("unetpp_ctx", "dice"),
        ("unetpp_spatial_ctx", "dice"),
    ],
)
def test_paper_best_loss_per_family(model, loss):
    assert default_loss_for(model) == loss
    assert TrainConfig(model=model).resolved().loss == loss


def test_explicit_loss_wins():
    assert TrainConfig(model="unet", loss="focal").resolved().loss == "focal"


def test_paper_defaults():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.image_size, cfg.dropout) == (
        1e-5,
        2,
        50,
        128,
        0.5,
    )
    assert cfg.modalities == "rgb+dem" and cfg.channels == 4


def test_json_round_trip(tmp_path):
    cfg = TrainConfig(model="resunet", loss_kwargs={"class_weights": [0.6, 3.1]}, derived=["slope"])
    cfg.save(tmp_path / "config.json")
    back = TrainConfig.load(tmp_path / "config.json")
    assert back == cfg
    assert back.channels == 5


def test_unknown_keys_are_ignored():
    assert TrainConfig.from_dict({"model": "unet", "from_the_future": 1}).model == "unet"


@pytest.mark.parametrize(
    ("modalities", "derived", "expected"),
    [("rgb+dem", [], 4), ("rgb", [], 3), ("dem", [], 1), ("rgb+dem", ["slope", "hillshade"], 6)],
)
def test_num_channels(modalities, derived, expected):
    assert num_channels(modalities, derived) == expected


def test_bad_modalities():
    with pytest.raises(ValueError, match="unknown modalities 'rgbd'"):
        num_channels("rgbd")
    with pytest.raises(ValueError, match="need a DEM"):
        num_channels("rgb", ["slope"])
