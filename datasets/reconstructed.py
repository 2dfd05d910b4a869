"""Data synthesised by a reconstruction procedure (`data.npz` with x, y[, class_names]).

It is training data only: its test split is empty because callers evaluate on the real set.
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
TOLERANCE = 1e-3  # float noise allowed outside [0, 1]; it is clipped away
FIX = ("pass dataset.path=/run/dir/data.npz, a file saved with np.savez(path, x=float32 (N,H,W,C) "
       "in [0, 1], y=int labels, class_names=[...]).")


def load(cfg: Any) -> Raw:
    """All examples go to the training pool (and hence train/val); test is empty."""
    path = option(cfg, "path")
    if not path:
        raise DatasetError(f"dataset=reconstructed has no file to load. Fix: {FIX}")
    file = existing_path(path, FIX)
    if file.is_dir():
        file = file / FILE_NAME
        if not file.is_file():
            raise DatasetError(f"{file} does not exist. Fix: {FIX}")
    arrays = load_npz(file, keys=("x", "y"))
    x = to_unit_float(arrays["x"], scale=1.0)
    y = as_labels(arrays["y"], str(file))
    if x.size and (x.min() < -TOLERANCE or x.max() > 1 + TOLERANCE):
        raise DatasetError(f"{file}: images span [{x.min():.3g}, {x.max():.3g}], not [0, 1]. Fix: "
                           "rescale before saving (e.g. (x + 1) / 2 for tanh outputs).")
    np.clip(x, 0.0, 1.0, out=x)
    if "class_names" in arrays:
        names = tuple(str(n) for n in arrays["class_names"])
    else:
        names = tuple(f"class_{i}" for i in range(int(y.max()) + 1 if y.size else 0))
    return Raw(x, y, x[:0], y[:0], names, source=f"reconstructed: {Path(file)}",
               prepare=partial(to_unit_float, scale=1.0))
