"""dataset.stream: a data set's splits written once into the run store as memory-mapped
.npy files (cache/stream/<key>/x_train.npy, ...), so that a run holds one chunk of
examples at a time instead of every decoded image.

Memory-mapped arrays and not TFRecord: a fresh permutation per epoch needs reading any
example by its position, which a record file read in order cannot do without a shuffle
buffer (an approximate shuffle). The fit loop gathers each chunk of batches from the
maps through tf.data (src/streamed.py).

`auto` streams when the decoded splits (float32) would exceed dataset.memory_budget: a
byte count, a size such as 512MB or 2GiB, or null for a quarter of the machine's memory.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from .base import SPLITS, Dataset, Plan, dataset_of, option
from .cache import Cache, digest
from .errors import DatasetError

log = logging.getLogger(__name__)
HOW_HELD = ("stream", "memory_budget")  # how the data is held, never part of its identity
CHUNK_BYTES = 32 << 20  # the examples written per step
UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def machine_memory() -> int:
    """The machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def budget_bytes(value: Any) -> int:
    """dataset.memory_budget in bytes: null = a quarter of the machine's memory."""
    if value is None:
        return machine_memory() // 4
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    found = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]I?B|B)?\s*", str(value).upper())
    if not found or float(found.group(1)) <= 0:
        raise DatasetError(f"dataset.memory_budget={value!r} is not a size; fix: a byte count or a size such as "
                           "512MB or 2GiB (null: a quarter of the machine's memory)")
    return int(float(found.group(1)) * UNITS[found.group(2) or ""])


def example_shape(plan: Plan) -> tuple[int, ...]:
    """One prepared example's shape (`prepare` may change it); the training split is never empty."""
    return tuple(plan.prepared("train", 0, 1).shape[1:])


def decoded_bytes(plan: Plan) -> int:
    """What the planned splits take as float32 in memory."""
    return int(np.prod(example_shape(plan))) * 4 * sum(plan.count(s) for s in SPLITS)


def mode(cfg: Any) -> str:
    """dataset.stream as auto, true or false."""
    value = option(cfg, "stream", "auto")
    text = str(value).lower()
    if text not in ("auto", "true", "false"):
        raise DatasetError(f"dataset.stream={value!r}; fix: dataset.stream=auto (stream when the data would exceed "
                           "dataset.memory_budget), true or false")
    return text


def wanted(cfg: Any, plan: Plan, has_store: bool) -> bool:
    """Whether to stream this plan: dataset.stream, or for auto its decoded size against
    the budget. Streaming needs a run store to write to."""
    choice = mode(cfg)
    if choice == "false":
        return False
    if not has_store:
        if choice == "true":
            raise DatasetError("dataset.stream=true writes the splits into the run store, and there is none here; "
                               "fix: set paths.runs, or dataset.stream=false")
        return False
    return choice == "true" or decoded_bytes(plan) > budget_bytes(option(cfg, "memory_budget"))


def refuse(cfg: Any, plan: Plan, procedure: str) -> DatasetError:
    """The one-line error of a procedure that holds its data in memory, on data that streams."""
    if mode(cfg) == "true":
        why = "dataset.stream=true"
    else:
        why = (f"the decoded splits ({decoded_bytes(plan) / 1e6:.0f} MB) exceed dataset.memory_budget "
               f"({budget_bytes(option(cfg, 'memory_budget')) / 1e6:.0f} MB)")
    return DatasetError(f"procedure={procedure} holds the whole data set in memory and cannot stream it, but {why}; "
                        "fix: dataset.stream=false with dataset.memory_budget raised to what this machine holds, "
                        "or fewer examples (dataset.train_limit)")


def streamed(plan: Plan, identity: dict, val_split: float, store: str | Path) -> Dataset:
    """The plan's splits as memory-mapped float32 arrays in the store's cache, written the
    first time (a chunk at a time), found again by the data's identity after that."""
    key = digest(identity, float(val_split))
    arrays = Cache(store).folder("stream", key, lambda folder: _write(plan, folder))
    log.info("dataset %s streams from %s (%.1f MB on disk)", plan.name, Cache(store).root / "stream" / key,
             sum(a.nbytes for a in arrays.values()) / 1e6)
    return dataset_of(plan, {s: arrays[f"x_{s}"] for s in SPLITS}, {s: arrays[f"y_{s}"] for s in SPLITS})


def _write(plan: Plan, folder: Path) -> None:
    shape = example_shape(plan)
    per = max(1, CHUNK_BYTES // (int(np.prod(shape)) * 4))  # examples written per step
    for split in SPLITS:
        x = np.lib.format.open_memmap(folder / f"x_{split}.npy", "w+", np.float32, (plan.count(split), *shape))
        for start in range(0, plan.count(split), per):
            x[start:start + per] = plan.prepared(split, start, start + per)
        x.flush()
        np.save(folder / f"y_{split}.npy", plan.labels[split])
