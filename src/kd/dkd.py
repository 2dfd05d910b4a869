"""Decoupled knowledge distillation (Zhao et al., CVPR 2022).

The classical KD loss splits per example into a target-class term and a non-target term:
KL(p_t || p_s) = TCKD + (1 - p_t[target]) * NCKD, where
    TCKD = KL(b_t || b_s), b = [p[target], 1 - p[target]]   (is it the target class?)
    NCKD = KL(p_hat_t || p_hat_s), p_hat = p over the other classes, renormalised
(all softmaxes at temperature T). The (1 - p_t[target]) factor mutes NCKD exactly where
the teacher is confident; DKD weights the two freely: alpha * TCKD + beta * NCKD.
"""
from __future__ import annotations

import tensorflow as tf

MASK = 1000.0  # subtracted from the target logit (after /T): its softmax mass underflows to 0


def dkd_terms(student_logits, teacher_logits, labels, temperature: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-example (TCKD, NCKD) at temperature T, without the T^2 factor."""
    classes = tf.shape(student_logits)[-1]
    target = tf.one_hot(tf.cast(labels, tf.int32), classes, dtype=tf.float32)
    zs, zt = student_logits / temperature, teacher_logits / temperature
    ps, pt = tf.nn.softmax(zs, axis=-1), tf.nn.softmax(zt, axis=-1)
    bs = _binary(ps, target)
    bt = _binary(pt, target)
    tckd = tf.reduce_sum(bt * (tf.math.log(bt) - tf.math.log(bs)), axis=-1)
    log_hat_s = tf.nn.log_softmax(zs - MASK * target, axis=-1)
    log_hat_t = tf.nn.log_softmax(zt - MASK * target, axis=-1)
    nckd = tf.reduce_sum(tf.exp(log_hat_t) * (log_hat_t - log_hat_s), axis=-1)
    return tckd, nckd


def _binary(probs, target, floor: float = 1e-12):
    """[p(target), p(not target)], kept off 0 so that its log is finite."""
    p_target = tf.reduce_sum(probs * target, axis=-1)
    pair = tf.stack([p_target, 1.0 - p_target], axis=-1)
    return tf.clip_by_value(pair, floor, 1.0)


def warmup_factor(epoch, warmup_epochs: int):
    """min(epoch / warmup, 1) for the 1-indexed epoch; 1 when warm-up is off (0)."""
    if not warmup_epochs:
        return tf.constant(1.0)
    return tf.minimum(tf.cast(epoch, tf.float32) / float(warmup_epochs), 1.0)


def dkd_loss(student_logits, teacher_logits, labels, *, temperature: float, alpha: float, beta: float):
    """Batch mean of alpha * TCKD + beta * NCKD (without T^2 and warm-up), and both terms."""
    tckd, nckd = dkd_terms(student_logits, teacher_logits, labels, temperature)
    tckd, nckd = tf.reduce_mean(tckd), tf.reduce_mean(nckd)
    return alpha * tckd + beta * nckd, {"tckd": tckd, "nckd": nckd}
