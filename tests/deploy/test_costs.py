"""MACs per layer type against counts made by hand, on batches of several examples, and
against TensorFlow's profiler on this project's networks (FLOPs = 2 x MACs for
convolutions and matrix products)."""
from __future__ import annotations

import keras
import pytest

import models
from src.deploy.costs import PROFILED_MAC_OPS, count_macs, profiled_flops

L = keras.layers
BATCH = 3


def _one_layer(input_shape, layer) -> keras.Model:
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, layer(inputs))


# (input shape, layer, MACs per example by hand)
HAND = {
    # 10 inputs -> 4 units: 40 products
    "dense": ((10,), L.Dense(4), 10 * 4),
    # Dense on every one of 5 positions: 5 x 10 x 4
    "dense_3d": ((5, 10), L.Dense(4), 5 * 10 * 4),
    # 8x8x3, 3x3 valid -> 6x6x4 outputs, 27 products each
    "conv_valid": ((8, 8, 3), L.Conv2D(4, 3), 6 * 6 * 4 * 27),
    # same padding, stride 2: ceil(8/2) = 4 -> 4x4x4 outputs
    "conv_same_stride2": ((8, 8, 3), L.Conv2D(4, 3, strides=2, padding="same"), 4 * 4 * 4 * 27),
    # valid, stride 2: floor((8-3)/2)+1 = 3 -> 3x3x4
    "conv_valid_stride2": ((8, 8, 3), L.Conv2D(4, 3, strides=2), 3 * 3 * 4 * 27),
    # groups 2: each output sees 3x3x(4/2) inputs; 6x6x6 outputs
    "conv_groups": ((8, 8, 4), L.Conv2D(6, 3, groups=2), 6 * 6 * 6 * 9 * 2),
    # 1x1 conv = a Dense per pixel: 8x8 x 3 x 5
    "conv_1x1": ((8, 8, 3), L.Conv2D(5, 1), 8 * 8 * 3 * 5),
    # depthwise 3x3, multiplier 2: 6x6 positions x 3 channels x 2 x 9
    "depthwise": ((8, 8, 3), L.DepthwiseConv2D(3, depth_multiplier=2), 6 * 6 * 3 * 2 * 9),
    # separable: depthwise 6x6x3x9 + pointwise 6x6x3x4
    "separable": ((8, 8, 3), L.SeparableConv2D(4, 3), 6 * 6 * 3 * 9 + 6 * 6 * 3 * 4),
    # transpose 3x3 stride 2 on 4x4x2 -> every input pixel scatters 3x3x5 products per channel
    "transpose": ((4, 4, 2), L.Conv2DTranspose(5, 3, strides=2), 4 * 4 * 3 * 3 * 2 * 5),
    "conv1d": ((10, 3), L.Conv1D(4, 3), 8 * 4 * 3 * 3),
    "batchnorm": ((8, 8, 3), L.BatchNormalization(), 0),
    "maxpool": ((8, 8, 3), L.MaxPooling2D(2), 0),
    "avgpool": ((8, 8, 3), L.AveragePooling2D(2), 0),
    "global_pool": ((8, 8, 3), L.GlobalAveragePooling2D(), 0),
    "relu": ((8, 8, 3), L.ReLU(), 0),
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_each_layer_type_counts_as_by_hand(name):
    shape, layer, per_example = HAND[name]
    count = count_macs(_one_layer(shape, layer), batch=BATCH)
    assert count.total == BATCH * per_example and not count.uncounted
    assert count_macs(_one_layer(shape, layer.__class__.from_config(layer.get_config()))).total == per_example


def test_a_network_sums_its_layers_and_a_nested_model_is_walked():
    inner = keras.Sequential([keras.Input((8, 8, 3)), L.Conv2D(4, 3, name="c"), L.BatchNormalization(name="bn")],
                             name="inner")
    inputs = keras.Input((8, 8, 3))
    x = L.Flatten(name="flat")(L.MaxPooling2D(2, name="pool")(inner(inputs)))
    model = keras.Model(inputs, L.Dense(10, name="logits")(x))
    count = count_macs(model, batch=BATCH)
    assert count.per_layer == {"c": BATCH * 6 * 6 * 4 * 27, "logits": BATCH * 3 * 3 * 4 * 10}
    assert count.total == sum(count.per_layer.values())


def test_a_weighted_layer_of_an_unknown_type_is_listed_not_guessed():
    inputs = keras.Input((4, 8))
    model = keras.Model(inputs, L.MultiHeadAttention(2, 4, name="attention")(inputs, inputs))
    assert count_macs(model).uncounted == ["attention (MultiHeadAttention)"]


def test_lenet_by_hand():
    """28x28x1: conv1 24x24x6 x 25, conv2 8x8x16 x 150, fc 256x120, 120x84, 84x10."""
    model = models.build("lenet", (28, 28, 1), 10)
    assert count_macs(model, batch=BATCH).total == BATCH * (
        24 * 24 * 6 * 25 + 8 * 8 * 16 * 150 + 256 * 120 + 120 * 84 + 84 * 10)


NETWORKS = [("lenet", (28, 28, 1)), ("lenet_half", (28, 28, 1)), ("lenet_bn", (28, 28, 1)),
            ("lenet_x0.25", (28, 28, 1)), ("convnet", (28, 28, 1)), ("convnet_x0.5", (28, 28, 1)),
            ("hinton800", (28, 28, 1)), ("resnet20", (32, 32, 3)), ("wrn_16_2", (32, 32, 3))]


@pytest.mark.parametrize("name,shape", NETWORKS, ids=[n for n, _ in NETWORKS])
def test_the_count_equals_the_profiler_s_on_the_project_s_networks(name, shape):
    model = models.build(name, shape, 10)
    flops = profiled_flops(model, batch=2)
    assert count_macs(model, batch=2).total * 2 == sum(v for op, v in flops.items() if op in PROFILED_MAC_OPS)
