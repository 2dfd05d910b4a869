"""Networks a researcher might write, for `model=factory model.target=tests.models.factory_nets.<name>`:
one that works and one for each mistake the runner refuses."""
from __future__ import annotations

import keras

NOT_CALLABLE = 3


def small_cnn(input_shape, num_classes, width=4):
    """A strided conv (named as this project names layers), then unnamed layers, then the logits."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, strides=2, padding="same", name="conv")(inputs)
    x = keras.layers.ReLU(name="conv_relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16)(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))


def softmax_head(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(keras.layers.Flatten()(inputs)))


def wrong_size(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes + 1)(keras.layers.Flatten()(inputs)))


def not_a_model(input_shape, num_classes):
    return f"a network for {num_classes} classes"


def without_input(input_shape, num_classes):
    return keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(num_classes)])


def broken(input_shape, num_classes):
    raise RuntimeError("the researcher's bug")
