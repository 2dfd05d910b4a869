"""The last resort: Keras' own downloader, imported lazily because importing TensorFlow is slow.

Offline machines cannot download, so a failure becomes a DatasetError that says where we
looked and which override supplies the files.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .errors import DatasetError

KERAS_CACHE = "~/.keras/datasets"


def keras_loader(keras_name: str) -> Callable[[], Any]:
    """`keras.datasets.<keras_name>.load_data` (tests monkeypatch this to stay offline)."""
    return importlib.import_module(f"keras.datasets.{keras_name}").load_data


def fetch(keras_name: str, *, looked_in: str, fix: str,
          loader: Callable[[], Any] | None = None) -> tuple[Any, Any, Any, Any]:
    """Call `loader` (default: the Keras one) and turn any failure into an actionable error."""
    try:
        load_data = loader if loader is not None else keras_loader(keras_name)
        (x_train, y_train), (x_test, y_test) = load_data()
    except Exception as exc:  # URLError, HTTPError, ImportError, a broken cache file...
        raise DatasetError(
            f"{keras_name}: no local copy found (looked in {looked_in}) and the Keras download "
            f"into {KERAS_CACHE} failed ({type(exc).__name__}: {exc}). Fix: {fix}") from exc
    return x_train, y_train, x_test, y_test
