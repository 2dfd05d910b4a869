"""DIST (Huang et al., NeurIPS 2022): match the teacher's relations, not its probabilities.

With Y = softmax(Z / T) for a batch (rows: examples, columns: classes), the loss is
inter * (1 - mean over rows of Pearson(Y_s[b], Y_t[b]))      how the classes rank per example
+ intra * (1 - mean over columns of Pearson(Y_s[:, c], Y_t[:, c]))   how the examples rank per class.
A Pearson correlation ignores shift and scale, so a student that cannot match a much
stronger teacher's exact probabilities can still match their order. The intra-class term
is a statistic of the whole batch.
"""
from __future__ import annotations

import tensorflow as tf

EPS = 1e-8  # in the denominator of the correlation, as the reference code


def pearson(a, b, axis: int):
    """Pearson correlation of a and b along `axis`."""
    a = a - tf.reduce_mean(a, axis=axis, keepdims=True)
    b = b - tf.reduce_mean(b, axis=axis, keepdims=True)
    norms = tf.norm(a, axis=axis) * tf.norm(b, axis=axis)
    return tf.reduce_sum(a * b, axis=axis) / (norms + EPS)


def dist_loss(student_logits, teacher_logits, *, temperature: float, inter: float, intra: float):
    """inter * inter-class loss + intra * intra-class loss (without T^2), and both terms."""
    ys = tf.nn.softmax(student_logits / temperature, axis=-1)
    yt = tf.nn.softmax(teacher_logits / temperature, axis=-1)
    inter_loss = 1.0 - tf.reduce_mean(pearson(ys, yt, axis=1))
    intra_loss = 1.0 - tf.reduce_mean(pearson(ys, yt, axis=0))
    return inter * inter_loss + intra * intra_loss, {"inter_loss": inter_loss, "intra_loss": intra_loss}
