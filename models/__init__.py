"""Model registry: ``build(name, input_shape, num_classes, init)`` -> Keras model.

Every model is a functional Keras model named after its registry key, takes
channels-last inputs and returns LOGITS (no softmax). Dense/Conv layers have no
activation; each is followed by a ReLU named ``<layer>_relu`` so pre-activations
can be tapped by name (see ``activation_layers``).
"""
from __future__ import annotations

import keras

from . import cifar as _cifar
from . import convnet as _convnet
from . import hinton as _hinton
from . import lenet as _lenet
from . import soft_tree as _soft_tree  # noqa: F401  registers SoftTree, so any tree model.keras loads
from ._blocks import INITS, LOGITS, RELU_SUFFIX
from .errors import ModelError

_REGISTRY = {
    "hinton1200": _hinton.hinton1200,
    "hinton800": _hinton.hinton800,
    "lenet": _lenet.lenet,
    "lenet_half": _lenet.lenet_half,
    "convnet": _convnet.convnet,
    "resnet20": _cifar.resnet20,
    "resnet56": _cifar.resnet56,
    "resnet8x4": _cifar.resnet8x4,
    "resnet32x4": _cifar.resnet32x4,
    "wrn_16_2": _cifar.wrn_16_2,
    "wrn_40_2": _cifar.wrn_40_2,
}
NAMES: tuple[str, ...] = tuple(_REGISTRY)
DROPOUT_MODELS = ("hinton1200", "hinton800")  # the ones whose dropout rates are settings

__all__ = ["DROPOUT_MODELS", "INITS", "NAMES", "ModelError", "activation_layers", "build"]


def build(name: str, input_shape: tuple[int, ...], num_classes: int, init: str = "default",
          dropout: float | None = None, input_dropout: float | None = None) -> keras.Model:
    """Build a fresh, uncompiled model; deterministic under ``keras.utils.set_random_seed``.

    ``dropout`` / ``input_dropout`` replace the architecture's own rates (None keeps them).
    """
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(NAMES)}")
    if init not in INITS:
        raise ModelError(f"unknown init {init!r}; known inits: {', '.join(INITS)}")
    shape, classes = tuple(int(d) for d in input_shape), int(num_classes)
    rates = {k: v for k, v in (("dropout", dropout), ("input_dropout", input_dropout)) if v is not None}
    if rates and name not in DROPOUT_MODELS:
        raise ModelError(f"model {name!r} has no settable dropout ({', '.join(rates)}); "
                         f"models that have: {', '.join(DROPOUT_MODELS)}")
    return _REGISTRY[name](shape, classes, init, **rates)


def activation_layers(model: keras.Model) -> list[str]:
    """Names of the hidden pre-activation layers plus the logits, in network order.

    Found by naming convention (a layer ``X`` followed by ``X_relu``), so it works
    on any model following it, including ones reloaded from ``.keras`` files.
    """
    names = [layer.name for layer in model.layers]
    if LOGITS not in names:
        raise ModelError(f"model {model.name!r} has no {LOGITS!r} layer")
    present = set(names)
    return [n for n in names if n + RELU_SUFFIX in present] + [LOGITS]
