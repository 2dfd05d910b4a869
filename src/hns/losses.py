"""The Hide-and-Seek objective, and the reconstruction loss that pretrains the hider."""
from __future__ import annotations

import tensorflow as tf


def joint_objective(labels: tf.Tensor, logits: tf.Tensor, mask: tf.Tensor, alpha) -> dict:
    """alpha * cross_entropy + (1 - alpha) * fraction of the mask kept, per example and
    as batch means. The kept fraction is the mean over every mask element (H x W x mask
    channels). Cross-entropy is taken from logits (not from clipped softmax
    probabilities: the same value away from saturation, and exact near it)."""
    logits = tf.cast(logits, tf.float32)
    alpha = tf.cast(alpha, tf.float32)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)
    kept = tf.reduce_mean(tf.reshape(tf.cast(mask, tf.float32), [tf.shape(mask)[0], -1]), axis=1)
    per_example = alpha * ce + (1.0 - alpha) * kept
    return {"loss": tf.reduce_mean(per_example), "classification": tf.reduce_mean(ce),
            "kept": tf.reduce_mean(kept), "per_example": per_example}


def reconstruction_loss(hider, mask_channels: int):
    """loss_fn for src.fit: binary cross-entropy of sigmoid(hider(x)) against x, or
    against x's channel mean when one mask serves every colour channel, so the pretrained
    hider has exactly the joint hider's layers and every one of them transfers."""
    def loss_fn(batch: dict, training: bool) -> dict:
        x = tf.cast(batch["x"], tf.float32)
        target = tf.reduce_mean(x, axis=-1, keepdims=True) if mask_channels == 1 else x
        logits = tf.cast(hider(x, training=training), tf.float32)
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits))
        return {"loss": bce, "mse": tf.reduce_mean(tf.square(tf.sigmoid(logits) - target))}
    return loss_fn
