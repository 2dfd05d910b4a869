"""dataset=tfds: a TensorFlow Datasets set already prepared on disk, read through its
builder without download_and_prepare and without GCS (what tfds.load(download=False,
try_gcs=False) does): nothing is ever downloaded. Its train split, its test split (else
one carved per class) and its validation split when it has one. tensorflow-datasets is an
optional extra: pip install -e ".[tfds]".

Images are made uint8 (N, H, W, C) of one size like a folder's (datasets/images.py) and
cached in the run store, keyed by the prepared files' content.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import images
from .base import Raw, carve_test, option, split_seed
from .cache import Cache, digest
from .errors import DatasetError
from .progress import Progress

VALIDATION = ("validation", "val")  # the split names read as the validation split
_builders: dict[tuple, Any] = {}


def _where(cfg: Any) -> str:
    data_dir = option(cfg, "data_dir")
    return f"dataset.data_dir={data_dir}" if data_dir else "tfds' default data_dir (dataset.data_dir not set)"


def builder(cfg: Any) -> Any:
    """The prepared data set's builder; one-line errors when tfds or the data is missing."""
    name, data_dir = str(option(cfg, "tfds_name")), option(cfg, "data_dir")
    if (name, data_dir) in _builders:
        return _builders[name, data_dir]
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise DatasetError(f"dataset=tfds needs tensorflow-datasets, which is not installed ({error}); fix: "
                           "pip install -e \".[tfds]\"") from None
    fix = (f"prepare it where there is a network (tfds build {name} --data_dir=DIR) and set dataset.data_dir=DIR "
           "to the folder that holds it")
    data_dir = str(Path(data_dir).expanduser()) if data_dir else None
    try:
        found = tfds.builder(name, data_dir=data_dir, try_gcs=False)
    except Exception as error:  # DatasetNotFoundError and kin: the message lists every known name
        raise DatasetError(f"dataset.tfds_name={name}: no such data set in tfds or in {_where(cfg)} "
                           f"({type(error).__name__}); fix: {fix}") from None
    if not found.is_prepared():
        raise DatasetError(f"dataset.tfds_name={name} is not prepared in {_where(cfg)} (looked for {found.data_dir}); "
                           f"this runner never downloads; fix: {fix}")
    _builders[name, option(cfg, "data_dir")] = found
    return found


def _keys(found: Any) -> tuple[str, str]:
    """The image and label features: the supervised keys, else image and label."""
    keys = found.info.supervised_keys
    if keys and len(keys) == 2 and all(isinstance(k, str) for k in keys):
        return keys
    features = found.info.features
    if "image" in features and "label" in features:
        return "image", "label"
    raise DatasetError(f"dataset.tfds_name={found.name} has no (image, label) features (it has "
                       f"{', '.join(features)}); fix: use a classification data set of images")


def _class_names(found: Any) -> tuple[str, ...]:
    label = found.info.features[_keys(found)[1]]
    names = getattr(label, "names", None)
    if not names:
        raise DatasetError(f"dataset.tfds_name={found.name}: its label feature is not a ClassLabel; fix: use a "
                           "classification data set")
    return tuple(str(n) for n in names)


def _split_names(found: Any) -> dict[str, str]:
    """train, test and val -> the data set's split names (test and val when it has them)."""
    splits = list(found.info.splits)
    if "train" not in splits:
        raise DatasetError(f"dataset.tfds_name={found.name} has the splits {splits} but no train; fix: use a data set "
                           "with a train split")
    names = {"train": "train"}
    if "test" in splits:
        names["test"] = "test"
    for name in VALIDATION:
        if name in splits:
            names["val"] = name
            break
    return names


