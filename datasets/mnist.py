"""MNIST (60k/10k) from a local IDX folder or Keras .npz, else a Keras download; plus the
32x32 variant used by the data-free distillation paper (bilinear upscale, not zero padding)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from . import download
from .base import Raw, option, to_unit_float
from .files import load_idx_or_npz

NAMES = tuple(str(d) for d in range(10))
FIX = ("pass dataset.path=/folder/with/idx/files (train-images-idx3-ubyte.gz, "
       "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
       "or dataset.path=/path/to/mnist.npz (a Keras mnist.npz), or use dataset=mnist_sample, "
       "which is offline.")


def load(cfg: Any) -> Raw:
    """28x28x1 MNIST: dataset.path first, the Keras download otherwise."""
    path = option(cfg, "path")
    if path:
        arrays, source = load_idx_or_npz(path, "mnist.npz", FIX), f"local files: {path}"
    else:
        arrays = download.fetch("mnist", looked_in="dataset.path (not set)", fix=FIX)
        source = "keras.datasets.mnist"
    return Raw(*arrays, class_names=NAMES, source=source)


def upscale_to_32(x: Any) -> np.ndarray:
    """Bilinear 28->32 resize of the whole stack in one skimage call."""
    x = to_unit_float(x)[..., 0]
    if len(x) == 0:
        return np.zeros((0, 32, 32, 1), np.float32)
    from skimage.transform import resize  # lazy: only this variant needs skimage

    out = resize(x, (len(x), 32, 32), order=1, mode="constant", anti_aliasing=False)
    return np.clip(out, 0.0, 1.0).astype(np.float32)[..., None]


def load_conv(cfg: Any) -> Raw:
    """MNIST upscaled to 32x32x1 so LeNet-5-style conv nets get their native input size."""
    raw = load(cfg)
    return replace(raw, prepare=upscale_to_32, source=raw.source + ", upscaled 28->32 bilinear")
