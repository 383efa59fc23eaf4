"""One answer per model whichever way it is run: a run interrupted and resumed ends as one
run straight through."""

import keras
import pytest

from landslide_tf.experiments.run import train
from landslide_tf.training import runstate as rs
from landslide_tf.training.config import TrainConfig


def _tiny(synth_dir, run_dir, **overrides) -> TrainConfig:
    values = dict(model="unet", data=str(synth_dir), run_dir=str(run_dir), epochs=2,
                  image_size=32, base_filters=4, depth=2, batch_size=4, lr=1e-2,
                  dropout=0.0, precision="float32", augment=True)  # fmt: skip
    values.update(overrides)
    return TrainConfig(**values)


class _CtrlCAfter(keras.callbacks.Callback):
    """Ctrl-C once epoch ``number`` is committed (the run's own callbacks come first)."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.number:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "extra",
    [{}, {"finetune_loss": "dice", "finetune_epochs": 1}],
    ids=["one-fit", "resumed-at-the-finetuning"],
)
def test_a_resumed_run_trains_on_the_data_order_of_an_unbroken_one(
    synth_dir, tmp_path, monkeypatch, extra
):
    """Shuffling and augmentation are seeded and drawn anew each epoch: the epochs after a
    resume must get the draws of those epochs, not the first epoch's again, or the resumed
    run ends with another history, checkpoint and metrics than the same run unbroken."""
    unbroken = train(_tiny(synth_dir, tmp_path / "unbroken", **extra), verbose=0)

    original_fit = keras.Model.fit

    def interrupted_fit(model, *args, **kwargs):
        kwargs["callbacks"] = [*kwargs["callbacks"], _CtrlCAfter(1)]
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(synth_dir, tmp_path / "resumed", **extra), verbose=0)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    resumed = train(_tiny(synth_dir, tmp_path / "resumed", **extra), verbose=0)
    assert resumed["resumed_from"] == 1

    def history(name):
        rows = rs.read_history(tmp_path / name / rs.HISTORY_FILE)
        return [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]

    assert [r["epoch"] for r in history("resumed")] == [1, 2]
    for mine, theirs in zip(history("resumed"), history("unbroken"), strict=True):
        assert mine == pytest.approx(theirs, rel=1e-4, abs=1e-6)
    best = [rs.read_state(tmp_path / n)["best_epoch"] for n in ("resumed", "unbroken")]
    assert best[0] == best[1]
    for key in ("miou", "f1", "threshold"):
        assert resumed[key] == pytest.approx(unbroken[key], rel=1e-4, abs=1e-6)
