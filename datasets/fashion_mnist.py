"""Fashion-MNIST: dataset.path, else the Debian `dataset-fashion-mnist` folder, else Keras."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import download
from .base import Raw, option
from .files import has_idx_folder, load_idx_folder, load_idx_or_npz

# Where Debian's `dataset-fashion-mnist` package installs the IDX files (tests monkeypatch it).
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _fix() -> str:
    return ("pass dataset.path=/folder/with/idx/files (train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), "
            f"or run `apt-get install dataset-fashion-mnist` (installs them into {DEBIAN_DIR}).")


def load(cfg: Any) -> Raw:
    """28x28x1 Fashion-MNIST, 60k training pool and 10k test."""
    path = option(cfg, "path")
    if path:
        arrays, source = load_idx_or_npz(path, "fashion-mnist.npz", _fix()), f"local files: {path}"
    elif has_idx_folder(DEBIAN_DIR):
        arrays, source = load_idx_folder(DEBIAN_DIR), f"Debian dataset-fashion-mnist: {DEBIAN_DIR}"
    else:
        arrays = download.fetch(
            "fashion_mnist", fix=_fix(),
            looked_in=f"dataset.path (not set) and {DEBIAN_DIR} (missing or incomplete)")
        source = "keras.datasets.fashion_mnist"
    return Raw(*arrays, class_names=NAMES, source=source)
