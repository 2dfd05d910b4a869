"""LeNet-5 (ReLU + max-pool variant), a half-width student, a BatchNorm variant, and
LeNet-5 at any width (``lenet_x<w>``).

Convs are 5x5 VALID as in the original, which needs images of at least 16x16.
Smaller inputs (e.g. 8x8 digits) fall back to "same" padding for convs and pools
so the model still builds; parameter counts then differ from the 32x32 reference.

``lenet_bn`` is LeNet-5's shape with a BatchNormalization between every hidden conv or
dense layer and its ReLU (``conv1`` -> ``conv1_bn`` -> ``conv1_relu``, as the CIFAR
networks name theirs), so that a teacher carries BN running statistics for
``optimize.objective=batchnorm``. The layers before a BN have no bias (the BN's beta
replaces it); BN momentum 0.9 and epsilon 1e-5 are PyTorch's, as in models/cifar.py.
"""
from __future__ import annotations

import keras
from keras import layers

from ._blocks import RELU_SUFFIX, conv_relu, dense_relu, image_padding, init_kwargs, logits, scaled

# "paper" initialisation: TruncatedNormal(stddev=0.1) kernels, zero biases.
_PAPER = {"stddev": 0.1, "bias": 0.0}
_BN = {"momentum": 0.9, "epsilon": 1e-5}
# The features DAFL's activation loss reads on its LeNet-5: the 120-unit ReLU after conv3,
# the conv that sees the last pooled map whole. fc1 is that conv here (a dense layer on the
# flattened map), so its ReLU is the same 120 features; fc2_relu (84 units) is one layer on.
DAFL_FEATURES = "fc1_relu"


def _lenet(name, input_shape, num_classes, init, filters, units=(120, 84)):
    padding = image_padding(input_shape, [(5, 2), (5, 2)], name)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = conv_relu(x, f, 5, f"conv{i}", padding, **init_kwargs(init, **_PAPER))
        x = layers.MaxPooling2D(2, padding=padding, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_relu(x, units[0], "fc1", **init_kwargs(init, **_PAPER))
    x = dense_relu(x, units[1], "fc2", **init_kwargs(init, **_PAPER))
    outputs = logits(x, num_classes, **init_kwargs(init, **_PAPER))
    return keras.Model(inputs, outputs, name=name)


def lenet(input_shape, num_classes, init="default"):
    """LeNet-5: 6 and 16 filters, fc 120/84."""
    return _lenet("lenet", input_shape, num_classes, init, (6, 16))


def lenet_half(input_shape, num_classes, init="default"):
    """Student: half the filters (3 and 8), same fc 120/84."""
    return _lenet("lenet_half", input_shape, num_classes, init, (3, 8))


def lenet_width(input_shape, num_classes, init="default", width=1.0, name=None):
    """LeNet-5 with every layer `width` times as wide (filters 6w, 16w; fc 120w, 84w;
    rounded, at least 1): the family a width sweep draws its students from (lenet_x<w>)."""
    filters, units = (scaled(n, width) for n in (6, 16)), tuple(scaled(n, width) for n in (120, 84))
    return _lenet(name or f"lenet_x{width:g}", input_shape, num_classes, init, tuple(filters), units)


def _bn_relu(x, layer: layers.Layer):
    """``layer`` (no bias) -> BatchNormalization ``<name>_bn`` -> ReLU ``<name>_relu``."""
    x = layers.BatchNormalization(name=layer.name + "_bn", **_BN)(layer(x))
    return layers.ReLU(name=layer.name + RELU_SUFFIX)(x)


def _no_bias(init: str) -> dict:
    kwargs = init_kwargs(init, **_PAPER)
    kwargs.pop("bias_initializer", None)
    return {"use_bias": False, **kwargs}


def lenet_bn(input_shape, num_classes, init="default"):
    """LeNet-5 with BatchNorm: 6 and 16 filters, fc 120/84, a BN before every hidden ReLU."""
    padding = image_padding(input_shape, [(5, 2), (5, 2)], "lenet_bn")
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, f in enumerate((6, 16), start=1):
        x = _bn_relu(x, layers.Conv2D(f, 5, padding=padding, name=f"conv{i}", **_no_bias(init)))
        x = layers.MaxPooling2D(2, padding=padding, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _bn_relu(x, layers.Dense(120, name="fc1", **_no_bias(init)))
    x = _bn_relu(x, layers.Dense(84, name="fc2", **_no_bias(init)))
    outputs = logits(x, num_classes, **init_kwargs(init, **_PAPER))
    return keras.Model(inputs, outputs, name="lenet_bn")
