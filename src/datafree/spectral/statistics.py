"""Per-class spectral statistics (which coefficients each class keeps, their mean and
covariance) and the sampling of targets from them: mean + z L^T."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from src.datafree.gaussian import cholesky_with_jitter
from src.datafree.spectral.graph import GraphBasis, layer_order

log = logging.getLogger(__name__)


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
    in the layer order of the bases (see the package docstring for the signal convention).
    The GFT runs in float32 (as in SpectralLoss), accumulation in float64; covariances are
    accumulated around the pass-1 means (the stable two-pass formula).
    Returns the npz-ready dict described in docs/spectral.md.
    """
    layers, dims = layer_order(bases)
    u32 = [b.U.astype(np.float32) for b in bases]

    def signals():  # (signal [B, D], one-hot labels [B, K], labels [B]) per batch
        for activations, labels in batches():
            s, labels = _signal(activations, dims, labels)
            yield s, _onehot(labels, num_classes), labels

    count, sums, squares = _coefficient_moments(signals(), bases, u32, num_classes)
    chosen, means, energies = [], [], []
    for g, basis in enumerate(bases):
        energy = squares[g] / count[:, None]
        index = np.argsort(-energy, axis=1, kind="stable")[:, :num_coefficients(keep, basis.n)]  # most energetic first
        chosen.append(index)
        means.append(np.take_along_axis(sums[g] / count[:, None], index, axis=1))
        energies.append(energy)
    count2, scatter = _coefficient_scatter(signals(), bases, u32, chosen, means, num_classes)
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
        stats.update(_graph_arrays(basis, u32[g], chosen[g], means[g], scatter[g], energies[g], count))
    return stats


def _onehot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return np.eye(num_classes)[labels]


def _coefficient_moments(signals, bases, u32, num_classes: int):
    """Pass 1: class counts, per-coefficient sums and sums of squares."""
    count = np.zeros(num_classes)
    sums = [np.zeros((num_classes, b.n)) for b in bases]
    squares = [np.zeros((num_classes, b.n)) for b in bases]
    for s, h, _ in signals:
        count += h.sum(axis=0)
        for g, basis in enumerate(bases):
            s_hat = (s[:, basis.span] @ u32[g]).astype(np.float64)
            sums[g] += h.T @ s_hat
            squares[g] += h.T @ np.square(s_hat)
    if np.any(count < 2):
        raise ValueError(f"every class needs at least 2 examples for a covariance; counts per class: "
                         f"{count.astype(int).tolist()}")
    return count, sums, squares


def _coefficient_scatter(signals, bases, u32, chosen, means, num_classes: int):
    """Pass 2: scatter of the selected coefficients around their class mean."""
    count = np.zeros(num_classes)
    scatter = [np.zeros((num_classes, idx.shape[1], idx.shape[1])) for idx in chosen]
    for s, h, labels in signals:
        count += h.sum(axis=0)
        for g, basis in enumerate(bases):
            s_hat = s[:, basis.span] @ u32[g]
            x = np.take_along_axis(s_hat, chosen[g][labels], axis=1).astype(np.float64) - means[g][labels]
            c = x.shape[1]
            # sum over examples of x x^T into each example's class, one GEMM, no class loop:
            # (h (x) x)^T x with (h (x) x)[b, k*C + i] = h[b, k] x[b, i]
            spread = (h[:, :, None] * x[:, None, :]).reshape(len(x), num_classes * c)
            scatter[g] += (spread.T @ x).reshape(num_classes, c, c)
    return count, scatter


def _graph_arrays(basis: GraphBasis, u32, chosen, means, scatter, energy, count) -> dict[str, np.ndarray]:
    """The stats.npz entries of one graph (docs/spectral.md, "stats.npz key layout")."""
    cov = scatter / (count[:, None, None] - 1.0)
    cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
    total = energy.sum(axis=1)
    kept = np.take_along_axis(energy, chosen, axis=1).sum(axis=1)
    prefix = f"spectral/{basis.name}/"
    return {
        prefix + "layers": np.array(basis.layers),
        prefix + "dims": np.array(basis.dims, np.int64),
        prefix + "offset": np.array(basis.offset, np.int64),
        prefix + "scales": np.array(basis.scales, np.float64),
        prefix + "eigenvalues": basis.eigenvalues.astype(np.float64),
        prefix + "basis": u32,
        prefix + "index": chosen.astype(np.int64),
        prefix + "mean": means,
        prefix + "cov": cov,
        prefix + "count": count.astype(np.int64),
        prefix + "energy": energy,
        prefix + "captured": np.divide(kept, total, out=np.ones_like(total), where=total > 0),
    }


def graph_names(stats: Mapping[str, np.ndarray]) -> list[str]:
    return [str(x) for x in np.asarray(stats["spectral/graphs"]).reshape(-1)]


def graph_name(stats: Mapping[str, np.ndarray], graph: str | int) -> str:
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
    g = graph_name(stats, graph)
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
    g = graph_name(stats, graph)
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
    g = graph_name(stats, graph)
    basis = np.asarray(stats[f"spectral/{g}/basis"], np.float64)
    index = np.asarray(stats[f"spectral/{g}/index"])
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    coefficients = np.asarray(coefficients, np.float64)
    out = np.empty((len(labels), basis.shape[0]))
    for c in np.unique(labels):  # grouped by class: one GEMM per class present
        rows = labels == c
        out[rows] = coefficients[rows] @ basis[:, index[c]].T
    return out
