"""Stand-ins shared by the test modules: a model with a known answer, and the checks of a
command that must stop in one line before its model loads."""

from __future__ import annotations

import keras


def constant_model(bias: float, size: int = 32) -> keras.Model:
    """``(N, size, size, 4)`` -> the probability ``sigmoid(bias)`` everywhere."""
    inputs = keras.Input((size, size, 4), name="image")
    logits = keras.layers.Conv2D(
        1, 1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(bias),
        name="logits",
    )(inputs)  # fmt: skip
    prob = keras.layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(inputs, prob)


def not_loaded(*args, **kwargs):
    """Put in place of a model loader: the options were to be refused before it ran."""
    raise AssertionError("the model was loaded before the options were checked")


def one_line(capsys) -> str:
    """The one ``error:`` line a command printed on stderr."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err
