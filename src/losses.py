"""Generic losses and metrics of classifiers. Models output logits; softmax lives here,
and the softened KL between two models' outputs that distillation methods build on."""
from __future__ import annotations

import tensorflow as tf


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor, mix: tuple | None = None) -> tf.Tensor:
    """Mean sparse cross-entropy of integer labels against logits; with `mix` = (the
    partners' labels, the weights w) of a mixup batch, w CE(labels) + (1 - w) CE(partners)."""
    own = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)
    if mix is None:
        return tf.reduce_mean(own)
    partners, weight = mix
    other = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(partners, tf.int32), logits=logits)
    weight = tf.cast(weight, own.dtype)
    return tf.reduce_mean(weight * own + (1.0 - weight) * other)


def label_mix(batch: dict) -> tuple | None:
    """(partner labels, weights) of a mixup batch (src.augment.Mixup), else None."""
    return (batch["y_mix"], batch["mix_weight"]) if "mix_weight" in batch else None


def accuracy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predicted, tf.cast(labels, tf.int32)), tf.float32))


def agreement(logits: tf.Tensor, reference_logits: tf.Tensor) -> tf.Tensor:
    """Fraction of examples on which two models' top-1 predictions agree."""
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1), tf.argmax(reference_logits, -1)), tf.float32))


def soft_target_loss(student_logits: tf.Tensor, teacher_logits: tf.Tensor, temperature: float,
                     kind: str = "kl") -> tf.Tensor:
    """Mean over the batch of KL(p_T || q_T) ("kl") or of the cross-entropy H(p_T, q_T)
    ("ce"), where p_T and q_T are the teacher's and student's softmax at temperature T.

    The two differ by the teacher's entropy, a constant for the student: the same
    gradient, but KL is 0 when the student matches the teacher exactly.
    """
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    teacher_probs = tf.exp(teacher_log_probs)
    cross = -tf.reduce_sum(teacher_probs * student_log_probs, axis=-1)
    if kind == "ce":
        return tf.reduce_mean(cross)
    entropy = -tf.reduce_sum(teacher_probs * teacher_log_probs, axis=-1)
    return tf.reduce_mean(cross - entropy)


def classifier_loss(model, augment=None):
    """loss_fn for src.fit: cross-entropy of model(x) against y, plus accuracy; `augment`
    (src.augment) transforms the batch in training steps only (mixup also mixes the labels)."""
    def loss_fn(batch: dict, training: bool) -> dict:
        if training and augment is not None:
            batch = augment(batch)
        logits = tf.cast(model(batch["x"], training=training), tf.float32)
        return {"loss": cross_entropy(batch["y"], logits, label_mix(batch)), "accuracy": accuracy(batch["y"], logits)}
    return loss_fn
