"""Generated, learnable data for tests: noisy copies of one random prototype per class."""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .base import Raw, option, rng_for, split_seed, to_unit_float
from .errors import DatasetError

NOISE_STD = 0.3


def load(cfg: Any) -> Raw:
    """`num_samples` training pool and max(num_samples // 4, num_classes) test examples."""
    n = int(option(cfg, "num_samples", 2000))
    shape = tuple(int(d) for d in option(cfg, "image_shape", [28, 28, 1]))
    k = int(option(cfg, "num_classes", 10))
    if len(shape) != 3 or min(shape) < 1 or k < 2 or n < 1:
        raise DatasetError(f"synthetic needs image_shape=[H,W,C], num_classes >= 2 and "
                           f"num_samples >= 1, got {list(shape)}, {k}, {n}. Fix: e.g. "
                           "dataset.image_shape=[28,28,1] dataset.num_classes=10.")
    rng = rng_for(split_seed(cfg), "synthetic")
    prototypes = rng.uniform(0.0, 1.0, size=(k, *shape)).astype(np.float32)

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.permutation(np.arange(m) % k)  # balanced classes
        noise = rng.normal(0.0, NOISE_STD, size=(m, *shape)).astype(np.float32)
        return np.clip(prototypes[labels] + noise, 0.0, 1.0), labels

    x_pool, y_pool = draw(n)
    x_test, y_test = draw(max(n // 4, k))
    return Raw(x_pool, y_pool, x_test, y_test, tuple(f"class_{i}" for i in range(k)),
               source=f"synthetic prototypes + N(0, {NOISE_STD}) noise",
               prepare=partial(to_unit_float, scale=1.0))
