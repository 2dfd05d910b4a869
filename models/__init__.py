"""Model registry: ``build(name, input_shape, num_classes, init)`` -> Keras model, and
``network(spec, ...)``, the network of a model section of the config: this project's by
name, any keras.applications constructor (models/keras_app.py) or a user's function
(models/factory.py). A network from a .keras file is loaded by the caller, which owns
artifacts, and made fresh with ``reinitialized``.

Every model is a functional Keras model named after its registry key, takes
channels-last inputs and returns LOGITS (no softmax). Dense/Conv layers have no
activation; each is followed by a ReLU named ``<layer>_relu`` so pre-activations
can be tapped by name (see ``activation_layers``).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import keras

from src.schema.core import FACTORY, KERAS_APP, MODEL_INITS

from . import cifar as _cifar
from . import convnet as _convnet
from . import hinton as _hinton
from . import lenet as _lenet
from . import soft_tree as _soft_tree  # noqa: F401  registers SoftTree, so any tree model.keras loads
from ._blocks import RELU_SUFFIX, fresh_names
from .errors import ModelError
from .factory import from_factory
from .keras_app import keras_app

_REGISTRY = {
    "hinton1200": _hinton.hinton1200,
    "hinton800": _hinton.hinton800,
    "lenet": _lenet.lenet,
    "lenet_half": _lenet.lenet_half,
    "lenet_bn": _lenet.lenet_bn,
    "convnet": _convnet.convnet,
    "resnet20": _cifar.resnet20,
    "resnet56": _cifar.resnet56,
    "resnet8x4": _cifar.resnet8x4,
    "resnet32x4": _cifar.resnet32x4,
    "wrn_16_2": _cifar.wrn_16_2,
    "wrn_40_2": _cifar.wrn_40_2,
}
NAMES: tuple[str, ...] = tuple(_REGISTRY)
# Width families: <family>_x<w> is the family's network with every layer w times as wide
# (lenet_x0.5, convnet_x2), for sweeps over student size (conf/experiment/kd_frontier.yaml).
WIDTH_FAMILIES = {"lenet": _lenet.lenet_width, "convnet": _convnet.convnet}
_WIDTH_NAME = re.compile(r"^(?P<family>[a-z]+)_x(?P<width>\d+(?:\.\d+)?)$")
DROPOUT_MODELS = ("hinton1200", "hinton800")  # the ones whose dropout rates are settings
# The teacher layer of DAFL's activation loss, for the networks DAFL's code defines (its
# LeNet-5 family); any other network has none declared (see dafl_feature_layer).
_DAFL_FEATURES = {"lenet": _lenet.DAFL_FEATURES, "lenet_half": _lenet.DAFL_FEATURES, "lenet_bn": _lenet.DAFL_FEATURES}

__all__ = ["DROPOUT_MODELS", "NAMES", "ModelError", "activation_layers", "build", "check_logits", "dafl_feature_layer",
           "network", "output_layer", "reinitialized"]
ACTIVATIONS = (keras.layers.ReLU, keras.layers.Activation, keras.layers.LeakyReLU, keras.layers.ELU)


def build(name: str, input_shape: tuple[int, ...], num_classes: int, init: str = "default",
          dropout: float | None = None, input_dropout: float | None = None) -> keras.Model:
    """Build a fresh, uncompiled model; deterministic under ``keras.utils.set_random_seed``.

    ``dropout`` / ``input_dropout`` replace the architecture's own rates (None keeps them).
    """
    builder = _REGISTRY.get(name) or _width_builder(name)
    if builder is None:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(NAMES)}, and "
                         f"{', '.join(f'{f}_x<width>' for f in WIDTH_FAMILIES)} (e.g. lenet_x0.5)")
    if init not in MODEL_INITS:
        raise ModelError(f"unknown init {init!r}; known inits: {', '.join(MODEL_INITS)}")
    shape, classes = tuple(int(d) for d in input_shape), int(num_classes)
    rates = {k: v for k, v in (("dropout", dropout), ("input_dropout", input_dropout)) if v is not None}
    if rates and name not in DROPOUT_MODELS:
        raise ModelError(f"model {name!r} has no settable dropout ({', '.join(rates)}); "
                         f"models that have: {', '.join(DROPOUT_MODELS)}")
    return builder(shape, classes, init, **rates)


def _width_builder(name: str):
    """The builder of a width-family name such as lenet_x0.25, or None."""
    match = _WIDTH_NAME.match(name)
    if not match or match["family"] not in WIDTH_FAMILIES or float(match["width"]) <= 0:
        return None
    return functools.partial(WIDTH_FAMILIES[match["family"]], width=float(match["width"]), name=name)


def network(spec: Mapping, input_shape: tuple[int, ...], num_classes: int, key: str = "model") -> keras.Model:
    """A fresh network for a model section (`key`: "model" or "student", which errors
    name): spec["name"] is a registry name, keras_app (spec["arch"], spec["weights"]) or
    factory (spec["target"]); spec["kwargs"] are the constructor's or the function's.
    Deterministic under ``keras.utils.set_random_seed``, layer names included."""
    shape, classes = tuple(int(d) for d in input_shape), int(num_classes)
    with fresh_names():
        if spec["name"] == KERAS_APP:
            return keras_app(spec["arch"], spec["weights"], shape, classes, dict(spec["kwargs"] or {}), key)
        if spec["name"] == FACTORY:
            return check_logits(from_factory(spec["target"], dict(spec["kwargs"] or {}), shape, classes, key),
                                f"{key}.target={spec['target']}")
        return build(spec["name"], shape, classes, init=spec["init"], dropout=spec["dropout"],
                     input_dropout=spec["input_dropout"])


def reinitialized(model: keras.Model) -> keras.Model:
    """The same architecture (every layer name included) with fresh weights from each
    layer's initialisers: deterministic under ``keras.utils.set_random_seed``."""
    with fresh_names():
        return type(model).from_config(model.get_config())


