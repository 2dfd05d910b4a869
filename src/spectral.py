"""Spectral objectives of data-free distillation (Lopes, Fenu & Starner 2017), designed
from the paper's text (no working code of them ever existed; see docs/spectral.md).

The network is a graph: one vertex per neuron of the tapped layers, edges weighted by the
magnitude of the (linearised) map from one tapped layer's post-ReLU output to the next
one's pre-activation. One example's activations are a signal s on the vertices. The
graph Fourier transform (GFT) projects s on the orthonormal eigenvectors U of the
symmetric adjacency, s_hat = U^T s, and is inverted exactly by s = U s_hat.
compute_stats keeps, per class, the C coefficients with the largest mean energy and
their mean and covariance; optimize_dataset samples targets mean + z L^T and makes the
selected coefficients of the optimised inputs' activations match them.

Pipeline and public API:
    blocks = connectivity_blocks(model, layers)            # [d_k, d_k+1] >= 0 each
    bases = graph_bases(blocks, dims, mode, layers)        # mode: all_layers | layer_pairs
    stats = spectral_stats(batches, bases, keep, K)        # dict of numpy arrays for stats.npz
    t = sample_spectral_targets(stats, graph, labels, rng) # [B, C] per graph
    loss = SpectralLoss(stats)                             # TensorFlow, tf.function-safe
    loss.per_example(activations, labels, targets)         # [B]; loss(...) = its mean

Signal convention, the same in spectral_stats and SpectralLoss: the activation of tapped
layer l is taken as given, ReLU'd and flattened row-major ([B, -1], channels-last); pass
pre-activations with the logits already divided by the temperature T (what
src.activations.ActivationTap(model, layers, T) returns). ReLU is idempotent, so
post-ReLU activations give the same signal; only the division by T must not be
forgotten or repeated.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from src.gaussian import cholesky_with_jitter  # noqa: F401  (re-exported for callers)

log = logging.getLogger(__name__)

RELU_SUFFIX = "_relu"  # the models' naming convention (models/_blocks.py)
MODES = ("all_layers", "layer_pairs")
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
    import tensorflow as tf
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


def connectivity_blocks(model, layers: Sequence[str], batch: int = IDENTITY_BATCH) -> list[np.ndarray]:
    """Block k ([d_k, d_k+1], float32, >= 0): entry (i, j) is the weight with which unit i
    of layer k's post-ReLU output reaches unit j of layer k+1's pre-activation, in the
    surrogate network |kernels|, no biases, max-pool -> average pool, dropout -> identity.

    Units are numbered as tf.reshape(x, [B, -1]) numbers them (channels-last, row-major).
    Computed generically by pushing the d_k one-hot inputs through the surrogate in
    batches; for Dense after Flatten this is exactly |W| in the flatten order.
    """
    import tensorflow as tf

    layers = list(layers)
    if len(layers) < 2:
        raise ValueError(f"need at least two tapped layers to connect, got {layers}")
    names = {layer.name for layer in model.layers}
    for name in layers:
        if name not in names:
            raise ValueError(f"model {model.name!r} has no layer {name!r}")
    blocks = []
    for lower, upper in zip(layers[:-1], layers[1:]):
        if lower + RELU_SUFFIX not in names:
            raise ValueError(f"tapped layer {lower!r} has no {lower + RELU_SUFFIX!r} layer after it")
        start = model.get_layer(lower + RELU_SUFFIX)
        ops = [_linear_surrogate(layer) for layer in _path_between(model, start.name, upper)]
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


def _layer_order(bases: Sequence[GraphBasis]) -> tuple[list[str], list[int]]:
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


# ---------------------------------------------------------------------------------------
# 3. Per-class spectral statistics
# ---------------------------------------------------------------------------------------

def num_coefficients(keep: float, n: int) -> int:
    """C = ceil(keep * n), at least 1 (with a tolerance so that 0.2 * 10 is 2, not 3)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return max(1, min(n, math.ceil(keep * n - 1e-9)))


