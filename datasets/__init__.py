"""Data sets for the distillation experiments: `load(cfg, val_split, store)` returns a
`Dataset`, and `identity(cfg, store)` is what keys a run's data in the run store.

Built-in sets are named by their config. A user's own files (dataset=folder, npz, tfds:
docs/data.md) are named by their content, so the same files reuse runs wherever they
lie, and one changed file makes new ones; they are read once into the store's cache.
Importing this package is cheap: TensorFlow/Keras is imported only if a download is needed.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from src.schema.core import USER_DATA

from . import cifar, digits, fashion_mnist, folder, mnist, mnist_sample, npz, reconstructed, stream, synthetic, tfds
from .base import SPLITS, Dataset, Raw, dataset_of, option, plan
from .cache import Cache
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
# A user's files: content(cfg, cache) -> {"fingerprint", "class_names"}; load(cfg, cache) -> Raw.
_USER: dict[str, ModuleType] = {"folder": folder, "npz": npz, "tfds": tfds}
NAMES: tuple[str, ...] = (*_SOURCES, *_USER)
COMMON = ("name", "split_seed", "train_limit", "test_limit", "val_count")  # what every source reads
WHERE = ("path", "data_dir")  # where files lie: never part of a user's data identity

__all__ = ["NAMES", "Dataset", "DatasetError", "identity", "load"]


def _name(cfg: Any) -> str:
    name = str(option(cfg, "name", "mnist_sample"))
    if name not in NAMES:
        raise DatasetError(f"unknown dataset {name!r}. Fix: set dataset.name to one of "
                           f"{', '.join(NAMES)}.")
    return name


def _plain(cfg: Any) -> dict:
    if isinstance(cfg, dict):
        return dict(cfg)
    if hasattr(cfg, "__dataclass_fields__") or not hasattr(cfg, "items"):
        return dict(vars(cfg))
    from omegaconf import OmegaConf  # a DictConfig
    return OmegaConf.to_container(cfg, resolve=True)


def identity(cfg: Any, store: str | Path | None = None) -> dict:
    """What keys a run's data: a built-in set's config (without the settings only a user's
    files read); for a user's files, the settings their source reads and their content
    (fingerprint and class names) in place of where they lie."""
    name, plain = _name(cfg), _plain(cfg)
    user_only = {k for keys in USER_DATA.values() for k in keys} - {"path"}
    if name not in _USER:
        return {k: v for k, v in plain.items() if k not in user_only and k not in stream.HOW_HELD}
    settings = {k: plain.get(k) for k in (*COMMON, *USER_DATA[name]) if k not in WHERE}
    return {**settings, **_USER[name].content(cfg, Cache(store))}


def load(cfg: Any, val_split: float, store: str | Path | None = None, in_memory_for: str | None = None) -> Dataset:
    """Load `cfg.name` (default mnist_sample); validation is the last val_split of the pool
    unless the data brings its own. A user's files are cached in the run store `store`.
    Streamed (dataset.stream, datasets/stream.py), the splits are memory-mapped from the
    store; else they are float32 arrays in memory. `in_memory_for` names a procedure that
    cannot stream: data that would stream is refused for it, before any is written."""
    name = _name(cfg)
    raw = _USER[name].load(cfg, Cache(store)) if name in _USER else _SOURCES[name](cfg)
    planned = plan(name, raw, cfg, val_split)
    if stream.wanted(cfg, planned, store is not None):
        if in_memory_for:
            raise stream.refuse(cfg, planned, in_memory_for)
        return stream.streamed(planned, identity(cfg, store), val_split, store)
    return dataset_of(planned, {split: planned.prepared(split) for split in SPLITS})
