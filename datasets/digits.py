"""scikit-learn's 1,797 8x8 digits: tiny and offline, for quick experiments."""
from __future__ import annotations

from functools import partial
from typing import Any

from .base import Raw, split_seed, to_unit_float

TEST_FRACTION = 0.2


def load(cfg: Any) -> Raw:
    """Stratified 20% test split with split_seed; pixel values 0..16 are scaled by 1/16."""
    from sklearn.datasets import load_digits  # lazy: sklearn import is slow
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_pool, x_test, y_pool, y_test = train_test_split(
        bunch.images, bunch.target, test_size=TEST_FRACTION, stratify=bunch.target,
        random_state=split_seed(cfg))
    return Raw(x_pool, y_pool, x_test, y_test, tuple(str(d) for d in bunch.target_names),
               source="sklearn.datasets.load_digits", prepare=partial(to_unit_float, scale=16.0))
