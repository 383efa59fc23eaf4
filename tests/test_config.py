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


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"strategy": "foo"}, "unknown strategy 'foo'; expected one of default, mirrored"),
        ({"precision": "fp8"}, "unknown precision 'fp8'; expected one of auto, float32"),
        ({"steps_per_execution": -5}, "steps per execution must be at least 0, got -5"),
    ],
)
def test_validated_refuses_bad_speed_settings(setting, message):
    from landslide_tf.errors import UserError
    from landslide_tf.training.rundir import validated

    with pytest.raises(UserError, match=message):
        validated(TrainConfig(model="unet", **setting))


def test_validated_accepts_the_speed_settings_it_knows():
    from landslide_tf.training import distribute
    from landslide_tf.training.config import STRATEGIES
    from landslide_tf.training.precision import PRECISIONS
    from landslide_tf.training.rundir import validated

    assert STRATEGIES == tuple(distribute._BUILDERS)  # the TF-free names of the registry
    for strategy in STRATEGIES:
        validated(TrainConfig(model="unet", strategy=strategy))
    for precision in (*PRECISIONS, "mixed"):  # "mixed": a config.json of --mixed-precision
        validated(TrainConfig(model="unet", precision=precision))
    for steps in (0, 1, 8):
        validated(TrainConfig(model="unet", steps_per_execution=steps))


def test_scoring_differences_and_what_fixes_the_epochs():
    from landslide_tf.training.config import epochs_fixed_by, scoring_differences

    base = TrainConfig(model="unet").to_dict()
    assert scoring_differences(base, {**base, "tta": True})[0] == "tta: False -> True"
    assert scoring_differences(base, {**base, "tta_transforms": "dihedral"}) == []  # TTA off
    assert scoring_differences(base, {**base, "epochs": 9, "precision": "float32"}) == []
    assert epochs_fixed_by(TrainConfig()) is None
    assert "cosine" in epochs_fixed_by(TrainConfig(lr_schedule="cosine"))
    tuned = TrainConfig(finetune_loss="lovasz_hinge", finetune_epochs=2)
    assert "fine-tuning phase (the last 2 epochs)" in epochs_fixed_by(tuned)
