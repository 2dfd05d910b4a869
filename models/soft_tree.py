"""Soft binary decision tree (Frosst & Hinton 2017) as one Keras layer that saves as `.keras`.

Inner nodes are numbered in heap order (node i has children 2i+1 = left, 2i+2 = right);
level l holds nodes 2^l - 1 .. 2^(l+1) - 2 and leaf j sits under level-`depth` position j.

Why one layer: every inner node's filter is a column of one (features x nodes) kernel, so
all decisions are one matmul; path probabilities are then built level by level in log
space (depth small ops, stable at any depth), not node by node.
The layer outputs logits (log-probabilities of the predicted class distribution), like
every model of the runner. `route()` exposes what the loss and the pictures need.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from src.schema.tree import BETA_MODES, PREDICT

BETA_SIZES = {"per_node": lambda inner: inner, "shared": lambda inner: 1, "fixed": lambda inner: 0}  # learned betas
assert tuple(BETA_SIZES) == BETA_MODES, "every tree.beta_mode has a beta size here"


@keras.saving.register_keras_serializable(package="kd_runner")
class SoftTree(keras.layers.Layer):
    """Inner nodes p_i(x) = sigmoid(beta_i (x . w_i + b_i)) (probability of going right);
    leaves are learned class distributions Q_l = softmax(phi_l), independent of x."""

    def __init__(self, depth: int, num_classes: int, beta: float = 1.0, beta_mode: str = "per_node",
                 predict: str = "max_path", **kwargs):
        super().__init__(**kwargs)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if beta_mode not in BETA_SIZES or predict not in PREDICT:
            raise ValueError(f"unknown beta_mode {beta_mode!r} or predict {predict!r} (tree.beta_mode, tree.predict)")
        self.depth, self.num_classes = int(depth), int(num_classes)
        self.beta, self.beta_mode, self.predict = float(beta), beta_mode, predict
        self.inner, self.leaves = 2 ** self.depth - 1, 2 ** self.depth

    def build(self, input_shape):
        features = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(features, self.inner), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.inner,), initializer="zeros")
        size = BETA_SIZES[self.beta_mode](self.inner)
        if size:  # learned as log(beta): beta stays positive
            self.log_beta = self.add_weight(name="log_beta", shape=(size,),
                                            initializer=keras.initializers.Constant(math.log(self.beta)))
        self.leaf_logits = self.add_weight(name="leaf_logits", shape=(self.leaves, self.num_classes),
                                           initializer=keras.initializers.RandomNormal(stddev=0.1))
        # running sums of the balancing penalty (src/tree/loss.py); saved with the model
        self.balance_num = self.add_weight(name="balance_num", shape=(self.inner,), initializer="zeros",
                                           trainable=False)
        self.balance_den = self.add_weight(name="balance_den", shape=(self.inner,), initializer="zeros",
                                           trainable=False)

    def inverse_temperature(self) -> tf.Tensor:
        """beta of every inner node, shape (inner,)."""
        if self.beta_mode == "fixed":
            return tf.fill([self.inner], tf.constant(self.beta, self.compute_dtype))
        return tf.broadcast_to(tf.exp(self.log_beta), [self.inner])

    def route(self, x) -> dict:
        """Everything about how x flows down the tree, for a flat batch x (B, features):
        z (B, inner) node logits beta (x.w + b); log_right (B, inner) log p_i;
        log_inner (B, inner) log-probability of reaching node i; log_leaf (B, leaves);
        log_q (leaves, classes) the leaves' log class distributions."""
        z = (tf.matmul(x, self.kernel) + self.bias) * self.inverse_temperature()
        log_right, log_left = tf.math.log_sigmoid(z), tf.math.log_sigmoid(-z)
        level = tf.zeros_like(z[:, :1])  # log P(root) = 0
        levels = [level]
        for depth in range(self.depth):
            lo, hi = 2 ** depth - 1, 2 ** (depth + 1) - 1
            left, right = level + log_left[:, lo:hi], level + log_right[:, lo:hi]
            level = tf.reshape(tf.stack([left, right], axis=-1), [-1, 2 ** (depth + 1)])
            levels.append(level)
        return {"z": z, "log_right": log_right, "log_inner": tf.concat(levels[:-1], axis=1),
                "log_leaf": levels[-1], "log_q": tf.nn.log_softmax(self.leaf_logits, axis=-1)}

    def logits(self, routed: dict, predict: str | None = None) -> tf.Tensor:
        """Log class probabilities: of the leaf with the largest path probability
        (max_path, the explainable rule) or of the path-weighted mixture of all leaves."""
        if (predict or self.predict) == "max_path":
            return tf.gather(routed["log_q"], tf.argmax(routed["log_leaf"], axis=-1))
        mixture = tf.matmul(tf.exp(routed["log_leaf"]), tf.exp(routed["log_q"]))
        return tf.math.log(tf.maximum(mixture, 1e-30))

    def call(self, x):
        return self.logits(self.route(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "num_classes": self.num_classes, "beta": self.beta,
                "beta_mode": self.beta_mode, "predict": self.predict}

    def snapshot(self) -> dict:
        """NumPy copy of the parameters the pictures draw (kernel, bias, beta, leaf distributions)."""
        return {"kernel": keras.ops.convert_to_numpy(self.kernel), "bias": keras.ops.convert_to_numpy(self.bias),
                "beta": keras.ops.convert_to_numpy(self.inverse_temperature()),
                "leaves": keras.ops.convert_to_numpy(tf.nn.softmax(self.leaf_logits, axis=-1))}


def build_tree(input_shape, num_classes: int, depth: int, beta: float = 1.0, beta_mode: str = "per_node",
               predict: str = "max_path") -> keras.Model:
    """Image (or any shape) -> flatten -> SoftTree -> logits; always float32 (path
    probabilities of deep trees need the range)."""
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    flat = keras.layers.Flatten(name="flatten", dtype="float32")(inputs)
    outputs = SoftTree(depth, num_classes, beta, beta_mode, predict, name="tree", dtype="float32")(flat)
    return keras.Model(inputs, outputs, name="sdt")


def tree_layer(model: keras.Model) -> SoftTree:
    return model.get_layer("tree")


def route(model: keras.Model, x) -> dict:
    """tree_layer(model).route on an image batch."""
    return tree_layer(model).route(model.get_layer("flatten")(x))


def training_bytes(depth: int, features: int, classes: int, batch: int) -> int:
    """Rough memory a training step needs: parameters x4 (weights, gradients, two Adam
    slots) plus about a dozen (batch x nodes) float32 tensors of the forward/backward pass."""
    inner, leaves = 2 ** depth - 1, 2 ** depth
    params = features * inner + 3 * inner + leaves * classes
    activations = batch * (12 * inner + 4 * leaves + 2 * leaves * min(classes, 4))
    return 4 * (4 * params + activations)


def ancestors(leaf: int, depth: int) -> list[tuple[int, bool]]:
    """[(inner node, went right)] from the root down to `leaf` (its position 0..2^depth-1)."""
    path, node = [], leaf + 2 ** depth - 1  # heap index of the leaf
    while node > 0:
        parent = (node - 1) // 2
        path.append((parent, node == 2 * parent + 2))
        node = parent
    return path[::-1]


def leaves_under(node: int, depth: int) -> range:
    """Leaf positions in the subtree of inner node `node`."""
    level = int(np.floor(np.log2(node + 1)))
    position, span = node - (2 ** level - 1), 2 ** (depth - level)
    return range(position * span, (position + 1) * span)
