"""CIFAR-10 / CIFAR-100 (32x32x3) from a Keras .npz or the extracted python-pickle folder,
else the Keras download."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from . import download
from .base import Raw, option
from .errors import DatasetError
from .files import existing_path, load_keras_npz

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")
CIFAR100_NAMES = tuple(f"class_{i}" for i in range(100))

# variant -> (pickle folder, training files, test file, label key, meta file, names key)
LAYOUT = {
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                "test_batch", b"labels", "batches.meta", b"label_names"),
    "cifar100": ("cifar-100-python", ("train",), "test", b"fine_labels", "meta",
                 b"fine_label_names"),
}


def _fix(variant: str) -> str:
    folder = LAYOUT[variant][0]
    return (f"pass dataset.path=/path/to/{variant}.npz (a Keras-style npz with x_train, y_train, "
            f"x_test, y_test) or dataset.path=/path/to/{folder} (the extracted python version "
            "from https://www.cs.toronto.edu/~kriz/cifar.html).")


def _unpickle(file: Path) -> dict:
    """One CIFAR pickle (the official python format; only load files you trust)."""
    try:
        with open(file, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as exc:
        raise DatasetError(f"{file}: cannot be read as a CIFAR pickle ({type(exc).__name__}: "
                           f"{exc}); it is truncated or corrupt. Fix: extract a fresh copy."
                           ) from exc


def _load_pickles(folder: Path, variant: str) -> tuple[tuple, tuple[str, ...]]:
    """Arrays and class names from the extracted python-pickle folder."""
    subfolder, train_files, test_file, label_key, meta_file, names_key = LAYOUT[variant]
    if (folder / subfolder).is_dir():
        folder = folder / subfolder
    missing = [f for f in (*train_files, test_file) if not (folder / f).is_file()]
    if missing:
        raise DatasetError(f"{folder} lacks the CIFAR files {missing}. Fix: {_fix(variant)}")

    def read(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        batches = [_unpickle(folder / n) for n in names]
        x = np.concatenate([np.asarray(b[b"data"], np.uint8) for b in batches])
        y = np.concatenate([np.asarray(b[label_key], np.int64) for b in batches])
        return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y  # stored as CHW rows

    x_train, y_train = read(train_files)
    x_test, y_test = read((test_file,))
    names = CIFAR10_NAMES if variant == "cifar10" else CIFAR100_NAMES
    if (folder / meta_file).is_file():
        names = tuple(n.decode() for n in _unpickle(folder / meta_file)[names_key])
    return (x_train, y_train, x_test, y_test), names


def _load(cfg: Any, variant: str) -> Raw:
    path = option(cfg, "path")
    names = CIFAR10_NAMES if variant == "cifar10" else CIFAR100_NAMES
    if not path:
        arrays = download.fetch(variant, looked_in="dataset.path (not set)", fix=_fix(variant))
        return Raw(*arrays, class_names=names, source=f"keras.datasets.{variant}")
    p = existing_path(path, _fix(variant))
    if p.is_file() and p.suffix == ".npz":
        arrays = load_keras_npz(p)
    elif p.is_dir():
        arrays, names = _load_pickles(p, variant)
    else:
        raise DatasetError(f"dataset.path={path} is neither an .npz file nor a folder. "
                           f"Fix: {_fix(variant)}")
    return Raw(*arrays, class_names=names, source=f"local files: {path}")


def load_cifar10(cfg: Any) -> Raw:
    """CIFAR-10: 50k training pool, 10k test."""
    return _load(cfg, "cifar10")


def load_cifar100(cfg: Any) -> Raw:
    """CIFAR-100 with the 100 fine labels: 50k training pool, 10k test."""
    return _load(cfg, "cifar100")
