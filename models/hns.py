"""Hide-and-Seek networks: hiders (autoencoders that map an
image to a mask) and seekers (classifiers of the masked image).

Kept out of the classifier registry (models/__init__.py) because a hider is no
classifier: `build_hider(name, input_shape, mask_channels)` and
`build_seeker(name, input_shape, num_classes)` are its own lookups.

Every layer is named (`hider_*`, `seeker_*`), so weights move between a pretrained
stand-alone hider/seeker and the joint model by layer name, never by layer order.
Like every model here they output pre-activations: the hider returns the mask's
logits a (the sigmoid map is sigmoid(a), applied by the binary layer or the
reconstruction loss), the seeker returns class logits.
"""
from __future__ import annotations

import keras
from keras import layers

from .errors import ModelError

HIDER_OUTPUT = "hider_logits"
SEEKER_OUTPUT = "seeker_logits"


def _side(input_shape, multiple: int, name: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ModelError(f"{name} needs an image input (height, width, channels), got {tuple(input_shape)}")
    h, w, c = (int(d) for d in input_shape)
    if h % multiple or w % multiple:
        raise ModelError(f"{name} needs height and width divisible by {multiple} (its stride-2 stack must "
                         f"come back to the input size), got {h}x{w}: use hider_small (multiples of 4) or "
                         f"another dataset")
    return h, w, c


def _check_mask_channels(mask_channels: int, channels: int, name: str) -> None:
    if mask_channels not in (1, channels):
        raise ModelError(f"{name}: hns.mask_channels={mask_channels} must be 1 (one mask for every colour "
                         f"channel) or {channels} (one per input channel)")


def _hider(input_shape, mask_channels: int, encoder: list[int], decoder: list[int], depth: int,
           name: str) -> keras.Model:
    """Autoencoder: stride-2 convs -> linear code Dense(H*5) -> Dense -> reshape ->
    stride-2 transposed convs -> 1x1 conv to the mask's logits."""
    h, w, c = _side(input_shape, 2 ** depth, name)
    _check_mask_channels(mask_channels, c, name)
    inputs = keras.Input((h, w, c), name="hider_input")
    x = inputs
    for i, filters in enumerate(encoder, 1):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", activation="relu", name=f"hider_conv{i}")(x)
    x = layers.Flatten(name="hider_flatten")(x)
    x = layers.Dense(h * 5, name="hider_code")(x)
    cells = (h // 2 ** depth, w // 2 ** depth)
    start = 16 if depth == 2 else 64
    x = layers.Dense(cells[0] * cells[1] * start, name="hider_expand")(x)
    x = layers.Reshape((*cells, start), name="hider_reshape")(x)
    for i, filters in enumerate(decoder, 1):
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation="relu",
                                   name=f"hider_deconv{i}")(x)
    x = layers.Conv2D(mask_channels, 1, name=HIDER_OUTPUT)(x)
    return keras.Model(inputs, x, name=name)


def hider_small(input_shape, mask_channels: int = 1) -> keras.Model:
    return _hider(input_shape, mask_channels, [32, 64], [8, 4], 2, "hider_small")


def hider_large(input_shape, mask_channels: int = 1) -> keras.Model:
    return _hider(input_shape, mask_channels, [32, 64, 128, 256, 256], [64, 32, 16, 8, 4], 5, "hider_large")


def _seeker(input_shape, num_classes: int, filters: list[int], name: str) -> keras.Model:
    inputs = keras.Input(tuple(int(d) for d in input_shape), name="seeker_input")
    x = inputs
    for i, f in enumerate(filters, 1):
        x = layers.Conv2D(f, 4, strides=2, padding="same", activation="relu", name=f"seeker_conv{i}")(x)
    x = layers.Flatten(name="seeker_flatten")(x)
    x = layers.Dense(num_classes, name=SEEKER_OUTPUT)(x)
    return keras.Model(inputs, x, name=name)


def seeker_small(input_shape, num_classes: int) -> keras.Model:
    return _seeker(input_shape, num_classes, [32, 64, 128], "seeker_small")


def seeker_large(input_shape, num_classes: int) -> keras.Model:
    return _seeker(input_shape, num_classes, [32, 64, 128, 256, 256], "seeker_large")


def seeker_resnet(input_shape, num_classes: int) -> keras.Model:
    """ResNet50 trunk (random init: weights=None, nothing is downloaded) -> Flatten -> Dense."""
    h, w, c = _side(input_shape, 1, "seeker_resnet")
    if min(h, w) < 32:
        raise ModelError(f"seeker_resnet (ResNet50) needs inputs of at least 32x32, got {h}x{w}: "
                         f"use hns.seeker=seeker_small for small images")
    inputs = keras.Input((h, w, c), name="seeker_input")
    trunk = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(h, w, c),
                                        name="seeker_resnet50")
    x = trunk(inputs)
    x = layers.Flatten(name="seeker_flatten")(x)
    x = layers.Dense(num_classes, name=SEEKER_OUTPUT)(x)
    return keras.Model(inputs, x, name="seeker_resnet")


HIDERS = {"hider_small": hider_small, "hider_large": hider_large}
SEEKERS = {"seeker_small": seeker_small, "seeker_large": seeker_large, "seeker_resnet": seeker_resnet}


def build_hider(name: str, input_shape, mask_channels: int = 1) -> keras.Model:
    if name not in HIDERS:
        raise ModelError(f"unknown hider {name!r}; known hiders: {', '.join(HIDERS)}")
    return HIDERS[name](input_shape, mask_channels)


def build_seeker(name: str, input_shape, num_classes: int) -> keras.Model:
    if name not in SEEKERS:
        raise ModelError(f"unknown seeker {name!r}; known seekers: {', '.join(SEEKERS)}")
    return SEEKERS[name](input_shape, int(num_classes))
