"""Whether a tree fits in memory, checked before any training starts."""
from __future__ import annotations

import os
from pathlib import Path

from models.soft_tree import training_bytes
from src.errors import ConfigError


def available_bytes() -> int:
    """Memory this process can still get (MemAvailable), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits_memory(depth: int, features: int, num_classes: int, batch: int) -> None:
    """ConfigError naming the deepest tree that fits, when a depth-`depth` tree does not."""
    need, have = training_bytes(depth, features, num_classes, batch), available_bytes()
    if need <= have:
        return
    fits = max((d for d in range(1, depth) if training_bytes(d, features, num_classes, batch) <= have), default=None)
    raise ConfigError(
        f"tree.depth={depth}: {2 ** depth - 1} inner nodes on {features} input features need about "
        f"{need / 2 ** 30:,.1f} GiB to train (batch {batch}), but {have / 2 ** 30:.1f} GiB are available: "
        + (f"use tree.depth<={fits}" if fits else "use a smaller tree.depth or batch size"))