def content(cfg: Any, cache: Cache) -> dict:
    """What the prepared files hold, for the run key: their fingerprint and classes."""
    found = builder(cfg)
    folder = Path(found.data_dir)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    signature = digest("tfds", str(folder), [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                                             for p in files])

    def fingerprint() -> dict:
        total = hashlib.sha256()
        for p in files:
            total.update(f"{p.relative_to(folder)}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
        return {"fingerprint": total.hexdigest()[:24]}

    return {**cache.content(signature, fingerprint), "class_names": list(_class_names(found))}


def _read(found: Any, split: str) -> tuple[list, np.ndarray]:
    """One split's images (arrays as stored) and labels."""
    import tensorflow_datasets as tfds

    image, label = _keys(found)
    examples = tfds.as_numpy(found.as_dataset(split=split, shuffle_files=False))
    bar = Progress(f"reading {found.name} {split}", found.info.splits[split].num_examples)
    xs, ys = [], []
    for example in examples:
        xs.append(example[image])
        ys.append(int(example[label]))
        bar.advance(1)
    bar.close()
    return xs, np.array(ys, dtype=np.int64)


def _uniform(found: Any, xs: list, size: list | None, mode: str) -> np.ndarray:
    """The images as uint8 (N, H, W, C) at one size and channel count."""
    from PIL import Image

    sizes = Counter(x.shape[:2] for x in xs)
    if size is None and len(sizes) > 1:
        shown = ", ".join(f"{h}x{w} ({n} images)" for (h, w), n in sizes.most_common(4))
        h, w = sizes.most_common(1)[0][0]
        raise DatasetError(f"dataset.tfds_name={found.name}: the images have different sizes (height x width: "
                           f"{shown}); fix: dataset.image_size=[{h},{w}] resizes them all to one size")
    target = tuple(size) if size is not None else (next(iter(sizes)) if sizes else (1, 1))
    channels = {x.shape[-1] if x.ndim == 3 else 1 for x in xs}
    out = 1 if mode == "grayscale" or (mode == "auto" and channels <= {1}) else 3
    if target == next(iter(sizes), None) and channels == {out}:
        return np.stack(xs).reshape(len(xs), *target, out).astype(np.uint8)
    return np.stack([images.fit(Image.fromarray(x.squeeze(-1) if x.ndim == 3 and x.shape[-1] == 1 else x), target,
                                out) for x in xs]) if xs else np.zeros((0, *target, out), np.uint8)


def _decode(found: Any, size: list | None, mode: str, folder: Path) -> None:
    """Every split's images and labels, one .npy each in folder (the cache entry)."""
    parts = _split_names(found)
    read = {part: _read(found, split) for part, split in parts.items()}
    xs = [x for part in read for x in read[part][0]]
    x = _uniform(found, xs, size, mode)
    counts = [len(read[part][0]) for part in read]
    bounds = np.cumsum([0, *counts])
    for i, part in enumerate(read):
        np.save(folder / f"x_{part}.npy", x[bounds[i]:bounds[i + 1]])
        np.save(folder / f"y_{part}.npy", read[part][1])


def load(cfg: Any, cache: Cache) -> Raw:
    found = builder(cfg)
    size = option(cfg, "image_size")
    size = [int(s) for s in size] if size is not None else None
    mode = str(option(cfg, "color_mode", "auto"))
    fingerprint = content(cfg, cache)["fingerprint"]
    a = cache.folder("tfds", f"{fingerprint}-{digest(size, mode)[:10]}", lambda folder: _decode(found, size, mode, folder))
    if "x_test" not in a:
        is_test = carve_test(a["y_train"], float(option(cfg, "test_fraction", 0.2)), split_seed(cfg))
        a = {**a, "x_train": a["x_train"][~is_test], "y_train": a["y_train"][~is_test],
             "x_test": a["x_train"][is_test], "y_test": a["y_train"][is_test]}
    return Raw(a["x_train"], a["y_train"], a["x_test"], a["y_test"], _class_names(found),
               source=f"tfds {found.name} {found.version} in {found.data_dir}",
               x_val=a.get("x_val"), y_val=a.get("y_val"))
