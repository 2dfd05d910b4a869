"""dataset=npz: a user's arrays in one .npz file, in the keys of Keras' mnist.npz

    x_train, y_train, x_test, y_test [, x_val, y_val] [, class_names]
    x, y [, class_names]                               the test split carved per class

Images are (N, H, W) or (N, H, W, C), uint8 in [0, 255] or float in [0, 1]; labels are
integer class indices. Every check names the key it refuses and the fix.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from .base import Raw, carve_test, option, split_seed, to_unit_float
from .cache import Cache, digest
from .errors import DatasetError
from .files import existing_path, load_npz

SPLITS = ("train", "val", "test")
SAVE = ("save it with np.savez(file, x_train=..., y_train=..., x_test=..., y_test=...) "
        "or np.savez(file, x=..., y=...)")


def _layout(file: Path, keys: list[str]) -> list[str]:
    """The suffixes of the file's splits: train, test (and val), or "" for x, y."""
    if "x_train" in keys or "x_test" in keys:
        wanted = ["x_train", "y_train", "x_test", "y_test"] + (["x_val", "y_val"] if {"x_val", "y_val"} & set(keys)
                                                               else [])
        missing = [k for k in wanted if k not in keys]
        if missing:
            raise DatasetError(f"{file} lacks the key {missing[0]} (it has {', '.join(keys)}); fix: {SAVE}")
        return [s for s in SPLITS if f"x_{s}" in keys]
    if "x" in keys or "y" in keys:
        for k in ("x", "y"):
            if k not in keys:
                raise DatasetError(f"{file} lacks the key {k} (it has {', '.join(keys)}); fix: {SAVE}")
        return [""]
    raise DatasetError(f"{file} has neither x_train, y_train, x_test, y_test nor x, y (it has "
                       f"{', '.join(keys) or 'no arrays'}); fix: {SAVE}")


def _images(file: Path, key: str, x: np.ndarray) -> np.ndarray:
    """x as (N, H, W, C), refused unless uint8, or finite float in [0, 1]."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DatasetError(f"{file}: {key} has shape {x.shape}; fix: store images as (N, H, W) or (N, H, W, C)")
    if np.issubdtype(x.dtype, np.floating):
        if x.size and not np.isfinite(x).all():
            raise DatasetError(f"{file}: {key} holds NaN or infinite values; fix: replace them (images are float "
                               "in [0, 1] or uint8 in [0, 255])")
        if x.size and (x.min() < 0 or x.max() > 1):
            raise DatasetError(f"{file}: {key} is float with values from {x.min():g} to {x.max():g}, outside [0, 1]; "
                               "fix: divide by 255, or store it as uint8 in [0, 255]")
    elif x.dtype != np.uint8:
        raise DatasetError(f"{file}: {key} has dtype {x.dtype}; fix: store images as uint8 in [0, 255] or float in "
                           "[0, 1] (e.g. x.astype(np.uint8))")
    return x


def _labels(file: Path, key: str, y: np.ndarray, count: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{file}: {key} has dtype {y.dtype} and shape {y.shape}; fix: store integer class "
                           "indices of shape (N,) (e.g. y.argmax(axis=1) for one-hot labels)")
    if len(y) != count:
        raise DatasetError(f"{file}: {key} has {len(y)} labels but x{key[1:]} has {count} images; fix: save one "
                           "label per image")
    return y.astype(np.int64)


def read(cfg: Any) -> tuple[Path, dict[str, np.ndarray], tuple[str, ...]]:
    """The checked arrays of dataset.path ({"x_train": (N, H, W, C), "y_train": int64, ...})
    and the class names."""
    file = existing_path(option(cfg, "path"), f"set dataset.path to an .npz file; {SAVE}")
    if file.is_dir():
        raise DatasetError(f"dataset.path={file} is a folder, not an .npz file; fix: point it at the file, or "
                           "use dataset=folder for a folder of images")
    stored = load_npz(file, keys=())
    arrays = {}
    for part in _layout(file, sorted(stored)):
        suffix = f"_{part}" if part else ""
        x = _images(file, f"x{suffix}", stored[f"x{suffix}"])
        arrays[f"x{suffix}"], arrays[f"y{suffix}"] = x, _labels(file, f"y{suffix}", stored[f"y{suffix}"], len(x))
    shapes = {k: v.shape[1:] for k, v in arrays.items() if k.startswith("x")}
    first = next(iter(shapes))
    for key, shape in shapes.items():
        if shape != shapes[first]:
            raise DatasetError(f"{file}: {key} holds images of shape {shape} but {first} of {shapes[first]}; fix: "
                               "store every split at one size and channel count")
    labels = np.concatenate([v for k, v in arrays.items() if k.startswith("y")])
    if "class_names" in stored:
        names = tuple(str(n) for n in np.asarray(stored["class_names"]).reshape(-1))
    else:
        names = tuple(f"class_{i}" for i in range(int(labels.max()) + 1 if labels.size else 0))
    for key, y in arrays.items():
        if key.startswith("y") and y.size and (y.min() < 0 or y.max() >= len(names)):
            raise DatasetError(f"{file}: {key} has labels from {y.min()} to {y.max()}, outside 0..{len(names) - 1} "
                               f"({len(names)} classes{' in class_names' if 'class_names' in stored else ''}); fix: "
                               "store class indices from 0" + (", one class name each" if "class_names" in stored
                                                               else ""))
    return file, arrays, names


def _fingerprint(cfg: Any) -> dict:
    """A hash of every array's dtype, shape and bytes, and the class names."""
    _, arrays, names = read(cfg)
    parts = [(k, str(v.dtype), v.shape, hashlib.sha256(np.ascontiguousarray(v).data).hexdigest())
             for k, v in sorted(arrays.items())]
    return {"fingerprint": digest(parts, names), "class_names": list(names)}


def content(cfg: Any, cache: Cache) -> dict:
    """What the file holds, for the run key: its fingerprint and class names."""
    file = existing_path(option(cfg, "path"), f"set dataset.path to an .npz file; {SAVE}")
    stat = os.stat(file)
    return cache.content(digest("npz", str(file.resolve()), stat.st_size, stat.st_mtime_ns), lambda: _fingerprint(cfg))


def _unit(x: np.ndarray) -> np.ndarray:
    return to_unit_float(x, 255.0 if x.dtype == np.uint8 else 1.0)


def load(cfg: Any, cache: Cache) -> Raw:
    file, a, names = read(cfg)
    if "x" in a:
        is_test = carve_test(a["y"], float(option(cfg, "test_fraction", 0.2)), split_seed(cfg))
        a = {"x_train": a["x"][~is_test], "y_train": a["y"][~is_test], "x_test": a["x"][is_test],
             "y_test": a["y"][is_test]}
    return Raw(a["x_train"], a["y_train"], a["x_test"], a["y_test"], names, source=f"npz file {file}",
               prepare=_unit, x_val=a.get("x_val"), y_val=a.get("y_val"))
