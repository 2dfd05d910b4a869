"""dataset=folder: a user's images in the layout Keras' image_dataset_from_directory reads.

    DIR/<class>/...                                the test split is carved per class
    DIR/train/<class>/...  DIR/test/<class>/...    [DIR/val/<class>/...: the validation split]

JPEG, PNG, BMP and GIF files, in subfolders too; hidden files and other files are ignored.
Classes are the class folders in sorted order, or dataset.class_names. The folder is
decoded once into the run store's cache (datasets/cache.py), keyed by its content,
one chunk of files at a time into a memory-mapped array, so a folder larger than memory
decodes.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import images
from .base import Raw, Rows, carve_test, option, split_seed
from .cache import Cache, digest
from .errors import DatasetError
from .files import existing_path
from .progress import Progress

log = logging.getLogger(__name__)

EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
PARTS = ("train", "val", "test")
FIX = ("set dataset.path to a folder holding one folder of images per class (DIR/<class>/...), or "
       "train/ and test/ folders that do (DIR/train/<class>/..., DIR/test/<class>/...)")
SHOWN = 3  # files named in an error


@dataclass(frozen=True)
class Listing:
    """The image files of a folder, relative to it, in sorted order, with their class and split."""

    root: Path
    files: tuple[str, ...]
    classes: tuple[str, ...]  # the class folder of each file
    parts: tuple[str, ...]  # train, val or test: train for every file of the DIR/<class>/ layout
    class_names: tuple[str, ...]
    signature: str  # a hash of the names, sizes and modification times

    @property
    def carved(self) -> bool:
        """True when the folder has no test split of its own."""
        return "test" not in self.parts


def _folders(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def _images(folder: str, prefix: str) -> list[tuple[str, int, int]]:
    """(prefix + path relative to folder, size, modification time) of every image file
    below folder, in sorted order of each folder's entries."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            found += _images(entry.path, f"{prefix}{entry.name}/")
        elif os.path.splitext(entry.name)[1].lower() in EXTENSIONS:
            st = entry.stat()
            found.append((prefix + entry.name, st.st_size, st.st_mtime_ns))
    return found


def _class_names(cfg: Any, found: list[str], where: str) -> tuple[str, ...]:
    """dataset.class_names when given (it must name exactly the class folders), else sorted."""
    wanted = option(cfg, "class_names")
    if wanted is None:
        return tuple(found)
    wanted = tuple(str(c) for c in wanted)
    missing, extra = sorted(set(wanted) - set(found)), sorted(set(found) - set(wanted))
    if missing or extra or len(set(wanted)) != len(wanted):
        problem = (f"names no folder {missing}" if missing else f"leaves out the folders {extra}" if extra
                   else "repeats a name")
        raise DatasetError(f"dataset.class_names {problem} of {where} (its class folders: {found}); fix: list each "
                           "class folder once, or remove dataset.class_names for sorted order")
    return wanted


def scan(cfg: Any) -> Listing:
    """The folder's files, classes and splits; a one-line error for a layout it cannot read."""
    root = existing_path(option(cfg, "path"), FIX)
    if not root.is_dir():
        raise DatasetError(f"dataset.path={root} is a file, not a folder; fix: {FIX}")
    top = _folders(root)
    if {"train", "test"} <= set(top):
        extra = sorted(set(top) - set(PARTS))
        if extra:
            raise DatasetError(f"dataset.path={root} has train/ and test/ and also the folders {extra}; fix: move "
                               "them into train/ (or test/, val/), or remove train/ and test/ for the DIR/<class>/ "
                               "layout")
        tops = {part: root / part for part in PARTS if part in top}
    else:
        tops = {"train": root}
    where = "train/" if len(tops) > 1 else str(root)
    class_names = _class_names(cfg, _folders(tops["train"]), where)
    if not class_names:
        raise DatasetError(f"dataset.path={root} has no class folders in {where}; fix: {FIX}")
    rows = []  # (relative path, class, part, size, modification time)
    for part, folder in tops.items():
        found = _folders(folder)
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise DatasetError(f"dataset.path={root}: {part}/ has the classes {unknown}, which train/ lacks; fix: "
                               f"add train/{unknown[0]}/ with images, or remove {part}/{unknown[0]}/")
        for name in found:
            prefix = (folder / name).relative_to(root).as_posix() + "/"
            files = _images(str(folder / name), prefix)
            if not files and part == "train":
                raise DatasetError(f"dataset.path={root}: class folder {folder / name} has no images "
                                   f"({', '.join(EXTENSIONS)}); fix: add images or remove the folder")
            rows += [(rel, name, part, size, mtime) for rel, size, mtime in files]
    rows.sort()
    signature = digest("folder", str(root), [(r[0], r[3], r[4]) for r in rows])
    return Listing(root, tuple(r[0] for r in rows), tuple(r[1] for r in rows), tuple(r[2] for r in rows),
                   class_names, signature)


