"""The spectral loss: selected graph-Fourier coefficients of the teacher's activations
against their sampled targets (TensorFlow, tf.function-safe)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from src.datafree.spectral.statistics import graph_name, graph_names


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
        if out_of_band < 0:
            raise ValueError(f"out_of_band must be >= 0, got {out_of_band}")
        self.out_of_band = float(out_of_band)
        self.layers = [str(x) for x in np.asarray(stats["spectral/layers"]).reshape(-1)]
        self.graphs = [graph_name(stats, g) for g in (graph_names(stats) if graphs is None else graphs)]
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

    def per_example(self, activations, labels, targets) -> tf.Tensor:
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

    def __call__(self, activations, labels, targets) -> tf.Tensor:
        return tf.reduce_mean(self.per_example(activations, labels, targets))
