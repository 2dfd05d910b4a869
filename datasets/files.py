"""Readers for the on-disk formats MNIST-like data ships in: IDX (plain or gzip) and Keras .npz.

They exist so the project runs offline from local copies (Debian packages, copied files).
"""
from __future__ import annotations

import gzip
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DatasetError

# IDX type byte -> element dtype (big-endian for multi-byte types).
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _corrupt(file: Path, problem: str) -> DatasetError:
    return DatasetError(f"{file}: {problem}; the file is truncated or corrupt. Fix: replace it "
                        "with a fresh copy, or point dataset.path at another folder.")


def read_idx(file: str | Path) -> np.ndarray:
    """One IDX file (`.gz` or plain) as an array; header and size are checked."""
    file = Path(file)
    try:
        opener = gzip.open if file.suffix == ".gz" else open
        with opener(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(file, f"cannot be read ({type(exc).__name__}: {exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise _corrupt(file, f"bad IDX magic number {data[:4].hex() or '(empty)'}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(file, f"header of {ndim} dimensions is cut short")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise _corrupt(file, f"shape {dims} needs {expected} bytes but it has {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, split: str, kind: str) -> Path | None:
    """`train-images-idx3-ubyte[.gz]`, also the `train-images.idx3-ubyte` spelling."""
    ndim = 3 if kind == "images" else 1
    for sep in "-.":
        for ext in (".gz", ""):
            candidate = folder / f"{split}-{kind}{sep}idx{ndim}-ubyte{ext}"
            if candidate.is_file():
                return candidate
    return None


IDX_NAMES = ("train-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]",
             "t10k-images-idx3-ubyte[.gz]", "t10k-labels-idx1-ubyte[.gz]")


def has_idx_folder(folder: str | Path) -> bool:
    """True when all four IDX files are present."""
    folder = Path(folder)
    return folder.is_dir() and all(_idx_file(folder, s, k) for s in ("train", "t10k")
                                   for k in ("images", "labels"))


def load_idx_folder(folder: str | Path) -> Arrays:
    """x_train, y_train, x_test, y_test from the four standard IDX files of a folder."""
    folder = Path(folder)
    out = []
    for split in ("train", "t10k"):
        for kind in ("images", "labels"):
            file = _idx_file(folder, split, kind)
            if file is None:
                raise DatasetError(f"{folder} has no {split}-{kind} IDX file; it needs "
                                   f"{', '.join(IDX_NAMES)}. Fix: copy them there, or point "
                                   "dataset.path at the folder that holds them.")
            array = read_idx(file)
            if array.ndim != (3 if kind == "images" else 1):
                raise _corrupt(file, f"expected {kind} but found an array of shape {array.shape}")
            out.append(array)
    return out[0], out[1], out[2], out[3]


def load_npz(file: str | Path, keys: tuple[str, ...] = NPZ_KEYS) -> dict[str, np.ndarray]:
    """The named arrays of an .npz file (no pickles are ever loaded)."""
    file = Path(file)
    try:
        with np.load(file, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                wanted = ", ".join(k + "=..." for k in keys)
                raise DatasetError(f"{file} lacks the keys {missing} (it has {npz.files}). "
                                   f"Fix: save it with np.savez(file, {wanted}).")
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise _corrupt(file, f"cannot be read as .npz ({type(exc).__name__}: {exc})") from exc


def load_keras_npz(file: str | Path) -> Arrays:
    """A Keras-style .npz with x_train, y_train, x_test, y_test."""
    arrays = load_npz(file)
    return tuple(arrays[k] for k in NPZ_KEYS)  # type: ignore[return-value]


def existing_path(path: str | Path, fix: str) -> Path:
    """`dataset.path` as a Path, or a DatasetError saying it does not exist."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"dataset.path={path} does not exist. Fix: {fix}")
    return p


def load_idx_or_npz(path: str | Path, npz_name: str, fix: str) -> Arrays:
    """`path` is an IDX folder, a Keras .npz file, or a folder holding `npz_name`."""
    p = existing_path(path, fix)
    if p.is_file():
        if p.suffix == ".npz":
            return load_keras_npz(p)
        raise DatasetError(f"dataset.path={path} is a file but not an .npz. Fix: {fix}")
    if has_idx_folder(p):
        return load_idx_folder(p)
    if (p / npz_name).is_file():
        return load_keras_npz(p / npz_name)
    raise DatasetError(f"dataset.path={path} holds neither the IDX files ({', '.join(IDX_NAMES)}) "
                       f"nor {npz_name}. Fix: {fix}")
