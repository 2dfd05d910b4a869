"""LeNet-5 (ReLU + max-pool variant) and a half-width student.

Convs are 5x5 VALID as in the original, which needs images of at least 16x16.
Smaller inputs (e.g. 8x8 digits) fall back to "same" padding for convs and pools
so the model still builds; parameter counts then differ from the 32x32 reference.
"""
from __future__ import annotations

import keras
from keras import layers

from ._blocks import conv_relu, dense_relu, image_padding, init_kwargs, logits

# "paper" initialisation: TruncatedNormal(stddev=0.1) kernels, zero biases.
_PAPER = {"stddev": 0.1, "bias": 0.0}


def _lenet(name, input_shape, num_classes, init, filters):
    padding = image_padding(input_shape, [(5, 2), (5, 2)], name)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = conv_relu(x, f, 5, f"conv{i}", padding, **init_kwargs(init, **_PAPER))
        x = layers.MaxPooling2D(2, padding=padding, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_relu(x, 120, "fc1", **init_kwargs(init, **_PAPER))
    x = dense_relu(x, 84, "fc2", **init_kwargs(init, **_PAPER))
    outputs = logits(x, num_classes, **init_kwargs(init, **_PAPER))
    return keras.Model(inputs, outputs, name=name)


def lenet(input_shape, num_classes, init="default"):
    """LeNet-5: 6 and 16 filters, fc 120/84."""
    return _lenet("lenet", input_shape, num_classes, init, (6, 16))


def lenet_half(input_shape, num_classes, init="default"):
    """Student: half the filters (3 and 8), same fc 120/84."""
    return _lenet("lenet_half", input_shape, num_classes, init, (3, 8))
