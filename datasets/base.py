"""The one object every loader returns, and the split helpers they share."""
from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    """Train / validation / test arrays of one data set.

    Images are float32 in [0, 1], channels last (N, H, W, C); labels are int64 class
    indices. Validation is always carved out of the training split, never the test split.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    facts: dict = field(default_factory=dict)  # what every run on this data records in its metrics

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train(self) -> dict[str, np.ndarray]:
        """The training split as the fit loop takes it: {"x": inputs, "y": labels}."""
        return {"x": self.x_train, "y": self.y_train}

    @property
    def val(self) -> dict[str, np.ndarray]:
        return {"x": self.x_val, "y": self.y_val}

    @property
    def test(self) -> dict[str, np.ndarray]:
        return {"x": self.x_test, "y": self.y_test}


# --------------------------------------------------------------------------------------
# Shared helpers: every source hands a `Raw` to `plan`, which applies the one
# shuffle / limit / validation-split policy so all sources behave the same way.
# --------------------------------------------------------------------------------------
def option(cfg: Any, key: str, default: Any = None) -> Any:
    """One config field from a DictConfig, namespace or dict; missing or None gives `default`."""
    if isinstance(cfg, Mapping):
        value = cfg.get(key, default)
    else:
        value = getattr(cfg, key, default)
    return default if value is None else value


def split_seed(cfg: Any) -> int:
    """The seed of every shuffle/split; not the run seed, so all runs share one test split."""
    seed = option(cfg, "split_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"dataset.split_seed={seed!r} is not a non-negative integer; "
                           "fix: set dataset.split_seed=0 (or another integer >= 0).")
    return seed


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, purpose)."""
    return np.random.default_rng([seed, zlib.crc32(purpose.encode())])


def as_labels(y: Any, where: str) -> np.ndarray:
    """Integer class indices as a flat int64 vector (Keras CIFAR labels come as (N, 1))."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise DatasetError(f"{where}: labels must be integer class indices of shape (N,), got "
                           f"dtype {y.dtype} shape {y.shape}; fix: store argmax class indices.")
    return y.astype(np.int64)


def to_unit_float(x: Any, scale: float = 255.0) -> np.ndarray:
    """float32 (N, H, W, C) images divided by `scale`; a missing channel axis is added."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DatasetError(f"images must have shape (N, H, W) or (N, H, W, C), got {x.shape}; "
                           "fix: store one image per row, channels last.")
    if scale == 1:
        return x.astype(np.float32)
    return np.divide(x, np.float32(scale), dtype=np.float32)  # one pass: cast, then divide in float32


class Rows:
    """Some rows of an array, read only when indexed: a split of a memory-mapped source
    stays on disk until its examples are gathered."""

    def __init__(self, array: np.ndarray, positions: np.ndarray):
        self.array, self.positions = array, np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.positions), *self.array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.array[self.positions[index]]


@dataclass(frozen=True)
class Raw:
    """What a source returns: a training pool and a test split, before shuffling/limits.

    `prepare` turns raw images into float32 [0, 1] NHWC; it runs after the limits so that
    expensive conversions (e.g. resizing) only touch the examples actually kept. A source
    whose data comes with its own validation split gives it as x_val, y_val; otherwise
    validation is carved from the pool.
    """

    x_pool: Any
    y_pool: Any
    x_test: Any
    y_test: Any
    class_names: tuple[str, ...]
    source: str
    prepare: Callable[[Any], np.ndarray] = to_unit_float
    x_val: Any = None
    y_val: Any = None
    facts: dict = field(default_factory=dict)


