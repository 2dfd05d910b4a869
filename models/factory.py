"""A network from a researcher's own Python function, without a change to the runner:
``model=factory model.target=package.module.function +model.kwargs.width=32``.

The function is called as ``function(input_shape, num_classes, **model.kwargs)`` and
returns a keras.Model with one output: the logits (no softmax), as this project's networks
do. The module must be importable from where main.py runs (PYTHONPATH=. or an installed
package). Custom layers must be registered (``keras.saving.register_keras_serializable``)
so that a saved model.keras loads again; importing the module registers them, which
`load_module` does before the runner loads a model the function built.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import keras

from .errors import ModelError


def _split(target: str, key: str) -> tuple[str, str]:
    module, _, name = (target or "").rpartition(".")
    if not module or not name:
        raise ModelError(f"{key}.target={target}: give package.module.function")
    return module, name


def load_module(target: str, key: str = "model") -> ModuleType:
    """The module of `target`, imported; a one-line error when it does not import."""
    module, _ = _split(target, key)
    try:
        return importlib.import_module(module)
    except Exception as error:  # ModuleNotFoundError, or the module's own error on import
        raise ModelError(f"{key}.target={target}: cannot import {module} ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]}); put it on the import path (PYTHONPATH=.)") from error


def source_file(target: str, key: str = "model") -> Path | None:
    """The file that defines `target`'s module (None for a built-in one): what keys the
    network, so that editing the function makes new runs."""
    origin = getattr(load_module(target, key), "__file__", None)
    return Path(origin) if origin else None


def function(target: str, key: str = "model") -> Callable[..., keras.Model]:
    """The function `target` names; a one-line error when it is missing or not callable."""
    _, name = _split(target, key)
    found = getattr(load_module(target, key), name, None)
    if found is None:
        raise ModelError(f"{key}.target={target}: module {target.rpartition('.')[0]} has no {name}")
    if not callable(found):
        raise ModelError(f"{key}.target={target} is a {type(found).__name__}, not a function "
                         f"(input_shape, num_classes, **kwargs) -> keras.Model")
    return found


def from_factory(target: str, kwargs: dict, input_shape: tuple[int, ...], num_classes: int,
                 key: str = "model") -> keras.Model:
    """The network `target(input_shape, num_classes, **kwargs)` builds, checked: a
    keras.Model taking the data's inputs and giving num_classes outputs."""
    make = function(target, key)
    try:
        model = make(tuple(input_shape), int(num_classes), **kwargs)
    except Exception as error:
        raise ModelError(f"{key}.target={target} failed when called as {target.rpartition('.')[2]}(input_shape="
                         f"{tuple(input_shape)}, num_classes={num_classes}, **{kwargs}) ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]})") from error
    if not isinstance(model, keras.Model):
        raise ModelError(f"{key}.target={target} returned a {type(model).__name__}, not a keras.Model: "
                         "return keras.Model(inputs, logits)")
    if not hasattr(model, "outputs"):  # a subclassed model, or a Sequential without an Input
        raise ModelError(f"{key}.target={target} returned a model without a graph of layers (subclassed, or a "
                         "Sequential without an Input): build it on keras.Input(input_shape), functional or "
                         "Sequential, so that its layers can be named and it saves as model.keras")
    if len(model.outputs) != 1:
        raise ModelError(f"{key}.target={target} returned a model with {len(model.outputs)} outputs: "
                         f"return one, the logits of the {num_classes} classes")
    if tuple(model.output_shape[1:]) != (num_classes,):
        raise ModelError(f"{key}.target={target} returned a model with outputs of shape {tuple(model.output_shape[1:])}"
                         f", but the data has {num_classes} classes: end in Dense(num_classes)")
    if tuple(model.input_shape[1:]) != tuple(input_shape):
        raise ModelError(f"{key}.target={target} returned a model taking inputs of shape "
                         f"{tuple(model.input_shape[1:])}, but the data's are {tuple(input_shape)}: "
                         "build keras.Input(input_shape)")
    return model
