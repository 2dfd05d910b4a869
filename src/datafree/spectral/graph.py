"""The network as a graph: the magnitude of the linear(ised) map between adjacent tapped
layers (its edges), and the orthonormal eigenvectors of its adjacency (its Fourier basis)."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from models import RELU_SUFFIX
from src.schema.datafree import SPECTRAL_MODES as MODES

log = logging.getLogger(__name__)

ALL_GRAPH = "all"  # name of the single graph of mode all_layers
IDENTITY_BATCH = 256  # one-hot inputs pushed through a linearised sub-network at once
MAX_BLOCK_ENTRIES = 100_000_000  # 400 MB of float32 per block; beyond that eigh is hopeless anyway


# ---------------------------------------------------------------------------------------
# 1. Connectivity: the magnitude of the linear(ised) map between adjacent tapped layers
# ---------------------------------------------------------------------------------------

def _path_between(model, start_name: str, end_name: str) -> list:
    """The layers after `start_name` up to and including `end_name`, a single chain."""
    start = model.get_layer(start_name)
    layer = model.get_layer(end_name)
    path = [layer]
    while True:
        try:
            tensor = layer.input
        except (AttributeError, ValueError) as exc:  # a shared layer has several inputs
            raise ValueError(f"cannot linearise layer {layer.name!r}: {exc}") from exc
        if isinstance(tensor, (list, tuple, dict)):
            raise ValueError(f"cannot linearise layer {layer.name!r}: it has several inputs "
                             f"(only a chain of single-input layers can be linearised)")
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ValueError(f"cannot trace the input of layer {layer.name!r} back to {start_name!r}")
        layer = history.operation
        if layer is start:
            return path[::-1]
        if type(layer).__name__ == "InputLayer":
            raise ValueError(f"layer {end_name!r} is not downstream of {start_name!r}: "
                             f"list the tapped layers in network order")
        path.append(layer)


def _linear_surrogate(layer) -> Callable:
    """x -> the non-negative linear(ised) map of `layer`: |kernel|, no bias; max-pooling
    becomes average pooling; dropout the identity. ValueError names what cannot be done."""
    import keras
    from keras import layers as kl

    def config_check(ok: bool, why: str):
        if not ok:
            raise ValueError(f"cannot linearise layer {layer.name!r} ({type(layer).__name__}): {why}")

    if isinstance(layer, kl.Dense):
        kernel = tf.constant(np.abs(keras.ops.convert_to_numpy(layer.kernel)), tf.float32)
        return lambda x: tf.tensordot(x, kernel, axes=[[x.shape.rank - 1], [0]])
    if isinstance(layer, kl.Conv2D) and not isinstance(layer, kl.Conv2DTranspose):
        cfg = layer.get_config()
        config_check(cfg["data_format"] == "channels_last", "only channels_last is supported")
        config_check(cfg["groups"] == 1, "grouped convolutions are not supported")
        config_check(cfg["padding"] in ("valid", "same"), f"padding {cfg['padding']!r}")
        kernel = tf.constant(np.abs(keras.ops.convert_to_numpy(layer.kernel)), tf.float32)
        strides, dilations, padding = list(cfg["strides"]), list(cfg["dilation_rate"]), cfg["padding"].upper()
        return lambda x: tf.nn.conv2d(x, kernel, strides=strides, padding=padding, dilations=dilations)
    if isinstance(layer, (kl.MaxPooling2D, kl.AveragePooling2D)):
        cfg = layer.get_config()
        config_check(cfg["data_format"] == "channels_last", "only channels_last is supported")
        size, strides, padding = list(cfg["pool_size"]), list(cfg["strides"]), cfg["padding"].upper()
        # TF's average pooling divides by the number of in-image cells under "same"
        # padding, which is also the max-pooling linearisation: each candidate equally likely.
        return lambda x: tf.nn.avg_pool2d(x, size, strides, padding)
    if isinstance(layer, kl.Flatten):
        return lambda x: tf.reshape(x, [tf.shape(x)[0], -1])
    if isinstance(layer, kl.Reshape):
        shape = list(layer.target_shape)
        return lambda x: tf.reshape(x, [tf.shape(x)[0]] + shape)
    if isinstance(layer, (kl.Dropout, kl.SpatialDropout2D, kl.GaussianNoise, kl.GaussianDropout, kl.Identity)):
        return lambda x: x  # inference mode
    if isinstance(layer, kl.Activation) and layer.get_config().get("activation") == "linear":
        return lambda x: x
    raise ValueError(f"cannot linearise layer {layer.name!r} ({type(layer).__name__}) between two tapped "
                     f"layers: supported are Dense, Conv2D, Max/AveragePooling2D, Flatten, Reshape, Dropout "
                     f"(a ReLU there means the listed layers are not adjacent tapped layers)")


def _units(layer) -> tuple[int, ...]:
    shape = tuple(layer.output.shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"layer {layer.name!r} has an unknown output size {shape}: build the model "
                         f"with a fixed input shape")
    return tuple(int(d) for d in shape)


def _surrogate_paths(model, layers: Sequence[str]) -> list[tuple[str, str, object, list[Callable]]]:
    """(lower, upper, lower's ReLU layer, the linear surrogates from it to upper) for each
    pair of adjacent tapped layers; ValueError naming what cannot be linearised."""
    layers = list(layers)
    if len(layers) < 2:
        raise ValueError(f"need at least two tapped layers to connect, got {layers}")
    names = {layer.name for layer in model.layers}
    for name in layers:
        if name not in names:
            raise ValueError(f"model {model.name!r} has no layer {name!r}")
    paths = []
    for lower, upper in zip(layers[:-1], layers[1:]):
        if lower + RELU_SUFFIX not in names:
            raise ValueError(f"tapped layer {lower!r} has no {lower + RELU_SUFFIX!r} layer after it")
        start = model.get_layer(lower + RELU_SUFFIX)
        ops = [_linear_surrogate(layer) for layer in _path_between(model, start.name, upper)]
        paths.append((lower, upper, start, ops))
    return paths


def check_linearisable(model, layers: Sequence[str]) -> None:
    """ValueError naming the first pair of adjacent tapped layers that connectivity_blocks
    could not connect, found without computing a block (a check before any work)."""
    _surrogate_paths(model, layers)


def connectivity_blocks(model, layers: Sequence[str], batch: int = IDENTITY_BATCH) -> list[np.ndarray]:
    """Block k ([d_k, d_k+1], float32, >= 0): entry (i, j) is the weight with which unit i
    of layer k's post-ReLU output reaches unit j of layer k+1's pre-activation, in the
    surrogate network |kernels|, no biases, max-pool -> average pool, dropout -> identity.

    Units are numbered as tf.reshape(x, [B, -1]) numbers them (channels-last, row-major).
    Computed generically by pushing the d_k one-hot inputs through the surrogate in
    batches; for Dense after Flatten this is exactly |W| in the flatten order.
    """
    blocks = []
    for lower, upper, start, ops in _surrogate_paths(model, layers):
        in_shape = _units(start)
        d_in, d_out = math.prod(in_shape), math.prod(_units(model.get_layer(upper)))
        if d_in * d_out > MAX_BLOCK_ENTRIES:
            raise ValueError(f"the connectivity block {lower!r} -> {upper!r} would have {d_in} x {d_out} "
                             f"entries: too large for a dense graph (its eigendecomposition would not "
                             f"finish); tap fewer or smaller layers")
        block = np.empty((d_in, d_out), np.float32)
        for first in range(0, d_in, batch):
            rows = min(batch, d_in - first)
            onehot = np.zeros((rows, d_in), np.float32)
            onehot[np.arange(rows), first + np.arange(rows)] = 1.0
            x = tf.constant(onehot.reshape((rows,) + in_shape))
            for op in ops:
                x = op(x)
            block[first:first + rows] = tf.reshape(x, [rows, -1]).numpy()
        blocks.append(block)
    return blocks


# ---------------------------------------------------------------------------------------
# 2. Graphs and their Fourier bases
# ---------------------------------------------------------------------------------------

def spectral_norm(block: np.ndarray) -> float:
    """Largest singular value, from the eigenvalues of the smaller Gram matrix (exact and
    deterministic, unlike a randomly started Lanczos)."""
    b = np.asarray(block, np.float64)
    gram = b.T @ b if b.shape[0] >= b.shape[1] else b @ b.T
    return float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0)))


def adjacency(blocks: Sequence[np.ndarray], normalise: bool = True) -> tuple[np.ndarray, list[float]]:
    """Symmetric adjacency (float64) of a chain of layers: block k at (k, k+1), its
    transpose at (k+1, k), zero elsewhere. With `normalise`, each block is divided by its
    spectral norm first. Returns (A, the divisors)."""
    dims = [blocks[0].shape[0]] + [b.shape[1] for b in blocks]
    offsets = np.concatenate([[0], np.cumsum(dims)])
    a = np.zeros((offsets[-1], offsets[-1]), np.float64)
    scales = []
    for k, block in enumerate(blocks):
        scale = spectral_norm(block) if normalise else 1.0
        if scale == 0.0:
            log.warning("connectivity block %d is all zeros: its layers are disconnected in the graph", k)
            scale = 1.0
        scales.append(scale)
        b = np.asarray(block, np.float64) / scale
        rows, cols = slice(offsets[k], offsets[k + 1]), slice(offsets[k + 1], offsets[k + 2])
        a[rows, cols] = b
        a[cols, rows] = b.T
    return a, scales


@dataclass(frozen=True, eq=False)
class GraphBasis:
    """One graph: the tapped layers it covers (adjacent ones, in order), and the
    orthonormal eigenvectors U ([n, n] float64, columns, ascending eigenvalues) of its
    symmetric adjacency. The GFT of a row signal s [B, n] is s @ U, its inverse s_hat @ U.T."""
    name: str
    mode: str
    layers: tuple[str, ...]
    dims: tuple[int, ...]
    offset: int  # where this graph's signal starts in the concatenation of ALL tapped layers
    eigenvalues: np.ndarray
    U: np.ndarray
    scales: tuple[float, ...]  # the spectral norm each connectivity block was divided by

    @property
    def n(self) -> int:
        return int(sum(self.dims))

    @property
    def span(self) -> slice:
        """This graph's slice of s = concat over all tapped layers (layer order of the bases)."""
        return slice(self.offset, self.offset + self.n)

    def layer_slices(self) -> dict[str, slice]:
        """Each covered layer's slice of this graph's own signal."""
        ends = np.cumsum(self.dims)
        return {name: slice(int(e - d), int(e)) for name, d, e in zip(self.layers, self.dims, ends)}

    def gft(self, s: np.ndarray) -> np.ndarray:
        return np.asarray(s) @ self.U

    def igft(self, s_hat: np.ndarray) -> np.ndarray:
        return np.asarray(s_hat) @ self.U.T


def graph_bases(blocks: Sequence[np.ndarray], layer_dims: Sequence[int], mode: str,
                layers: Sequence[str] | None = None) -> list[GraphBasis]:
    """The graph(s) of `mode` and their eigenbases.

    all_layers: one graph over every layer; layer_pairs: one graph per pair of adjacent
    layers (named "<lower>-<upper>"). Each block is divided by its spectral norm, so every
    adjacent pair has a unit top eigenvalue whatever the weights' scale (see the docs).
    Cost: one dense eigh per graph, O(n^3) in the graph's vertex count n.
    """
    if mode not in MODES:
        raise ValueError(f"unknown spectral mode {mode!r}; known: {', '.join(MODES)}")
    dims = [int(d) for d in layer_dims]
    layers = [f"layer{i}" for i in range(len(dims))] if layers is None else [str(x) for x in layers]
    if len(layers) != len(dims) or len(blocks) != len(dims) - 1 or len(dims) < 2:
        raise ValueError(f"need L >= 2 layer dims, L names and L - 1 blocks; got {len(dims)} dims, "
                         f"{len(layers)} names and {len(blocks)} blocks")
    for k, block in enumerate(blocks):
        if block.shape != (dims[k], dims[k + 1]):
            raise ValueError(f"block {k} ({layers[k]} -> {layers[k + 1]}) has shape {block.shape}, "
                             f"expected {(dims[k], dims[k + 1])}")
        if not np.all(np.isfinite(block)):
            raise ValueError(f"block {k} ({layers[k]} -> {layers[k + 1]}) is not finite")
    offsets = np.concatenate([[0], np.cumsum(dims)]).astype(int)
    if mode == "all_layers":
        groups = [(ALL_GRAPH, 0, len(dims))]
    else:
        groups = [(f"{layers[k]}-{layers[k + 1]}", k, k + 2) for k in range(len(dims) - 1)]
    bases = []
    for name, lo, hi in groups:
        a, scales = adjacency(blocks[lo:hi - 1])
        eigenvalues, u = np.linalg.eigh(a)
        del a
        bases.append(GraphBasis(name=name, mode=mode, layers=tuple(layers[lo:hi]), dims=tuple(dims[lo:hi]),
                                offset=int(offsets[lo]), eigenvalues=eigenvalues, U=u,
                                scales=tuple(scales)))
    return bases


def layer_order(bases: Sequence[GraphBasis]) -> tuple[list[str], list[int]]:
    """All layers the bases cover, in order, with their dims; checks the offsets agree."""
    layers, dims = [], []
    for basis in bases:
        for name, d in zip(basis.layers, basis.dims):
            if name not in layers:
                layers.append(name)
                dims.append(d)
    offsets = dict(zip(layers, np.concatenate([[0], np.cumsum(dims)])))
    for basis in bases:
        if offsets[basis.layers[0]] != basis.offset:
            raise ValueError(f"graph {basis.name!r} does not sit at its layers' place in the signal")
    return layers, dims