def carve_test(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified test mask: round(fraction * n) examples of each class of n (at least
    one and at most n - 1 when n >= 2), drawn with the split seed."""
    rng = rng_for(seed, "test_carve")
    is_test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        n = len(members)
        take = min(max(int(round(fraction * n)), 1 if n >= 2 else 0), max(n - 1, 0))
        is_test[rng.permutation(members)[:take]] = True
    return is_test


def take_first(x: Any, y: Any, limit: Any, field: str) -> tuple[Any, Any]:
    """Keep the first `limit` examples (None keeps all)."""
    if limit is None:
        return x, y
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DatasetError(f"dataset.{field}={limit!r} is not a positive integer; "
                           f"fix: set dataset.{field}=null (no limit) or a count >= 1.")
    return x[:limit], y[:limit]


def split_off_val(x: Any, y: Any, val_split: float, val_count: int | None = None) -> tuple[Any, Any, Any, Any]:
    """Train = the first part, validation = the last round(val_split * n) examples, or
    exactly val_count of them when given."""
    n_train = len(x) - (min(int(val_count), len(x)) if val_count is not None else int(round(val_split * len(x))))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@dataclass(frozen=True)
class Plan:
    """Which examples of a Raw make each split, in order: datasets.load gathers them into
    memory, or datasets/stream.py writes them to the run store a chunk at a time."""

    name: str
    raw: Raw
    index: dict[str, np.ndarray]  # split -> positions in its source array
    labels: dict[str, np.ndarray]  # split -> int64 labels, in the same order

    def source(self, split: str) -> Any:
        """The array a split's examples are taken from (before `prepare`)."""
        if split == "test":
            return self.raw.x_test
        return self.raw.x_val if split == "val" and self.raw.x_val is not None else self.raw.x_pool

    def count(self, split: str) -> int:
        return len(self.index[split])

    def prepared(self, split: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Examples start:stop of a split as float32 [0, 1] NHWC."""
        return self.raw.prepare(self.source(split)[self.index[split][start:stop]])


SPLITS = ("train", "val", "test")


def plan(name: str, raw: Raw, cfg: Any, val_split: float) -> Plan:
    """Shuffle (split_seed), apply train/test limits, carve validation: which examples
    make each split. A one-line error for data that cannot be split so."""
    if not 0.0 <= float(val_split) < 1.0:
        raise DatasetError(f"val_split={val_split!r} must be in [0, 1); fix: use e.g. 0.1, or 0.0 "
                           "for no validation set.")
    given_val = raw.x_val is not None
    splits = [(raw.x_pool, raw.y_pool, "train"), (raw.x_test, raw.y_test, "test")]
    for x, y, split in splits + ([(raw.x_val, raw.y_val, "val")] if given_val else []):
        if len(x) != len(y):
            raise DatasetError(f"{name} ({raw.source}): {split} has {len(x)} images but {len(y)} "
                               "labels; fix: the files are mismatched, supply a matching set.")
    seed = split_seed(cfg)
    y_pool = as_labels(raw.y_pool, f"{name} ({raw.source})")
    y_test = as_labels(raw.y_test, f"{name} ({raw.source})")
    y_given = as_labels(raw.y_val, f"{name} ({raw.source})") if given_val else y_test[:0]
    for y in (y_pool, y_test, y_given):
        if y.size and (y.min() < 0 or y.max() >= len(raw.class_names)):
            raise DatasetError(
                f"{name} ({raw.source}): labels span {y.min()}..{y.max()} but there are "
                f"{len(raw.class_names)} classes; fix: check that dataset.name matches the file.")

    perm = rng_for(seed, "pool").permutation(len(y_pool))
    pool, y = take_first(perm, y_pool[perm], option(cfg, "train_limit"), "train_limit")
    perm = rng_for(seed, "test").permutation(len(y_test))
    test, y_test = take_first(perm, y_test[perm], option(cfg, "test_limit"), "test_limit")
    if given_val:  # the source's own validation split: val_count limits it, val_split does not apply
        perm = rng_for(seed, "val").permutation(len(y_given))
        train, y_train = pool, y
        val, y_val = take_first(perm, y_given[perm], option(cfg, "val_count"), "val_count")
    else:
        train, y_train, val, y_val = split_off_val(pool, y, float(val_split), option(cfg, "val_count"))
    if len(train) == 0:
        if option(cfg, "val_count") is not None and not given_val:
            raise DatasetError(f"{name}: dataset.val_count={option(cfg, 'val_count')} takes all "
                               f"{len(pool)} training examples; fix: dataset.val_count=null (use "
                               f"val_split) or a count below {len(pool)}.")
        raise DatasetError(f"{name}: no training examples left after train_limit and "
                           f"val_split={val_split}; fix: raise dataset.train_limit or lower "
                           "val_split.")
    return Plan(name, raw, {"train": train, "val": val, "test": test},
                {"train": y_train, "val": y_val, "test": y_test})


def dataset_of(p: Plan, images: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None = None) -> Dataset:
    """The Dataset of a plan with each split's images (in memory or memory-mapped)."""
    y = labels or p.labels
    raw = p.raw
    return Dataset(name=p.name, x_train=images["train"], y_train=y["train"], x_val=images["val"], y_val=y["val"],
                   x_test=images["test"], y_test=y["test"], class_names=tuple(str(c) for c in raw.class_names),
                   source=raw.source, facts=dict(raw.facts))