def _signal(activations: Sequence, dims: Sequence[int], labels) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ReLU'd float32 signal [B, D] and int labels [B], with shape checks."""
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(activations) != len(dims):
        raise ValueError(f"got activations of {len(activations)} layers, the bases cover {len(dims)}")
    parts = []
    for k, (a, d) in enumerate(zip(activations, dims)):
        a = np.asarray(a, np.float32).reshape(len(labels), -1)
        if a.shape[1] != d:
            raise ValueError(f"activations of layer {k} have {a.shape[1]} units per example, expected {d}")
        parts.append(np.maximum(a, 0.0))
    return np.concatenate(parts, axis=1), labels


def spectral_stats(batches: Callable[[], Iterable[tuple[list[np.ndarray], np.ndarray]]],
                   bases: Sequence[GraphBasis], keep: float, num_classes: int) -> dict[str, np.ndarray]:
    """Per graph and class: the C = ceil(keep * n) GFT coefficients with the largest mean
    energy E[s_hat_i^2] in that class, and their mean and (unbiased) covariance.

    `batches()` must return a fresh iterator over (activations, labels) with the same data
    every call (two passes are made): activations is a list of per-layer arrays [B, ...]
    in the layer order of the bases (see module docstring for the signal convention).
    The GFT runs in float32 (as in SpectralLoss), accumulation in float64; covariances are
    accumulated around the pass-1 means (the stable two-pass formula).
    Returns the npz-ready dict described in docs/spectral.md.
    """
    k_classes = int(num_classes)
    layers, dims = _layer_order(bases)
    u32 = [b.U.astype(np.float32) for b in bases]
    eye = np.eye(k_classes)

    def onehot(labels):
        if labels.size and (labels.min() < 0 or labels.max() >= k_classes):
            raise ValueError(f"labels must be in [0, {k_classes}), got {labels.min()}..{labels.max()}")
        return eye[labels]

    # pass 1: class counts, per-coefficient sums and sums of squares
    count = np.zeros(k_classes)
    sums = [np.zeros((k_classes, b.n)) for b in bases]
    squares = [np.zeros((k_classes, b.n)) for b in bases]
    for activations, labels in batches():
        s, labels = _signal(activations, dims, labels)
        h = onehot(labels)
        count += h.sum(axis=0)
        for g, basis in enumerate(bases):
            s_hat = (s[:, basis.span] @ u32[g]).astype(np.float64)
            sums[g] += h.T @ s_hat
            squares[g] += h.T @ np.square(s_hat)
    if np.any(count < 2):
        raise ValueError(f"every class needs at least 2 examples for a covariance; counts per class: "
                         f"{count.astype(int).tolist()}")
    chosen, means, energies = [], [], []
    for g, basis in enumerate(bases):
        c = num_coefficients(keep, basis.n)
        energy = squares[g] / count[:, None]
        index = np.argsort(-energy, axis=1, kind="stable")[:, :c]  # most energetic first
        chosen.append(index)
        means.append(np.take_along_axis(sums[g] / count[:, None], index, axis=1))
        energies.append(energy)

    # pass 2: scatter of the selected coefficients around their class mean
    count2 = np.zeros(k_classes)
    scatter = [np.zeros((k_classes, idx.shape[1], idx.shape[1])) for idx in chosen]
    for activations, labels in batches():
        s, labels = _signal(activations, dims, labels)
        h = onehot(labels)
        count2 += h.sum(axis=0)
        for g, basis in enumerate(bases):
            s_hat = s[:, basis.span] @ u32[g]
            x = np.take_along_axis(s_hat, chosen[g][labels], axis=1).astype(np.float64) - means[g][labels]
            c = x.shape[1]
            # sum over examples of x x^T into each example's class, one GEMM, no class loop:
            # (h (x) x)^T x with (h (x) x)[b, k*C + i] = h[b, k] x[b, i]
            spread = (h[:, :, None] * x[:, None, :]).reshape(len(x), k_classes * c)
            scatter[g] += (spread.T @ x).reshape(k_classes, c, c)
    if not np.array_equal(count, count2):
        raise ValueError("batches() yielded different data on its second pass: it must be repeatable")

    stats: dict[str, np.ndarray] = {
        "spectral/mode": np.array(bases[0].mode),
        "spectral/keep": np.array(float(keep)),
        "spectral/graphs": np.array([b.name for b in bases]),
        "spectral/layers": np.array(layers),
        "spectral/dims": np.array(dims, np.int64),
    }
    for g, basis in enumerate(bases):
        cov = scatter[g] / (count[:, None, None] - 1.0)
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        total = energies[g].sum(axis=1)
        kept = np.take_along_axis(energies[g], chosen[g], axis=1).sum(axis=1)
        prefix = f"spectral/{basis.name}/"
        stats.update({
            prefix + "layers": np.array(basis.layers),
            prefix + "dims": np.array(basis.dims, np.int64),
            prefix + "offset": np.array(basis.offset, np.int64),
            prefix + "scales": np.array(basis.scales, np.float64),
            prefix + "eigenvalues": basis.eigenvalues.astype(np.float64),
            prefix + "basis": u32[g],
            prefix + "index": chosen[g].astype(np.int64),
            prefix + "mean": means[g],
            prefix + "cov": cov,
            prefix + "count": count.astype(np.int64),
            prefix + "energy": energies[g],
            prefix + "captured": np.divide(kept, total, out=np.ones_like(total), where=total > 0),
        })
    return stats


