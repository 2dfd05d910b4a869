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
src.datafree.taps.ActivationTap(model, layers, T) returns). ReLU is idempotent, so
post-ReLU activations give the same signal; only the division by T must not be
forgotten or repeated.

Modules: graph.py (connectivity and Fourier bases), statistics.py (per-class
statistics and target sampling), loss.py (the TensorFlow loss).
"""
from src.datafree.spectral.graph import (MODES, GraphBasis, adjacency, check_linearisable, connectivity_blocks,
                                         graph_bases, spectral_norm)
from src.datafree.spectral.loss import SpectralLoss
from src.datafree.spectral.statistics import (bases_from_stats, graph_names, num_coefficients, reconstruct,
                                              sample_spectral_targets, spectral_cholesky, spectral_stats)

__all__ = ["MODES", "GraphBasis", "SpectralLoss", "adjacency", "bases_from_stats", "check_linearisable",
           "connectivity_blocks", "graph_bases", "graph_names", "num_coefficients", "reconstruct",
           "sample_spectral_targets", "spectral_cholesky", "spectral_norm", "spectral_stats"]
