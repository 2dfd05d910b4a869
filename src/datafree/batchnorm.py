"""The BatchNorm-statistics objective of DeepInversion (Yin et al. 2020): inputs whose
batch statistics at every BatchNorm layer of the teacher match the running mean and
variance the layer stored in training, and that the teacher classifies as their class.
It needs the teacher alone: no compute_stats, no data.

    per batch b:  sum over BN layers l of  ||mu_l(x_b) - running_mean_l||_2
                                         + ||var_l(x_b) - running_var_l||_2
    loss = mean over the batch of CE(intended class, teacher logits) + bn_weight * that sum

mu and var (biased) are over the batch and the spatial positions of the BN layer's input,
per channel, as DeepInversion's hook computes them (norms, not squared norms).

Every batch mixes the classes, as DeepInversion's (its targets are [0..9] repeated): the
running statistics describe all classes together, so a batch of one class would be pulled
towards the mixture while its CE term pulls it towards its class. The chunk's batches
come round-robin over the classes (`MIXES_CLASSES` asks reconstruct_classes for that
order), and `prepare` deals their examples out so that each batch of the chunk takes
examples from every one of them.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from src.datafree.reconstruct import start_point
from src.errors import ArtifactError


def batchnorm_layers(teacher: keras.Model) -> list[keras.layers.BatchNormalization]:
    found = [layer for layer in teacher.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not found:
        raise ArtifactError(f"teacher '{teacher.name}' has no BatchNormalization layers: optimize.objective=batchnorm "
                            "matches their stored statistics; use top_layer or all_layers (with compute_stats)")
    return found


def interleaved(batches: int, size: int) -> np.ndarray:
    """The order that deals `batches` consecutive batches of `size` out like cards: the
    first example of every batch, then the second of every batch, ..."""
    return np.arange(batches * size).reshape(batches, size).T.reshape(-1)


class BatchNormObjective:
    """optimize.objective=batchnorm. The chunk is whole batches of optimize.batch_size in
    order; each input carries its batch's statistics term, so the optimiser's sum over
    inputs / batch_size counts each batch's term once, beside the batch's mean CE."""

    MIXES_CLASSES = True

    def __init__(self, optimize, seed: int, teacher: keras.Model):
        self.op, self.seed = optimize, seed
        layers = batchnorm_layers(teacher)
        self.tap = keras.Model(teacher.inputs, [layer.input for layer in layers] + [teacher.outputs[0]])
        self.stored = [(tf.constant(np.asarray(layer.moving_mean), tf.float32),
                        tf.constant(np.asarray(layer.moving_variance), tf.float32)) for layer in layers]
        self.weight = float(optimize.bn_weight)

    def prepare(self, chunk: list[tuple[int, int]], input_shape: tuple) -> tuple[np.ndarray, np.ndarray, list]:
        """Start points and intended labels of a chunk of (class, batch) pairs, dealt out
        so that BN batch j holds the examples at positions j, j + k, j + 2k, ... of the k
        start batches in turn: every class of the chunk in every batch. The labels are
        the one target."""
        starts = [start_point(self.op, self.seed, c, b, input_shape)[1:] for c, b in chunk]
        dealt = interleaved(len(chunk), self.op.batch_size)
        labels = np.concatenate([label for _, label in starts])[dealt]
        return np.concatenate([x0 for x0, _ in starts])[dealt], labels, [tf.constant(labels)]

    def batch_statistics_loss(self, features: list[tf.Tensor]) -> tf.Tensor:
        """[batches]: each batch's sum over BN layers of the two norms."""
        size = self.op.batch_size
        total = 0.0
        for feature, (mean, variance) in zip(features, self.stored):
            channels = feature.shape[-1]
            grouped = tf.reshape(tf.cast(feature, tf.float32), [-1, size, int(np.prod(feature.shape[1:-1])), channels])
            batch_mean, batch_variance = tf.nn.moments(grouped, axes=[1, 2])  # [batches, channels], biased
            total += tf.norm(batch_mean - mean, axis=-1) + tf.norm(batch_variance - variance, axis=-1)
        return total

    def loss(self, x: tf.Tensor, targets: list) -> tf.Tensor:
        *features, logits = self.tap(x, training=False)
        cross = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(targets[0], tf.int32),
                                                               logits=tf.cast(logits, tf.float32))
        per_batch = self.batch_statistics_loss(features)
        return cross + self.weight * tf.repeat(per_batch, self.op.batch_size)
