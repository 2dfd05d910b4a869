"""Any keras.applications network as a classifier of the runner's data:
``model=keras_app model.arch=MobileNetV3Small`` (or ``student=keras_app student.arch=...``).

The network takes the data set's images as they come ([0, 1], channels last) and returns
logits, like this project's own networks:

    image -> to_rgb      grey repeated to three channels (1-channel data only)
          -> resize      up to the network's minimum size (smaller data only)
          -> preprocess  the network's own preprocess_input, frozen into a Dense(3)
          -> the network without its top (include_top=False)
          -> head_pool   global average pooling
          -> logits      Dense(num_classes), no softmax

The network's layers are the model's own (not a nested model), so settings address them by
name (``distill.features.teacher_layers=[expanded_conv_project_bn]``). Every layer is a
built-in Keras layer: the saved model.keras loads without this project.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

import keras
import numpy as np

from ._blocks import LOGITS
from .app_weights import pretrained_base, weights_file
from .errors import ModelError

HEAD_POOL = "head_pool"
MIN_SIZE = 32  # the smallest input keras.applications accept without their top
MIN_SIZES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}  # the networks that need more


def names() -> list[str]:
    """The keras.applications constructors: the values model.arch takes."""
    return sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n)))


def constructor(arch: str, key: str) -> Callable[..., keras.Model]:
    """keras.applications.<arch>; a one-line error listing the names when there is none."""
    if arch not in names():
        raise ModelError(f"{key}.arch={arch}: keras.applications has no such network; it has: {', '.join(names())}")
    return getattr(keras.applications, arch)


def input_size(arch: str, height: int, width: int) -> tuple[int, int]:
    """The image size the network sees: the data's, raised to the network's minimum."""
    least = MIN_SIZES.get(arch, MIN_SIZE)
    return max(height, least), max(width, least)


def preprocessing(make: Callable, arch: str) -> keras.layers.Dense:
    """The network's own preprocess_input as a frozen Dense(3) on each pixel of a [0, 1] RGB
    image. Every keras.applications preprocessing (none, scaling to [-1, 1], ImageNet mean
    and std, RGB to BGR minus the mean) is an affine map of a pixel's channels, so it is
    read off the function itself at 0 and at each channel's 255, then checked on a random
    pixel."""
    preprocess = importlib.import_module(make.__module__).preprocess_input
    probe = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], "float32")
    out = np.asarray(preprocess(probe.copy()), "float64")  # copy: some versions edit their input in place
    bias, kernel = out[0], out[1:] - out[0]
    pixel = np.random.default_rng(0).random((1, 3))
    expected = np.asarray(preprocess((255 * pixel).astype("float32")), "float64")
    if not np.allclose(pixel @ kernel + bias, expected, rtol=1e-4, atol=1e-3):
        raise ModelError(f"{arch}: its preprocess_input is not a per-pixel affine map; the runner cannot fold it "
                         "into the model (use model=factory with your own preprocessing)")
    return keras.layers.Dense(3, name="preprocess", trainable=False,
                              kernel_initializer=keras.initializers.Constant(kernel.tolist()),
                              bias_initializer=keras.initializers.Constant(bias.tolist()))


def keras_app(arch: str, weights: str | None, input_shape: tuple[int, ...], num_classes: int,
              kwargs: dict | None = None, key: str = "model") -> keras.Model:
    """keras.applications.<arch> without its top, between the input steps and the logits
    head above; weights None (random), "imagenet" or a weights file of the network without
    its top. `kwargs` are further constructor arguments (alpha, minimalistic, ...)."""
    make = constructor(arch, key)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ModelError(f"{key}.arch={arch} takes grey or RGB images (height, width, 1 or 3), but the data has "
                         f"inputs of shape {tuple(input_shape)}: use {key}=factory for other inputs")
    if weights not in (None, "imagenet"):
        weights_file(weights, arch, key)  # refused before the network is built
    size = input_size(arch, input_shape[0], input_shape[1])
    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Concatenate(name="to_rgb")([inputs] * 3) if input_shape[-1] == 1 else inputs
    if size != tuple(input_shape[:2]):
        x = keras.layers.Resizing(*size, name="resize")(x)
    x = preprocessing(make, arch)(x)
    try:
        base = make(include_top=False, weights=None, input_tensor=x, input_shape=(*size, 3), **(kwargs or {}))
    except (TypeError, ValueError) as error:
        raise ModelError(f"{key}.arch={arch} cannot be built with {key}.kwargs={kwargs or {}} "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:200]})") from error
    features = keras.layers.GlobalAveragePooling2D(name=HEAD_POOL)(base.output)
    model = keras.Model(inputs, keras.layers.Dense(num_classes, name=LOGITS)(features), name=arch)
    if weights is not None:
        _copy_weights(pretrained_base(make, arch, weights, size, kwargs or {}, key), model)
    return model


def _copy_weights(source: keras.Model, model: keras.Model) -> None:
    """Each weighted layer of `source` (the network alone, built with the same automatic
    names) into the layer of that name in `model`."""
    for layer in source.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())
