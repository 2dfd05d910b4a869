"""Hinton et al. (2015) MNIST MLPs: the big dropout teacher and the small student."""
from __future__ import annotations

import keras
from keras import layers

from ._blocks import dense_relu, init_kwargs, logits

# "paper" initialisation: TruncatedNormal(stddev=1.0) kernels, 0.1 biases.
_PAPER = {"stddev": 1.0, "bias": 0.1}


def _mlp(name, input_shape, num_classes, init, units, input_dropout, dropout):
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Flatten(name="flatten")(inputs)  # any input shape works
    if input_dropout:
        x = layers.Dropout(input_dropout, name="input_dropout")(x)
    for i, n in enumerate(units, start=1):
        x = dense_relu(x, n, f"fc{i}", dropout=dropout, **init_kwargs(init, **_PAPER))
    outputs = logits(x, num_classes, **init_kwargs(init, **_PAPER))
    return keras.Model(inputs, outputs, name=name)


def hinton1200(input_shape, num_classes, init="default", dropout=0.5, input_dropout=0.2):
    """Teacher: 2x1200 ReLU, dropout 0.2 on inputs and 0.5 on hidden units (model.dropout,
    model.input_dropout replace them)."""
    return _mlp("hinton1200", input_shape, num_classes, init, (1200, 1200), input_dropout, dropout)


def hinton800(input_shape, num_classes, init="default", dropout=0.0, input_dropout=0.0):
    """Student: 2x800 ReLU, no dropout (regularised only by distillation) unless asked for."""
    return _mlp("hinton800", input_shape, num_classes, init, (800, 800), input_dropout, dropout)
