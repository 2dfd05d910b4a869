"""The Keras MNIST example CNN (conv32-conv64-pool-fc128), a common KD teacher.

Uses Keras default initialisers for both inits: its source has no other scheme.
Like LeNet, images too small for the VALID stack fall back to "same" padding.
"""
from __future__ import annotations

import keras
from keras import layers

from ._blocks import conv_relu, dense_relu, image_padding, logits, scaled


def convnet(input_shape, num_classes, init="default", width=1.0, name="convnet"):
    """conv 32 3x3 -> conv 64 3x3 -> pool 2 -> dropout .25 -> fc 128 -> dropout .5; every
    layer `width` times as wide for convnet_x<w> (rounded, at least 1)."""
    del init  # "paper" == "default" here
    padding = image_padding(input_shape, [(3, 1), (3, 2)], name)
    inputs = keras.Input(shape=input_shape, name="input")
    x = conv_relu(inputs, scaled(32, width), 3, "conv1", padding)
    x = conv_relu(x, scaled(64, width), 3, "conv2", padding)
    x = layers.MaxPooling2D(2, padding=padding, name="pool1")(x)
    x = layers.Dropout(0.25, name="pool1_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_relu(x, scaled(128, width), "fc1", dropout=0.5)
    outputs = logits(x, num_classes)
    return keras.Model(inputs, outputs, name=name)
