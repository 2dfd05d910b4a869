"""The CIFAR networks of the knowledge-distillation benchmark (RepDistiller, mdistiller):
ResNets resnet20, resnet56, resnet8x4, resnet32x4 and wide ResNets wrn_16_2, wrn_40_2.

- ResNet: a 3x3 stem conv -> BN -> ReLU, then three stages (stride 1, 2, 2) of post-
  activation basic blocks (conv-BN-ReLU-conv-BN, plus the shortcut, then ReLU); the
  shortcut is a 1x1 conv + BN whenever the stride or the width changes. n = (depth - 2) / 6
  blocks per stage; the "x4" models are four times as wide.
- WRN-d-k: a 3x3 stem conv, three groups of n = (d - 4) / 6 pre-activation blocks
  (BN-ReLU-conv-BN-ReLU-conv); a block that changes width applies its first BN-ReLU to
  the input and takes the 1x1-conv shortcut from that; a final BN-ReLU.
Both end in global average pooling (the 8x8 pool at 32x32) and a linear layer; convs have
no bias. Parameter counts match the published models (tests/models). Each block's sum is
a layer `stage<i>_block<j>` followed by `stage<i>_block<j>_relu` (WRN: the block's sum,
whose ReLU is the next block's), so the blocks can be tapped by name; PyTorch's BN
momentum 0.1 and epsilon 1e-5 are kept.
"""
from __future__ import annotations

import keras
from keras import layers

from ._blocks import LOGITS, RELU_SUFFIX

BN = {"momentum": 0.9, "epsilon": 1e-5}


def _conv(x, filters: int, kernel: int, stride: int, name: str):
    """A bias-free conv padded as PyTorch's padding=kernel // 2: a strided 3x3 conv is
    centred on rows and columns 0, 2, 4, ... like its 1x1 shortcut (TensorFlow's "same"
    would pad after only, centring it on 1, 3, 5, ...)."""
    init = keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")
    padding = "same"
    if stride > 1 and kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                         kernel_initializer=init, name=name)(x)


def _bn(x, name: str):
    return layers.BatchNormalization(name=name, **BN)(x)


def _resnet(input_shape, num_classes, widths: tuple[int, int, int, int], depth: int, name: str):
    blocks = (depth - 2) // 6
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.ReLU(name="stem" + RELU_SUFFIX)(_bn(_conv(inputs, widths[0], 3, 1, "stem"), "stem_bn"))
    channels = widths[0]
    for stage, width in enumerate(widths[1:], start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            tag = f"stage{stage}_block{block}"
            y = layers.ReLU(name=f"{tag}_conv1_relu")(_bn(_conv(x, width, 3, stride, f"{tag}_conv1"), f"{tag}_bn1"))
            y = _bn(_conv(y, width, 3, 1, f"{tag}_conv2"), f"{tag}_bn2")
            shortcut = x
            if stride != 1 or channels != width:
                shortcut = _bn(_conv(x, width, 1, stride, f"{tag}_shortcut"), f"{tag}_shortcut_bn")
            x = layers.ReLU(name=tag + RELU_SUFFIX)(layers.Add(name=tag)([y, shortcut]))
            channels = width
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name=LOGITS)(x), name=name)


def _wrn(input_shape, num_classes, depth: int, widen: int, name: str):
    blocks = (depth - 4) // 6
    widths = (16 * widen, 32 * widen, 64 * widen)
    inputs = keras.Input(shape=input_shape, name="input")
    x = _conv(inputs, 16, 3, 1, "stem")
    channels = 16
    for stage, width in enumerate(widths, start=1):
        for block in range(blocks):
            stride = 2 if stage > 1 and block == 0 else 1
            tag = f"stage{stage}_block{block}"
            activated = layers.ReLU(name=f"{tag}_bn1_relu")(_bn(x, f"{tag}_bn1"))
            y = _conv(activated, width, 3, stride, f"{tag}_conv1")
            y = layers.ReLU(name=f"{tag}_bn2_relu")(_bn(y, f"{tag}_bn2"))
            y = _conv(y, width, 3, 1, f"{tag}_conv2")
            shortcut = x if channels == width and stride == 1 else _conv(activated, width, 1, stride, f"{tag}_shortcut")
            x = layers.Add(name=tag)([y, shortcut])
            channels = width
    x = layers.ReLU(name="final" + RELU_SUFFIX)(_bn(x, "final"))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name=LOGITS)(x), name=name)


def _builder(family, name: str, *shape):
    """A registry entry: (input_shape, num_classes, init) -> the named network. The
    reference code has one initialisation, so init "paper" is "default" here."""
    def build(input_shape, num_classes, init="default"):
        del init
        return family(input_shape, num_classes, *shape, name)
    build.__name__ = name
    return build


resnet20 = _builder(_resnet, "resnet20", (16, 16, 32, 64), 20)
resnet56 = _builder(_resnet, "resnet56", (16, 16, 32, 64), 56)
resnet8x4 = _builder(_resnet, "resnet8x4", (32, 64, 128, 256), 8)
resnet32x4 = _builder(_resnet, "resnet32x4", (32, 64, 128, 256), 32)
wrn_16_2 = _builder(_wrn, "wrn_16_2", 16, 2)
wrn_40_2 = _builder(_wrn, "wrn_40_2", 40, 2)
