"""Loss of the soft decision tree: path-weighted cross-entropy of the leaves plus the
paper's balancing penalty (Frosst & Hinton 2017), written for any batch size.

    leaf loss  = mean_b  sum_l P_bl * CE(T_b, Q_l)           (no outer log, no B x B broadcast)
    alpha_i    = (g_i num_i + sum_b P_bi p_bi) / (g_i den_i + sum_b P_bi)
    penalty    = sum_i  strength * decay^depth(i) * -(0.5 log alpha_i + 0.5 log(1 - alpha_i))

num/den are running sums of past batches (stop-gradient) with decay g_i = 1 - 1/(window
2^depth(i)): the window doubles per level, since a deep node sees few examples per batch.
The current batch's term keeps its gradient, so the penalty steers the filters.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from models.soft_tree import route, tree_layer
from src.losses import accuracy

EPS = 1e-6


def node_depths(depth: int) -> np.ndarray:
    """Level of every inner node in heap order."""
    return np.floor(np.log2(np.arange(1, 2 ** depth))).astype(np.float32)


def node_weights(depth: int, strength: float, decay: float) -> np.ndarray:
    return (strength * decay ** node_depths(depth)).astype(np.float32)


def window_decay(depth: int, window: float) -> np.ndarray:
    """g_i = 1 - 1/(window 2^depth): 0 (current batch only) at the root when window = 1."""
    return (1.0 - 1.0 / (window * 2.0 ** node_depths(depth))).astype(np.float32)


def leaf_cross_entropy(log_leaf: tf.Tensor, log_q: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """mean_b sum_l P_bl CE(T_b, Q_l): one (B,K)x(K,L) matmul gives every CE_bl."""
    ce = -tf.matmul(targets, log_q, transpose_b=True)  # (B, L)
    return tf.reduce_mean(tf.reduce_sum(tf.exp(log_leaf) * ce, axis=-1))


def balance_penalty(log_inner, log_right, weights, decay, num, den):
    """(penalty, batch sum of P p, batch sum of P) for every inner node; alpha of a node
    no example reaches is 0.5 (no penalty, no gradient)."""
    mass = tf.reduce_sum(tf.exp(log_inner), axis=0)
    right = tf.reduce_sum(tf.exp(log_inner + log_right), axis=0)
    alpha = (decay * num + right + 0.5 * EPS) / (decay * den + mass + EPS)
    alpha = tf.clip_by_value(alpha, EPS, 1.0 - EPS)
    cross = -(0.5 * tf.math.log(alpha) + 0.5 * tf.math.log(1.0 - alpha))
    return tf.reduce_sum(weights * cross), right, mass


def tree_loss(model, *, penalty_strength: float, penalty_decay: float, penalty_window: float):
    """loss_fn for src.fit.Fitter over batches {"x", "targets" (target distributions), "y"}.

    Training steps fold the batch into the running sums (kept in the tree layer, so they
    are checkpointed and saved); evaluation reads them but leaves them alone.
    """
    layer = tree_layer(model)
    weights = tf.constant(node_weights(layer.depth, penalty_strength, penalty_decay))
    decay = tf.constant(window_decay(layer.depth, penalty_window))

    def loss_fn(batch: dict, training: bool) -> dict:
        routed = route(model, batch["x"])
        leaf = leaf_cross_entropy(routed["log_leaf"], routed["log_q"], tf.cast(batch["targets"], tf.float32))
        penalty, right, mass = balance_penalty(routed["log_inner"], routed["log_right"], weights, decay,
                                               layer.balance_num, layer.balance_den)
        if training:
            layer.balance_num.assign(decay * layer.balance_num + tf.stop_gradient(right))
            layer.balance_den.assign(decay * layer.balance_den + tf.stop_gradient(mass))
        return {"loss": leaf + penalty, "leaf_loss": leaf, "penalty": penalty,
                "accuracy": accuracy(batch["y"], layer.logits(routed))}

    return loss_fn


def targets(labels: np.ndarray, num_classes: int, teacher_logits: np.ndarray | None, kind: str,
            temperature: float, soft_weight: float) -> np.ndarray:
    """Target distributions: one-hot labels (hard), the teacher's softmax at T (soft), or
    (1 - w) one-hot + w soft (mixed). Expected CE is linear in the target, so mixed is
    exactly the weighted sum of the hard and soft losses."""
    onehot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    if kind == "hard":
        return onehot
    scaled = np.asarray(teacher_logits, np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    soft = np.exp(scaled)
    soft = (soft / soft.sum(axis=-1, keepdims=True)).astype(np.float32)
    return soft if kind == "soft" else ((1 - soft_weight) * onehot + soft_weight * soft).astype(np.float32)