def graph_names(stats: Mapping[str, np.ndarray]) -> list[str]:
    return [str(x) for x in np.asarray(stats["spectral/graphs"]).reshape(-1)]


def _graph(stats: Mapping[str, np.ndarray], graph: str | int) -> str:
    names = graph_names(stats)
    if isinstance(graph, (int, np.integer)):
        return names[int(graph)]
    if graph not in names:
        raise ValueError(f"no spectral graph {graph!r} in the stats; graphs: {', '.join(names)}")
    return graph


def bases_from_stats(stats: Mapping[str, np.ndarray]) -> list[GraphBasis]:
    """The GraphBasis objects back from saved stats (U from its float32 copy)."""
    mode = str(np.asarray(stats["spectral/mode"]))
    out = []
    for g in graph_names(stats):
        p = f"spectral/{g}/"
        out.append(GraphBasis(name=g, mode=mode, layers=tuple(str(x) for x in stats[p + "layers"]),
                              dims=tuple(int(d) for d in stats[p + "dims"]), offset=int(stats[p + "offset"]),
                              eigenvalues=np.asarray(stats[p + "eigenvalues"], np.float64),
                              U=np.asarray(stats[p + "basis"], np.float64),
                              scales=tuple(float(x) for x in stats[p + "scales"])))
    return out


# ---------------------------------------------------------------------------------------
# 4. Sampling targets: mean + z L^T
# ---------------------------------------------------------------------------------------

