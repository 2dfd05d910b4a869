"""Hide-and-Seek objective and figures of merit (anchors/hns.md sections 3 and 4)."""
from __future__ import annotations

import math

import tensorflow as tf

# A run has collapsed when it hides (almost) nothing, or (almost) everything while the
# classifier falls towards chance: the thresholds of the seed's utils/plotting.py.
COLLAPSE_HIDDEN_LOW = 0.10
COLLAPSE_HIDDEN_HIGH = 0.985
COLLAPSE_ACCURACY = 0.3  # x baseline


def objective(labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor, alpha) -> dict:
    """alpha * cross_entropy + (1 - alpha) * fraction of the mask kept, per example and
    as batch means. The kept fraction is the mean over every mask element (H x W x mask
    channels). Cross-entropy is taken from logits (the seed took it from softmax
    probabilities with Keras' clipping: the same value away from saturation)."""
    logits = tf.cast(logits, tf.float32)
    alpha = tf.cast(alpha, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)
    kept = tf.reduce_mean(tf.reshape(tf.cast(mask, tf.float32), [tf.shape(mask)[0], -1]), axis=1)
    per_example = alpha * ce + (1.0 - alpha) * kept
    return {"loss": tf.reduce_mean(per_example), "classification": tf.reduce_mean(ce),
            "kept": tf.reduce_mean(kept), "per_example": per_example}


def figures(accuracy: float, hidden: float, baseline: float | None) -> dict:
    """F = accuracy / baseline, I = fraction hidden, FIR = F / (F + I), FII = F * I, and
    whether the run collapsed. Without a baseline only I and `collapsed` by hiding are known."""
    out = {"accuracy": accuracy, "interpretability": hidden}
    if baseline is None or baseline <= 0:
        out.update(fidelity=None, fir=None, fii=None, collapsed=hidden < COLLAPSE_HIDDEN_LOW)
        return out
    f = accuracy / baseline
    out.update(fidelity=f, fir=f / (f + hidden) if f + hidden > 0 else math.nan, fii=f * hidden,
               collapsed=bool(hidden < COLLAPSE_HIDDEN_LOW
                              or (hidden > COLLAPSE_HIDDEN_HIGH and accuracy < COLLAPSE_ACCURACY * baseline)))
    return out
