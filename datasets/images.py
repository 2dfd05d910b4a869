"""Image files to uint8 arrays with Pillow: what a file holds (probe), and its pixels at
one size and channel count (decode), over many files on every core.

Decoding follows Keras' image_dataset_from_directory where it has a rule: the first frame
of a GIF, alpha dropped, no EXIF rotation, ITU-R 601 luma for grey. Resizing uses Pillow's
bilinear filter, which (unlike tf.image.resize) smooths when it shrinks.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
GREY_MODES = ("1", "L", "LA", "I", "F")  # and I;16*: Pillow's modes without colour
CHUNK = 64  # files per task: large enough that a worker's reply costs little
POOL_SECONDS = 0.5  # about what starting the worker processes costs (more on a loaded machine)


def has_colour(image: Any) -> bool:
    """False for grey modes and for palettes whose entries are all grey."""
    if image.mode in GREY_MODES or image.mode.startswith("I;16"):
        return False
    if image.mode == "P":
        palette = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        return bool((palette != palette[:, :1]).any())
    return True


def probe(file: str) -> tuple[int, int, bool] | str:
    """(height, width, has colour) from the file's header, or why it cannot be read."""
    from PIL import Image  # lazy: only a folder of images needs Pillow

    try:
        if os.path.getsize(file) == 0:
            return "empty file"
        with Image.open(file) as image:
            return image.height, image.width, has_colour(image)
    except Exception as error:  # Pillow raises many types for a broken file
        return f"{type(error).__name__}: {error}"


def to_mode(image: Any, channels: int) -> Any:
    """The image as L (channels=1) or RGB (3); 16-bit grey is scaled, not clipped."""
    from PIL import Image

    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image, dtype=np.float32) / 257.0).round().astype(np.uint8))
    elif image.mode in ("I", "F"):
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float32), 0, 255).astype(np.uint8))
    elif image.mode == "P":
        image = image.convert("RGBA")  # a palette's transparency is kept in alpha, then dropped
    return image.convert("L" if channels == 1 else "RGB")


def fit(image: Any, size: tuple[int, int], channels: int) -> np.ndarray:
    """An opened image as a uint8 (H, W, C) array of `size` (height, width)."""
    from PIL import Image

    height, width = size
    if image.format == "JPEG" and (image.height, image.width) != (height, width):
        image.draft(None, (width, height))  # decode at a reduced scale that still covers the size
    image = to_mode(image, channels)
    if (image.height, image.width) != (height, width):
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, channels)


def decode(file: str, size: tuple[int, int], channels: int) -> tuple[np.ndarray, bool] | str:
    """The file's pixels (see fit) and whether it has colour, or why it cannot be read."""
    from PIL import Image

    try:
        if os.path.getsize(file) == 0:
            return "empty file"
        with Image.open(file) as image:
            return fit(image, size, channels), has_colour(image)
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def _probe_chunk(files: Sequence[str]) -> list:
    return [probe(f) for f in files]


def _decode_chunk(files: Sequence[str], size: tuple[int, int], channels: int) -> list:
    return [decode(f, size, channels) for f in files]


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def workers_for(seconds_left: float) -> int:
    """Processes worth starting for `seconds_left` of work on one core: every core when
    the work saves more than the pool costs to start, else none (work in this process)."""
    return cores() if cores() > 1 and seconds_left > 2 * POOL_SECONDS else 1


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers forked from a fresh server process (never from this one, whose TensorFlow
    threads a fork would copy mid-flight), with Pillow and NumPy imported once."""
    if "forkserver" in get_all_start_methods():
        context = get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=context)


def map_files(task: Callable[..., list], files: Sequence[str], *args: Any,
              advance: Callable[[int], None] = lambda n: None,
              deliver: Callable[[int, list], None] | None = None) -> list:
    """task(chunk, *args) over chunks of files. The first chunk runs here and times the
    work; the rest runs on every core when that pays (workers_for). Every chunk's results
    go to deliver(first file's position, results) as they come (then nothing is kept and
    [] is returned), or are returned in order."""
    chunks = [list(files[i:i + CHUNK]) for i in range(0, len(files), CHUNK)]
    if not chunks:
        return []
    results: list[list] = [[] for _ in chunks]

    def done(i: int, items: list) -> None:
        if deliver is None:
            results[i] = items
        else:
            deliver(i * CHUNK, items)
        advance(len(chunks[i]))

    started = time.perf_counter()
    done(0, task(chunks[0], *args))
    per_file = (time.perf_counter() - started) / len(chunks[0])
    workers = workers_for(per_file * (len(files) - len(chunks[0])))
    log.debug("%d files: %.2f ms each, %d processes", len(files), 1000 * per_file, workers)
    if workers == 1:
        for i, chunk in enumerate(chunks[1:], start=1):
            done(i, task(chunk, *args))
    else:
        with _pool(workers) as pool:
            pending = {pool.submit(task, chunk, *args): i for i, chunk in enumerate(chunks) if i}
            for finished in as_completed(pending):
                done(pending[finished], finished.result())
    return [item for chunk in results for item in chunk]


def probe_all(files: Sequence[Path], advance: Callable[[int], None] = lambda n: None) -> list:
    return map_files(_probe_chunk, [str(f) for f in files], advance=advance)


def decode_all(files: Sequence[Path], size: tuple[int, int], channels: int,
               advance: Callable[[int], None] = lambda n: None,
               deliver: Callable[[int, list], None] | None = None) -> list:
    return map_files(_decode_chunk, [str(f) for f in files], size, channels, advance=advance, deliver=deliver)
