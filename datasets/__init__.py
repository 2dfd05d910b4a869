"""Data sets for the distillation experiments: `load(cfg, val_split)` returns a `Dataset`.

Importing this package is cheap: TensorFlow/Keras is imported only if a download is needed.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import cifar, digits, fashion_mnist, mnist, mnist_sample, reconstructed, synthetic
from .base import Dataset, Raw, assemble, option
from .errors import DatasetError

_SOURCES: dict[str, Callable[[Any], Raw]] = {
    "mnist_sample": mnist_sample.load,
    "digits": digits.load,
    "synthetic": synthetic.load,
    "fashion_mnist": fashion_mnist.load,
    "mnist": mnist.load,
    "mnist_conv": mnist.load_conv,
    "cifar10": cifar.load_cifar10,
    "cifar100": cifar.load_cifar100,
    "reconstructed": reconstructed.load,
}
NAMES: tuple[str, ...] = tuple(_SOURCES)

__all__ = ["NAMES", "Dataset", "DatasetError", "load"]


def load(cfg: Any, val_split: float) -> Dataset:
    """Load `cfg.name` (default mnist_sample); validation is the last val_split of the pool."""
    name = str(option(cfg, "name", "mnist_sample"))
    if name not in _SOURCES:
        raise DatasetError(f"unknown dataset {name!r}. Fix: set dataset.name to one of "
                           f"{', '.join(NAMES)}.")
    return assemble(name, _SOURCES[name](cfg), cfg, val_split)