def check_logits(model: keras.Model, what: str) -> keras.Model:
    """`model`, refused when its output layer applies a softmax: the runner's losses and
    temperatures take logits."""
    layer = model.get_layer(output_layer(model))
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if isinstance(layer, keras.layers.Softmax) or activation == "softmax":
        raise ModelError(f"{what}: the output layer {layer.name!r} of {model.name} applies a softmax, but the runner "
                         "takes logits: end in a layer without activation (e.g. Dense(num_classes))")
    return model


def output_layer(model: keras.Model) -> str:
    """The name of the layer that makes the model's (first) output: its logits, whatever
    the layer is called (``logits`` in this project's models)."""
    return model.outputs[0]._keras_history.operation.name


def dafl_feature_layer(name: str) -> str | None:
    """The layer whose output DAFL's activation loss inflates on network `name`, when the
    network declares one (DAFL's own networks, so that the loss reads the features DAFL's
    code reads); None otherwise, for the caller to fall back on the output layer's input."""
    return _DAFL_FEATURES.get(name)


def activation_layers(model: keras.Model) -> list[str]:
    """Names of the hidden pre-activation layers plus the output layer, in network order.

    This project's models (and any that follow their convention) name them: a layer ``X``
    followed by ``X_relu``. A model from elsewhere gets the input of each activation
    layer (ReLU, Activation, ...: a Dense, a BatchNormalization before its ReLU); layers
    with a built-in activation have no pre-activation to tap, so a model made only of
    those gets its output layer alone (``stats.layers`` names any others).
    """
    names = [layer.name for layer in model.layers]
    output, present = output_layer(model), set(names)
    hidden = [n for n in names if n + RELU_SUFFIX in present]
    if not hidden:
        feeding = {layer.input._keras_history.operation.name for layer in model.layers
                   if isinstance(layer, ACTIVATIONS) and not isinstance(layer.input, (list, tuple))}
        hidden = [n for n in names if n in feeding]
    return [n for n in hidden if n != output] + [output]
