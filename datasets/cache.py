"""The run store's data cache, <runs>/cache/, so that a user's files are read once:

    cache/content/<signature>.json     what a set of files holds (its fingerprint and
                                       classes), found again by the files' names, sizes
                                       and modification times without reading them
    cache/<source>/<name>/<array>.npy  decoded arrays (uint8 images of a folder or a tfds
                                       set; dataset.stream's splits; a teacher's outputs),
                                       found by content, read memory-mapped

Files are written to a temporary name and renamed; a lock makes parallel jobs that need
the same entry make it once. Without a store (Cache(None)) nothing is kept.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def digest(*parts: Any) -> str:
    """A short hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _replace(path: Path, write: Callable[[Path], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Cache:
    """The cache folder of one run store (None: compute everything, keep nothing)."""

    def __init__(self, store: str | Path | None):
        self.root = Path(store).expanduser().resolve() / "cache" if store else None

    def content(self, signature: str, compute: Callable[[], dict]) -> dict:
        """compute() once per signature (a hash of file names, sizes and times)."""
        if self.root is None:
            return compute()
        path = self.root / "content" / f"{signature}.json"
        if path.is_file():
            with contextlib.suppress(OSError, ValueError):
                return json.loads(path.read_text())
        found = compute()
        _replace(path, lambda tmp: tmp.write_text(json.dumps(found)))
        return found

    def folder(self, source: str, name: str, make: Callable[[Path], Any]) -> dict[str, np.ndarray]:
        """The arrays of cache/<source>/<name>/, one .npy file each, opened memory-mapped
        (read-only), so that an entry larger than memory is read a part at a time. When
        missing, make(folder) writes them (once) into a temporary folder that is renamed
        when complete. Without a store they live in a temporary folder, unlinked at once
        (the open maps keep them readable)."""
        if self.root is None:
            with tempfile.TemporaryDirectory() as tmp:
                make(Path(tmp))
                return _mapped(Path(tmp))
        path = self.root / source / name
        with _locked(path):
            if (path / "COMPLETE").is_file():
                return _mapped(path)
            for stale in [path, *path.parent.glob(f".tmp-*-{name}")]:  # unfinished: a killed writer's
                shutil.rmtree(stale, ignore_errors=True)
            tmp = path.with_name(f".tmp-{os.getpid()}-{name}")
            try:
                tmp.mkdir(parents=True)
                make(tmp)
                (tmp / "COMPLETE").touch()
                os.replace(tmp, path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log.info("cached in %s", path)
        return _mapped(path)


def _mapped(folder: Path) -> dict[str, np.ndarray]:
    return {file.stem: np.load(file, mmap_mode="r", allow_pickle=False) for file in sorted(folder.glob("*.npy"))}
