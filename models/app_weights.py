"""Pretrained weights of a keras.applications network (``model.weights``): a local file,
or ``imagenet``, the file Keras keeps in ~/.keras/models.

Keras fetches ImageNet weights with its downloader, which looks in its cache first. On a
machine without network the download fails deep inside the constructor; here the failure
becomes one line naming the file, where it goes and where it comes from.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
from keras.src.utils import file_utils  # the module whose get_file every keras.applications network calls

from ._blocks import fresh_names
from .errors import ModelError

download = file_utils.get_file  # Keras' own downloader (tests replace it to stay offline)


def keras_cache() -> Path:
    """The folder Keras' downloader keeps its files in (KERAS_HOME, else ~/.keras)."""
    from keras.src.backend import config
    return Path(config.keras_home()).expanduser()


def weights_file(weights: str, arch: str, key: str) -> Path:
    """The local weights file `key`.weights names; a one-line error when there is none."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"{key}.weights={weights}: no such file; give a weights file of {arch} without its top, "
                         f"{key}.weights=imagenet, or {key}.weights=null (random)")
    return path


def pretrained_base(make: Callable[..., keras.Model], arch: str, weights: str, size: tuple[int, int], kwargs: dict,
                    key: str) -> keras.Model:
    """The network alone (its own input, no top) with `weights` loaded by its constructor,
    built with fresh automatic names so that its layer names are those of the runner's
    model around the same network."""
    if weights == "imagenet":
        with fresh_names(), _cached_or_one_line_error(arch, key):
            return make(include_top=False, weights="imagenet", input_shape=(*size, 3), **kwargs)
    path = weights_file(weights, arch, key)
    try:
        with fresh_names():
            return make(include_top=False, weights=str(path), input_shape=(*size, 3), **kwargs)
    except Exception as error:  # Keras raises many types for a file of another network
        raise ModelError(f"{key}.weights={weights}: cannot load it into {arch} without its top "
                         f"({type(error).__name__}: {str(error).splitlines()[0][:200]}): give that network's "
                         f"no-top weights file") from None


@contextlib.contextmanager
def _cached_or_one_line_error(arch: str, key: str) -> Iterator[None]:
    """Inside the block, Keras' downloader serves a file already in its cache and tries the
    download otherwise; a failed download is a ModelError naming the file to put there."""
    def fetch(fname=None, origin=None, cache_subdir="datasets", **options):
        try:
            return download(fname, origin, cache_subdir=cache_subdir, **options)
        except Exception as error:  # URLError, HTTPError, a hash mismatch, ...
            place = keras_cache() / cache_subdir / (fname or Path(origin).name)
            raise ModelError(
                f"{key}.weights=imagenet: the ImageNet weights of {arch} are not in {place.parent} and cannot be "
                f"downloaded here ({type(error).__name__}): put {place.name} there (from {origin}), or give "
                f"{key}.weights=/path/to/{place.name}, or {key}.weights=null for random weights") from None

    original, file_utils.get_file = file_utils.get_file, fetch
    try:
        yield
    finally:
        file_utils.get_file = original
