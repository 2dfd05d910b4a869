"""Building blocks shared by the model families.

The naming convention lives here: a Dense/Conv layer ``X`` has no activation and is
followed by a ReLU layer named ``X + RELU_SUFFIX``; the output layer is ``LOGITS``.
``activation_layers`` relies on nothing else, so it also works on reloaded models.
"""
from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator, Sequence

import keras
from keras import layers

from src.schema.core import MODEL_INITS

from .errors import ModelError

RELU_SUFFIX = "_relu"
LOGITS = "logits"


def init_kwargs(init: str, stddev: float, bias: float) -> dict:
    """Initialiser kwargs for ONE layer.

    Called once per layer so every layer gets its own initialiser instance (and its
    own seed drawn from the global RNG, hence reproducible under
    ``keras.utils.set_random_seed``). "default" means Keras defaults.
    """
    if init == "default":
        return {}
    return {
        "kernel_initializer": keras.initializers.TruncatedNormal(stddev=stddev),
        "bias_initializer": keras.initializers.Constant(bias),
    }


def dense_relu(x, units: int, name: str, dropout: float = 0.0, **kwargs):
    """Dense (pre-activation output addressable as ``name``) -> ReLU -> optional Dropout."""
    x = layers.Dense(units, name=name, **kwargs)(x)
    x = layers.ReLU(name=name + RELU_SUFFIX)(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def conv_relu(x, filters: int, kernel: int, name: str, padding: str, **kwargs):
    """Conv2D without activation -> separate ReLU, for the same reason as ``dense_relu``."""
    x = layers.Conv2D(filters, kernel, padding=padding, name=name, **kwargs)(x)
    return layers.ReLU(name=name + RELU_SUFFIX)(x)


def logits(x, num_classes: int, **kwargs):
    """Final linear layer: logits only, softmax/temperature belong to the losses."""
    return layers.Dense(num_classes, name=LOGITS, **kwargs)(x)


def scaled(units: int, width: float) -> int:
    """A layer's size at `width` times its reference size: rounded, at least 1."""
    return max(1, int(round(units * width)))


def image_padding(input_shape: Sequence[int], stages: Sequence[tuple[int, int]], model: str) -> str:
    """"valid" if the VALID conv/pool stack fits the image, else the "same" fallback.

    ``stages`` is a list of (conv kernel, pool size after it; 1 = no pool). Small
    images such as scikit-learn's 8x8 digits would shrink below one pixel, so
    there the convs and pools switch to "same" padding and the model still builds.
    """
    if len(input_shape) != 3:
        raise ModelError(
            f"{model} needs an image input (height, width, channels), got {tuple(input_shape)}"
        )
    size = min(int(input_shape[0]), int(input_shape[1]))
    for kernel, pool in stages:
        size = (size - kernel + 1) // pool
        if size < 1:
            return "same"
    return "valid"


@contextlib.contextmanager
def fresh_names() -> Iterator[None]:
    """Layers left unnamed get the same automatic names (activation, activation_1, ...) in
    every build inside this block, whatever this process built before: keras.applications
    and users' functions leave many layers unnamed, and settings address layers by name
    (distill.features.*, stats.layers), so the network checked before a run and the one
    trained in it must agree."""
    from keras.src.backend.common import global_state  # the counters behind Keras' automatic names
    saved = global_state.get_global_attribute("object_name_uids")
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        global_state.set_global_attribute("object_name_uids", saved)
