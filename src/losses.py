"""Generic losses and metrics of classifiers. Models output logits; softmax lives here
(and the temperature in the method losses built on these, e.g. src/kd)."""
from __future__ import annotations

import tensorflow as tf


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean sparse cross-entropy of integer labels against logits."""
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits))


def accuracy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))


def agreement(logits: tf.Tensor, reference_logits: tf.Tensor) -> tf.Tensor:
    """Fraction of examples on which two models' top-1 predictions agree."""
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(reference_logits, -1)), tf.float32))


def classifier_loss(model, augment=None):
    """loss_fn for src.fit: cross-entropy of model(x) against y, plus accuracy; `augment`
    (src.augment) transforms x in training steps only."""
    def loss_fn(batch: dict, training: bool) -> dict:
        x = augment(batch["x"]) if training and augment is not None else batch["x"]
        logits = tf.cast(model(x, training=training), tf.float32)
        return {"loss": cross_entropy(batch["y"], logits), "accuracy": accuracy(batch["y"], logits)}
    return loss_fn
