"""The knowledge-distillation loss (Hinton et al. 2015) and its loss_fn for the fit loop."""
from __future__ import annotations

import tensorflow as tf

from src.losses import accuracy, agreement, cross_entropy


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


def distillation_loss(student_logits, teacher_logits, labels, *, temperature: float, ce_weight: float,
                      kd_weight: float, t2_scale: bool = True, soft_loss: str = "kl") -> dict:
    """Hinton et al. (2015): ce_weight * CE(labels, student at T=1)
    + kd_weight * [T^2 if t2_scale] * soft_target_loss at T.

    The soft term's gradient shrinks as 1/T^2, so T^2 keeps the two terms' balance when
    T changes. ce_weight=0, t2_scale=false, T=8, soft_loss=ce is the soft-only loss of
    data-free distillation (Lopes et al. 2017).
    """
    student_logits = tf.cast(student_logits, tf.float32)
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    soft = soft_target_loss(student_logits, teacher_logits, temperature, soft_loss)
    scale = temperature ** 2 if t2_scale else 1.0
    out = {"soft_loss": soft}
    total = kd_weight * scale * soft
    if labels is not None:
        hard = cross_entropy(labels, student_logits)
        out["hard_loss"] = hard
        out["accuracy"] = accuracy(labels, student_logits)
        total = total + ce_weight * hard
    out["agreement"] = agreement(student_logits, teacher_logits)
    out["loss"] = total
    return out


def make_loss(student, teacher, kd, cached: bool, augment=None):
    """loss_fn for src.fit: student against cached ("t" in the batch) or live teacher
    logits; with `augment`, both see the same augmented batch (so never cached). `kd` is
    the distill.* section."""
    def loss_fn(batch: dict, training: bool) -> dict:
        x = augment(batch["x"]) if training and augment is not None else batch["x"]
        teacher_logits = batch["t"] if cached else teacher(x, training=False)
        return distillation_loss(student(x, training=training), teacher_logits, batch.get("y"),
                                 temperature=kd.temperature, ce_weight=kd.ce_weight, kd_weight=kd.kd_weight,
                                 t2_scale=kd.t2_scale, soft_loss=kd.soft_loss)
    return loss_fn
