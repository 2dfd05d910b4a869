"""Data synthesised by a reconstruction procedure (`data.npz` with x, y[, class_names]).

It is training data only: its test split is empty because callers evaluate on the real set.
Values are kept as they are: optimised inputs are not confined to [0, 1] (the data-free
paper does not clip them on MNIST), and a student trained on them must see them unchanged.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .base import Raw, as_labels, option, to_unit_float
from .errors import DatasetError
from .files import existing_path, load_npz

FILE_NAME = "data.npz"
FIX = ("pass dataset.path=/run/dir/data.npz, a file saved with np.savez(path, x=float32 (N,H,W,C), "
       "y=int labels, class_names=[...]).")


def load(cfg: Any) -> Raw:
    """All examples go to the training pool (and hence train/val); test is empty.

    `path` may also be a list of files (shards of one reconstruction, e.g. one per
    group of classes): they are concatenated.
    """
    path = option(cfg, "path")
    if not path:
        raise DatasetError(f"dataset=reconstructed has no file to load. Fix: {FIX}")
    if isinstance(path, (list, tuple)):
        parts = [load({"path": str(p)}) for p in path]
        x = np.concatenate([p.x_pool for p in parts])
        y = np.concatenate([p.y_pool for p in parts])
        names = max((p.class_names for p in parts), key=len)
        return Raw(x, y, x[:0], y[:0], names, source=f"reconstructed: {len(parts)} shards",
                   prepare=partial(to_unit_float, scale=1.0))
    file = existing_path(path, FIX)
    if file.is_dir():
        file = file / FILE_NAME
        if not file.is_file():
            raise DatasetError(f"{file} does not exist. Fix: {FIX}")
    arrays = load_npz(file, keys=("x", "y"))
    x = to_unit_float(arrays["x"], scale=1.0)
    y = as_labels(arrays["y"], str(file))
    if x.size and not np.isfinite(x).all():
        raise DatasetError(f"{file}: the inputs contain NaN or infinite values; re-create them")
    if "class_names" in arrays:
        names = tuple(str(n) for n in arrays["class_names"])
    else:
        names = tuple(f"class_{i}" for i in range(int(y.max()) + 1 if y.size else 0))
    return Raw(x, y, x[:0], y[:0], names, source=f"reconstructed: {Path(file)}",
               prepare=partial(to_unit_float, scale=1.0))
