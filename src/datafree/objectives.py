"""Step 2 of data-free distillation: what the reconstructed inputs are optimised for.

An objective turns a chunk of (class, batch) pairs into start inputs, intended labels and
targets sampled from the teacher's statistics (`prepare`), and gives the per-example loss
of inputs against those targets (`loss`), which src.datafree.reconstruct minimises.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from src.datafree import spectral
from src.datafree.batchnorm import BatchNormObjective, batchnorm_layers
from src.datafree.dropout_chain import DropoutChain
from src.datafree.gaussian import cholesky_with_jitter, sample
from src.datafree.reconstruct import relu_mse, start_point
from src.datafree.statistics import stats_output_layer
from src.datafree.taps import ActivationTap
from src.errors import ArtifactError, ConfigError
from src.schema.datafree import BATCHNORM, LAYERWISE_OBJECTIVES, SPECTRAL_GRAPHS


def default_lr(teacher: keras.Model) -> float:
    """The paper's learning rates: 0.07 for fully connected teachers, 0.09 for LeNet."""
    convolutional = any(isinstance(layer, keras.layers.Conv2D) for layer in teacher.layers)
    return 0.09 if convolutional else 0.07


def check_teacher(objective: str, teacher: keras.Model, layers: list[str]) -> None:
    """A one-line error when `objective` cannot read `teacher`, found on its architecture
    before it is trained: the spectral objectives need this project's layer naming (X, then
    X_relu) and only plain layers between the tapped `layers`; all_layers_dropout a chain
    of layers with Dropout; batchnorm BatchNormalization layers."""
    if objective == BATCHNORM:
        batchnorm_layers(teacher)
    elif objective == "all_layers_dropout":
        DropoutChain(teacher, [], 1.0)
    elif objective in SPECTRAL_GRAPHS:
        try:
            spectral.check_linearisable(teacher, layers)
        except ValueError as error:
            raise ConfigError(f"optimize.objective={objective} cannot make a graph of the teacher {teacher.name} "
                              f"({error}): the spectral objectives need this project's layer naming (X, then X_relu) "
                              "and only Dense, Conv2D, pooling, Flatten or Dropout layers between the tapped ones; "
                              "use optimize.objective=all_layers") from None


def make_objective(optimize, seed: int, teacher, stats: dict):
    """The objective named by optimize.objective, over the teacher and its stats (batchnorm
    reads the teacher's BatchNorm layers instead)."""
    objective = optimize.objective
    if objective == BATCHNORM:
        return BatchNormObjective(optimize, seed, teacher)
    if objective in LAYERWISE_OBJECTIVES:
        return LayerwiseObjective(optimize, seed, teacher, stats)
    if "spectral/graphs" not in stats:
        raise ArtifactError(f"optimize.objective={objective} needs spectral statistics and these stats have "
                            f"none: recompute them with stats.spectral={SPECTRAL_GRAPHS[objective]}")
    return SpectralObjective(optimize, seed, teacher, stats)


class SpectralObjective:
    """spectral_all_layers / spectral_layer_pairs: the teacher's activations, projected on
    each class's kept graph-Fourier coefficients, against samples of their per-class
    Gaussian (src/datafree/spectral, docs/spectral.md). The labels travel as the first target
    so that each example is projected on its own class's coefficients."""

    def __init__(self, optimize, seed: int, teacher, stats: dict):
        self.op, self.seed = optimize, seed
        self.stats = stats
        self.loss_terms = spectral.SpectralLoss(stats, out_of_band=optimize.out_of_band)
        self.tap = ActivationTap(teacher, self.loss_terms.layers, float(stats["temperature"]))
        self.factors = {g: spectral.spectral_cholesky(stats, g, self.op.jitter)[0] for g in self.loss_terms.graphs}
        self.loss = lambda x, targets: self.loss_terms.per_example(self.tap(x), targets[0], targets[1:])

    def prepare(self, chunk: list[tuple[int, int]], input_shape: tuple) -> tuple[np.ndarray, np.ndarray, list]:
        x0, labels, targets = [], [], [[] for _ in self.loss_terms.graphs]
        for c, b in chunk:
            rng, start, label = start_point(self.op, self.seed, c, b, input_shape)
            x0.append(start)
            labels.append(label)
            for i, g in enumerate(self.loss_terms.graphs):
                targets[i].append(spectral.sample_spectral_targets(self.stats, g, label, rng,
                                                                        chol=self.factors[g]))
        labels = np.concatenate(labels)
        tensors = [tf.constant(labels)] + [tf.constant(np.concatenate(t), tf.float32) for t in targets]
        return np.concatenate(x0), labels, tensors


class LayerwiseObjective:
    """top_layer / all_layers / all_layers_dropout: per-example relu-MSE between the
    teacher's activations and Gaussian samples of the class's stats."""

    def __init__(self, optimize, seed: int, teacher, stats: dict):
        self.op, self.seed = optimize, seed
        all_layers = [str(n) for n in stats["layers"]]
        output = stats_output_layer(stats)
        self.layers = [output] if self.op.objective == "top_layer" else all_layers
        if output not in all_layers:
            raise ArtifactError(f"the stats have no layer {output!r}, the teacher's output (they have "
                                f"{all_layers}); recompute them with stats.layers=null")
        self.temperature = float(stats["temperature"])
        classes = range(len(stats["count"])) if self.op.classes is None else self.op.classes
        self.factors = {}  # per layer: {class: Cholesky factor, or per-unit std}, of the classes reconstructed
        for name in self.layers:
            if f"cov/{name}" in stats:
                covs = stats[f"cov/{name}"]
                self.factors[name] = {c: cholesky_with_jitter(covs[c], self.op.jitter, f"class {c} covariance of {name}")[0]
                                      for c in classes}
            else:
                self.factors[name] = {c: stats[f"std/{name}"][c].astype(np.float64) for c in classes}
        self.means = {name: stats[f"mean/{name}"].astype(np.float64) for name in self.layers}
        units = [self.means[name].shape[1] for name in self.layers]
        self.weights = [1.0 / d for d in units] if self.op.layer_weighting == "width" else [1.0] * len(units)
        self.dropout = self.op.objective == "all_layers_dropout"
        if self.dropout:
            self.forward = DropoutChain(teacher, self.layers, self.temperature)
            self.loss = lambda x, targets: relu_mse(self.forward(x, targets[len(self.layers):]),
                                                    targets[: len(self.layers)], self.weights)
        else:
            self.tap = ActivationTap(teacher, self.layers, self.temperature)
            self.loss = lambda x, targets: relu_mse(self.tap(x), targets, self.weights)

    def prepare(self, chunk: list[tuple[int, int]], input_shape: tuple) -> tuple[np.ndarray, np.ndarray, list]:
        """Start points, intended labels and targets of a chunk of (class, batch) pairs."""
        size = self.op.batch_size
        x0, labels, targets = [], [], [[] for _ in self.layers]
        masks = []
        for c, b in chunk:
            rng, start, label = start_point(self.op, self.seed, c, b, input_shape)
            x0.append(start)
            labels.append(label)
            for i, name in enumerate(self.layers):
                targets[i].append(sample(self.means[name][c], np.asarray(self.factors[name][c]), size, rng))
            if self.dropout:
                masks.append(self.forward.draw_masks(size, rng))
        tensors = [tf.constant(np.concatenate(t)) for t in targets]
        if self.dropout:
            tensors += [tf.constant(np.concatenate([m[i] for m in masks])) for i in range(len(masks[0]))]
        return np.concatenate(x0), np.concatenate(labels), tensors