def spectral_cholesky(stats: Mapping[str, np.ndarray], graph: str | int,
                      jitter: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of every class's coefficient covariance of one graph, computed
    once ([K, C, C], and the jitter used per class [K]); warns for each class that needed
    jitter. Pass the factors to sample_spectral_targets(chol=...) to reuse them."""
    g = _graph(stats, graph)
    cov = np.asarray(stats[f"spectral/{g}/cov"], np.float64)
    factors, used = np.empty_like(cov), np.zeros(len(cov))
    for c in range(len(cov)):  # one factorisation per class: inherently a loop
        factors[c], used[c] = cholesky_with_jitter(cov[c], jitter)
        if used[c] > 0:
            log.warning("spectral graph %r, class %d: coefficient covariance not positive definite, "
                        "added %.3g * I (%.3g of its mean variance)", g, c, used[c],
                        used[c] / max(float(np.mean(np.diag(cov[c]))), 1e-300))
    return factors, used


def sample_spectral_targets(stats: Mapping[str, np.ndarray], graph: str | int, labels: np.ndarray,
                            rng: np.random.Generator, jitter: float = 1e-6,
                            chol: np.ndarray | None = None) -> np.ndarray:
    """Targets [B, C] (float64) for the selected coefficients of each example's class:
    mean_c + z L_c^T with z ~ N(0, I) rows, whose covariance is L_c L_c^T = cov_c (+ jitter).
    `chol` ([K, C, C], from spectral_cholesky) skips the factorisations; otherwise the
    classes present in `labels` are factorised (with a logged warning when jitter is needed).
    """
    g = _graph(stats, graph)
    mean = np.asarray(stats[f"spectral/{g}/mean"], np.float64)
    cov = np.asarray(stats[f"spectral/{g}/cov"], np.float64)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= len(mean)):
        raise ValueError(f"labels must be in [0, {len(mean)})")
    z = rng.standard_normal((len(labels), mean.shape[1]))
    out = mean[labels].copy()
    for c in np.unique(labels):  # grouped by class: one GEMM per class present
        if chol is not None:
            factor = chol[c]
        else:
            factor, used = cholesky_with_jitter(cov[c], jitter)
            if used > 0:
                log.warning("spectral graph %r, class %d: coefficient covariance not positive definite, "
                            "added %.3g * I", g, c, used)
        rows = labels == c
        out[rows] += z[rows] @ factor.T
    return out


def reconstruct(stats: Mapping[str, np.ndarray], graph: str | int, labels: np.ndarray,
                coefficients: np.ndarray) -> np.ndarray:
    """The paper's s_bar: the inverse GFT of the C selected coefficients (others 0),
    [B, n] in this graph's vertex order (e.g. to look at what a sampled target means)."""
    g = _graph(stats, graph)
    basis = np.asarray(stats[f"spectral/{g}/basis"], np.float64)
    index = np.asarray(stats[f"spectral/{g}/index"])
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    coefficients = np.asarray(coefficients, np.float64)
    out = np.empty((len(labels), basis.shape[0]))
    for c in np.unique(labels):  # grouped by class: one GEMM per class present
        rows = labels == c
        out[rows] = coefficients[rows] @ basis[:, index[c]].T
    return out


# ---------------------------------------------------------------------------------------
# 5. The loss (TensorFlow)
# ---------------------------------------------------------------------------------------

class SpectralLoss:
    """Per example and graph g: mean over the C selected coefficients of
    (U_C(c)^T s_g - t_g)^2, with c the example's class, summed over the graphs.

    With out_of_band = w > 0 each graph's term also gets w * ||s_g - U_C(c) U_C(c)^T s_g||^2 / C,
    the energy of s_g outside the selected coefficients; w = 1 makes the term exactly
    ||s_g - U_C(c) t_g||^2 / C, the paper's vertex-domain loss against the reconstruction
    s_bar = inverse GFT of (t, 0) (Pythagoras; see docs/spectral.md). Default 0: only the
    selected coefficients are constrained.

    Built once from the stats (numpy); the per-class projections P[c] = U[:, index[c]]
    ([n, C] float32 per graph and class, K * n * C * 4 bytes in all) become constants.
    Calls are tf.function-safe: examples are grouped by class with tf.dynamic_partition (a
    static loop over the K classes builds K matmuls, empty for absent classes) and put
    back with tf.dynamic_stitch, so a batch costs B * n * C multiply-adds per graph
    whether it holds one class or many.

        loss = SpectralLoss(stats)
        loss.per_example(activations, labels, targets)  # [B]
        loss(activations, labels, targets)              # scalar mean over the batch

    activations: per-layer tensors [B, ...] in the order `loss.layers` (or a dict by layer
    name), pre-activations with the logits already divided by T (ReLU is applied here);
    labels: int [B]; targets: per-graph [B, C_g] in the order `loss.graphs` (or a dict).
    """

    def __init__(self, stats: Mapping[str, np.ndarray], graphs: Sequence[str] | None = None,
                 out_of_band: float = 0.0):
        import tensorflow as tf

        if out_of_band < 0:
            raise ValueError(f"out_of_band must be >= 0, got {out_of_band}")
        self.out_of_band = float(out_of_band)
        self.layers = [str(x) for x in np.asarray(stats["spectral/layers"]).reshape(-1)]
        self.graphs = [_graph(stats, g) for g in (graph_names(stats) if graphs is None else graphs)]
        self.graph_layers, self.projections = [], []
        for g in self.graphs:
            p = f"spectral/{g}/"
            basis = np.asarray(stats[p + "basis"], np.float32)
            index = np.asarray(stats[p + "index"])
            self.graph_layers.append([str(x) for x in stats[p + "layers"]])
            # one constant per class: slicing a [K, n, C] constant at run time copies it every step
            self.projections.append([tf.constant(np.ascontiguousarray(basis[:, row])) for row in index])
        self.num_classes = len(self.projections[0])
        self.sizes = [int(p[0].shape[1]) for p in self.projections]

    def _signals(self, activations) -> dict:
        import tensorflow as tf

        if isinstance(activations, Mapping):
            items = activations
        else:
            if len(activations) != len(self.layers):
                raise ValueError(f"expected activations of {len(self.layers)} layers {self.layers}, "
                                 f"got {len(activations)}")
            items = dict(zip(self.layers, activations))
        return {name: tf.nn.relu(tf.reshape(tf.cast(a, tf.float32), [tf.shape(a)[0], -1]))
                for name, a in items.items()}

    def _transform(self, activations, labels, residual: bool) -> list:
        """Per graph: (selected coefficients [B, C], out-of-band energy [B] or None)."""
        import tensorflow as tf

        signals = self._signals(activations)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        rows = tf.dynamic_partition(tf.range(tf.shape(labels)[0]), labels, self.num_classes)
        out = []
        for names, projection in zip(self.graph_layers, self.projections):
            s = tf.concat([signals[name] for name in names], axis=1)
            groups = tf.dynamic_partition(s, labels, self.num_classes)
            coefficients = [tf.matmul(groups[c], projection[c]) for c in range(self.num_classes)]
            energy = None
            if residual:
                rest = [tf.reduce_sum(tf.square(groups[c] - tf.matmul(coefficients[c], projection[c],
                                                                      transpose_b=True)), axis=1)
                        for c in range(self.num_classes)]
                energy = tf.dynamic_stitch(rows, rest)
            out.append((tf.dynamic_stitch(rows, coefficients), energy))
        return out

    def project(self, activations, labels) -> list:
        """The selected coefficients U_C(c)^T s of each example, per graph: [B, C_g]."""
        return [coefficients for coefficients, _ in self._transform(activations, labels, False)]

    def per_example(self, activations, labels, targets) -> "tf.Tensor":
        import tensorflow as tf

        if isinstance(targets, Mapping):
            targets = [targets[g] for g in self.graphs]
        if len(targets) != len(self.graphs):
            raise ValueError(f"expected targets for the {len(self.graphs)} graphs {self.graphs}, "
                             f"got {len(targets)}")
        terms = []
        for (coefficients, energy), t in zip(self._transform(activations, labels, self.out_of_band > 0), targets):
            term = tf.reduce_mean(tf.square(coefficients - tf.cast(t, tf.float32)), axis=1)
            if energy is not None:
                term += self.out_of_band * energy / float(coefficients.shape[1])
            terms.append(term)
        return tf.add_n(terms)

    def __call__(self, activations, labels, targets) -> "tf.Tensor":
        import tensorflow as tf

        return tf.reduce_mean(self.per_example(activations, labels, targets))
