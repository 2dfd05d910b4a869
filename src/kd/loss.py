"""The knowledge-distillation losses and their loss_fn for the fit loop: Hinton et al.
(2015), and through `distill.method` DKD (src/kd/dkd.py) and DIST (src/kd/dist.py), each
optionally on standardised logits (Sun et al. 2024)."""
from __future__ import annotations

import tensorflow as tf

from src.kd.dist import dist_loss
from src.kd.dkd import dkd_loss, warmup_factor
from src.losses import accuracy, agreement, cross_entropy, label_mix, soft_target_loss

STD_EPS = 1e-7  # added to the standard deviation, as the reference code


def standardized(logits: tf.Tensor) -> tf.Tensor:
    """Logit standardisation (Sun et al. 2024): each example's logits minus their mean, over
    their standard deviation (with C - 1, as the reference code) plus 1e-7. A softmax of
    z_std / T is a softmax at a per-example temperature T * std(z), with the mean removed."""
    centred = logits - tf.reduce_mean(logits, axis=-1, keepdims=True)
    classes = tf.cast(tf.shape(logits)[-1], logits.dtype)
    std = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=-1, keepdims=True) / (classes - 1.0))
    return centred / (std + STD_EPS)


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
    return _assemble(student_logits, teacher_logits, labels, soft, {}, ce_weight=ce_weight, kd_weight=kd_weight,
                     scale=temperature ** 2 if t2_scale else 1.0)


def method_loss(student_logits, teacher_logits, labels, kd, epoch=1, mix: tuple | None = None) -> dict:
    """The loss of distill.method (hinton | dkd | dist) with the distill.* settings `kd`:
    ce_weight * CE(labels, raw student logits) + kd_weight * [T^2] * the method's soft term,
    on standardised logits when kd.standardize. `epoch` (1-indexed) drives DKD's warm-up;
    `mix` (src.losses.label_mix) mixes the hard-label term of a mixup batch, whose larger
    share `labels` is DKD's target class."""
    student_logits = tf.cast(student_logits, tf.float32)
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    zs, zt = (standardized(student_logits), standardized(teacher_logits)) if kd.standardize \
        else (student_logits, teacher_logits)
    extras: dict = {}
    if kd.method in ("hinton", "fitnet", "at"):  # feature methods add their term to this (src/kd/features.py)
        soft = soft_target_loss(zs, zt, kd.temperature, kd.soft_loss)
    elif kd.method == "dkd":
        if labels is None:
            raise ValueError("distill.method=dkd needs labels: its target-class term is about the true class")
        soft, extras = dkd_loss(zs, zt, labels, temperature=kd.temperature, alpha=kd.dkd.alpha, beta=kd.dkd.beta)
        warm = warmup_factor(epoch, kd.dkd.warmup)
        soft, extras["dkd_warmup"] = soft * warm, warm
    elif kd.method == "dist":
        soft, extras = dist_loss(zs, zt, temperature=kd.temperature, inter=kd.dist.inter, intra=kd.dist.intra)
    else:
        raise ValueError(f"distill.method={kd.method} is not a logit method")
    return _assemble(student_logits, teacher_logits, labels, soft, extras, ce_weight=kd.ce_weight,
                     kd_weight=kd.kd_weight, scale=kd.temperature ** 2 if kd.t2_scale else 1.0, mix=mix)


def _assemble(student_logits, teacher_logits, labels, soft, extras: dict, *, ce_weight: float, kd_weight: float,
              scale: float, mix: tuple | None = None) -> dict:
    """The total and the figures every method reports: soft and hard terms, accuracy, agreement."""
    out = {"soft_loss": soft, **extras}
    total = kd_weight * scale * soft
    if labels is not None:
        hard = cross_entropy(labels, student_logits, mix)
        out["hard_loss"] = hard
        out["accuracy"] = accuracy(labels, student_logits)
        total = total + ce_weight * hard
    out["agreement"] = agreement(student_logits, teacher_logits)
    out["loss"] = total
    return out


def make_loss(student, teacher, kd, cached: bool, augment=None, epoch=None):
    """loss_fn for src.fit: student against cached ("teacher_logits" in the batch) or live teacher
    logits; with `augment`, both see the same augmented batch (so never cached). `kd` is
    the distill.* section; `epoch()` returns the current 1-indexed epoch (DKD's warm-up)."""
    def loss_fn(batch: dict, training: bool) -> dict:
        if training and augment is not None:
            batch = augment(batch)
        x = batch["x"]
        teacher_logits = batch["teacher_logits"] if cached else teacher(x, training=False)
        return method_loss(student(x, training=training), teacher_logits, batch.get("y"), kd,
                           epoch=epoch() if epoch is not None else 1, mix=label_mix(batch))
    return loss_fn