def _fingerprint(listing: Listing) -> dict:
    """A hash of every file's relative path, size and bytes (read once per signature)."""
    total = hashlib.sha256()
    for rel in listing.files:
        data = (listing.root / rel).read_bytes()
        total.update(f"{rel}\0{len(data)}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return {"fingerprint": total.hexdigest()[:24]}


def content(cfg: Any, cache: Cache) -> dict:
    """What the folder holds, for the run key: its fingerprint and its classes."""
    listing = scan(cfg)
    return {**cache.content(listing.signature, lambda: _fingerprint(listing)),
            "class_names": list(listing.class_names)}


def _sizes_error(root: Path, sizes: Counter) -> DatasetError:
    common = sizes.most_common()
    shown = ", ".join(f"{h}x{w} ({n} files)" for (h, w), n in common[:4])
    more = f" and {len(common) - 4} more sizes" if len(common) > 4 else ""
    h, w = common[0][0]
    return DatasetError(f"dataset.path={root}: the images have different sizes (height x width: {shown}{more}); "
                        f"fix: dataset.image_size=[{h},{w}] resizes them all to one size")


def _decode(listing: Listing, size: list | None, mode: str, folder: Path) -> None:
    """Every readable file as uint8 (N, H, W, C) into folder/x.npy, written as the files
    are decoded (never all in memory), and the unreadable ones with the reason."""
    files = [listing.root / rel for rel in listing.files]
    unreadable: dict[int, str] = {}
    colour = mode == "rgb"
    if size is None:  # one size must fit all: read the headers first
        bar = Progress(f"reading the headers of {listing.root}", len(files))
        probes = images.probe_all(files, bar.advance)
        bar.close()
        unreadable = {i: p for i, p in enumerate(probes) if isinstance(p, str)}
        sizes = Counter(p[:2] for p in probes if not isinstance(p, str))
        if len(sizes) > 1:
            raise _sizes_error(listing.root, sizes)
        size = list(next(iter(sizes))) if sizes else [1, 1]
        colour = colour or (mode == "auto" and any(p[2] for p in probes if not isinstance(p, str)))
    todo = [i for i in range(len(files)) if i not in unreadable]
    channels = 1 if mode == "grayscale" else 3
    decoded = np.lib.format.open_memmap(folder / "all.npy", "w+", np.uint8, (max(len(todo), 1), *size, channels))
    read = np.zeros(len(todo), bool)

    def keep(first: int, results: list) -> None:
        nonlocal colour
        for offset, result in enumerate(results):
            if isinstance(result, str):
                unreadable[todo[first + offset]] = result
            else:
                decoded[first + offset] = result[0]
                read[first + offset] = True
                colour = colour or (mode == "auto" and result[1])

    bar = Progress(f"decoding {listing.root}", len(todo))
    images.decode_all([files[i] for i in todo], tuple(size), channels, bar.advance, deliver=keep)
    seconds = bar.close()
    kept = np.flatnonzero(read)
    keep_channels = 3 if colour else 1  # auto found no colour: the grey images were decoded as RGB
    x = np.lib.format.open_memmap(folder / "x.npy", "w+", np.uint8, (len(kept), *size, keep_channels))
    for start in range(0, len(kept), images.CHUNK * 16):
        x[start:start + images.CHUNK * 16] = decoded[kept[start:start + images.CHUNK * 16], ..., :keep_channels]
    x.flush()
    (folder / "all.npy").unlink()  # the open map stays readable until the function returns
    log.info("decoded %d images of %s in %.1f s (%.0f files/s)", len(kept), listing.root, seconds,
             len(todo) / max(seconds, 1e-9))
    order = sorted(unreadable)
    np.save(folder / "files.npy", np.array([listing.files[todo[i]] for i in kept], dtype=str))
    np.save(folder / "unreadable.npy", np.array([listing.files[i] for i in order], dtype=str))
    np.save(folder / "reasons.npy", np.array([unreadable[i] for i in order], dtype=str))


def _refuse_unreadable(root: Path, decoded: dict, total: int) -> None:
    names, reasons = list(decoded["unreadable"]), list(decoded["reasons"])
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    raise DatasetError(f"dataset.path={root}: {len(names)} of {total} files cannot be read as images ({shown}; "
                       f"{names[0]}: {reasons[0]}); fix: replace or delete them, or set dataset.skip_unreadable=true "
                       "to skip them")


def load(cfg: Any, cache: Cache) -> Raw:
    """The decoded folder (from the cache when it was decoded before) as a Raw."""
    listing = scan(cfg)
    fingerprint = cache.content(listing.signature, lambda: _fingerprint(listing))["fingerprint"]
    size = option(cfg, "image_size")
    size = [int(s) for s in size] if size is not None else None
    mode = str(option(cfg, "color_mode", "auto"))
    decoded = cache.folder("folder", f"{fingerprint}-{digest(size, mode)[:10]}",
                           lambda folder: _decode(listing, size, mode, folder))
    skipped = len(decoded["unreadable"])
    if skipped and not option(cfg, "skip_unreadable", False):
        _refuse_unreadable(listing.root, decoded, len(listing.files))
    if skipped:
        log.warning("dataset.path=%s: skipped %d unreadable files (dataset.skip_unreadable=true)", listing.root,
                    skipped)
    index = {rel: i for i, rel in enumerate(listing.files)}
    kept = np.array([index[str(rel)] for rel in decoded["files"]], dtype=np.int64)
    label = {name: i for i, name in enumerate(listing.class_names)}
    y = np.array([label[c] for c in listing.classes], dtype=np.int64)[kept]
    parts = np.array(listing.parts)[kept]
    x = decoded["x"]
    if listing.carved:
        parts = np.where(carve_test(y, float(option(cfg, "test_fraction", 0.2)), split_seed(cfg)), "test", "train")
    split = {part: parts == part for part in PARTS}
    has_val = "val" in listing.parts
    rows = {part: Rows(x, np.flatnonzero(mask)) for part, mask in split.items()}  # read when gathered
    return Raw(rows["train"], y[split["train"]], rows["test"], y[split["test"]], listing.class_names,
               source=f"image folder {listing.root}",
               x_val=rows["val"] if has_val else None, y_val=y[split["val"]] if has_val else None,
               facts={"skipped_unreadable": skipped})
