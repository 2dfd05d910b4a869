"""Image files to uint8 arrays with Pillow: what a file holds (probe), and its pixels at
one size and channel count (decode), over many files on every core.

Decoding follows Keras' image_dataset_from_directory where it has a rule: the first frame
of a GIF, alpha dropped, no EXIF rotation, ITU-R 601 luma for grey. Resizing uses Pillow's
bilinear filter, which (unlike tf.image.resize) smooths when it shrinks.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

GREY_MODES = ("1", "L", "LA", "I", "F")  # and I;16*: Pillow's modes without colour
CHUNK = 64  # files per task: large enough that a worker's reply costs little
MIN_FILES_PER_WORKER = 500  # below this a worker process costs more to start than it saves


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


def workers_for(count: int) -> int:
    """Processes worth starting for `count` files: every core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, count // MIN_FILES_PER_WORKER))


def map_files(task: Callable[..., list], files: Sequence[str], *args: Any,
              advance: Callable[[int], None] = lambda n: None) -> list:
    """task(chunk, *args) over chunks of files, in order; in worker processes (spawned: the
    caller may have started TensorFlow's threads) when there are enough files."""
    chunks = [list(files[i:i + CHUNK]) for i in range(0, len(files), CHUNK)]
    workers = workers_for(len(files))
    results: list[list] = [[] for _ in chunks]
    if workers == 1:
        for i, chunk in enumerate(chunks):
            results[i] = task(chunk, *args)
            advance(len(chunk))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(task, chunk, *args): i for i, chunk in enumerate(chunks)}
            for done in as_completed(pending):
                results[pending[done]] = done.result()
                advance(len(chunks[pending[done]]))
    return [item for chunk in results for item in chunk]


def probe_all(files: Sequence[Path], advance: Callable[[int], None] = lambda n: None) -> list:
    return map_files(_probe_chunk, [str(f) for f in files], advance=advance)


def decode_all(files: Sequence[Path], size: tuple[int, int], channels: int,
               advance: Callable[[int], None] = lambda n: None) -> list:
    return map_files(_decode_chunk, [str(f) for f in files], size, channels, advance=advance)
