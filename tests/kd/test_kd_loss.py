"""Loss golden values derived by hand, and the T^2 gradient-scale claim."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from src.kd.loss import distillation_loss, soft_target_loss
from src.losses import accuracy, agreement, cross_entropy

LN3 = math.log(3.0)
# Teacher logits [0, ln 3] -> softmax [1/4, 3/4]; student logits [0, 0] -> [1/2, 1/2].
# KL(p||q) = 1/4 ln(1/2) + 3/4 ln(3/2);  H(p, q) = ln 2.
KL = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)


def t(values):
    return tf.constant(values, tf.float32)


def test_cross_entropy_and_accuracy_by_hand():
    assert float(cross_entropy(t([1]), t([[0.0, 0.0]]))) == pytest.approx(math.log(2), rel=1e-6)
    assert float(cross_entropy(t([0]), t([[LN3, 0.0]]))) == pytest.approx(-math.log(0.75), rel=1e-6)
    assert float(accuracy(t([0, 1, 1]), t([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]]))) == pytest.approx(2 / 3)
    assert float(agreement(t([[2.0, 1.0], [0.0, 3.0]]), t([[1.0, 0.0], [1.0, 0.0]]))) == 0.5


def test_soft_target_kl_and_ce_by_hand():
    student, teacher = t([[0.0, 0.0]]), t([[0.0, LN3]])
    assert float(soft_target_loss(student, teacher, 1.0, "kl")) == pytest.approx(KL, rel=1e-5)
    assert float(soft_target_loss(student, teacher, 1.0, "ce")) == pytest.approx(math.log(2), rel=1e-6)
    # at T=2 the teacher needs logits [0, 2 ln 3] to give the same [1/4, 3/4]
    assert float(soft_target_loss(student, t([[0.0, 2 * LN3]]), 2.0, "kl")) == pytest.approx(KL, rel=1e-5)
    assert float(soft_target_loss(teacher, teacher, 3.0, "kl")) == pytest.approx(0.0, abs=1e-6)


def test_distillation_loss_by_hand():
    student, teacher, labels = t([[0.0, 0.0]]), t([[0.0, 2 * LN3]]), t([1])
    out = distillation_loss(student, teacher, labels, temperature=2.0, ce_weight=0.5, kd_weight=0.5)
    # 0.5 * ln 2 (hard, T=1) + 0.5 * 2^2 * KL (soft, T=2, T^2-scaled)
    assert float(out["loss"]) == pytest.approx(0.5 * math.log(2) + 0.5 * 4 * KL, rel=1e-5)
    assert float(out["hard_loss"]) == pytest.approx(math.log(2), rel=1e-6)
    unscaled = distillation_loss(student, teacher, labels, temperature=2.0, ce_weight=0.0, kd_weight=1.0,
                                 t2_scale=False, soft_loss="ce")
    assert float(unscaled["loss"]) == pytest.approx(math.log(2), rel=1e-6)  # the data-free soft-only loss


def test_distillation_without_labels_is_soft_only():
    out = distillation_loss(t([[0.0, 0.0]]), t([[0.0, LN3]]), None, temperature=1.0, ce_weight=0.7, kd_weight=1.0)
    assert float(out["loss"]) == pytest.approx(KL, rel=1e-5) and "hard_loss" not in out


def _soft_gradient_norm(temperature: float, t2_scale: bool) -> float:
    rng = np.random.default_rng(0)
    student = tf.Variable(rng.standard_normal((64, 10)).astype("float32"))
    teacher = t(rng.standard_normal((64, 10)))
    with tf.GradientTape() as tape:
        loss = distillation_loss(student, teacher, None, temperature=temperature, ce_weight=0.0, kd_weight=1.0,
                                 t2_scale=t2_scale)["loss"]
    return float(tf.norm(tape.gradient(loss, student)))


def test_t2_scaling_keeps_the_soft_gradient_size_when_t_changes():
    """d(KL_T)/dz = (q_T - p_T)/T ~ (z_s - z_t)/(N T^2) for large T: T^2 cancels it."""
    scaled = _soft_gradient_norm(10.0, True), _soft_gradient_norm(20.0, True)
    plain = _soft_gradient_norm(10.0, False), _soft_gradient_norm(20.0, False)
    assert scaled[0] / scaled[1] == pytest.approx(1.0, abs=0.05)
    assert plain[0] / plain[1] == pytest.approx(4.0, rel=0.05)


def test_soft_gradient_matches_closed_form():
    """d/dz_s of T^2 * KL(p_T || q_T) = T * (q_T - p_T), per example, divided by the batch size."""
    student = tf.Variable([[1.0, -0.5, 0.2]])
    teacher = t([[0.3, 0.9, -1.0]])
    temperature = 3.0
    with tf.GradientTape() as tape:
        loss = distillation_loss(student, teacher, None, temperature=temperature, ce_weight=0.0, kd_weight=1.0)["loss"]
    expected = temperature * (tf.nn.softmax(student / temperature) - tf.nn.softmax(teacher / temperature))
    np.testing.assert_allclose(tape.gradient(loss, student).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_every_term_is_a_mean_over_a_batch_of_several_examples():
    """Three examples: one with the KL above, one where student and teacher agree, one
    where both are uniform. The soft term is KL / 3 and the hard term (ln 2 + ln 4 + ln 2) / 3
    (labels 1, 0, 0); a sum over the batch would be three times larger."""
    student = t([[0.0, 0.0], [0.0, LN3], [0.0, 0.0]])
    teacher = t([[0.0, LN3], [0.0, LN3], [0.0, 0.0]])
    labels = t([1, 0, 0])
    out = distillation_loss(student, teacher, labels, temperature=1.0, ce_weight=0.5, kd_weight=0.5)
    hard = (math.log(2) + math.log(4) + math.log(2)) / 3
    assert float(out["soft_loss"]) == pytest.approx(KL / 3, rel=1e-5)
    assert float(out["hard_loss"]) == pytest.approx(hard, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(0.5 * hard + 0.5 * KL / 3, rel=1e-5)
    assert float(out["agreement"]) == pytest.approx(2 / 3)  # argmax ties go to class 0


def test_our_loss_and_the_keras_distiller_against_numpy():
    """Keras 3's LogitsDistillation with its default loss="kl_divergence" applies the KL to
    the logits / T themselves (no softmax, no T^2); given a KLDivergence instance it takes
    the softmax path. Ours is T^2 * KL(p_T || q_T) either way."""
    import keras
    rng = np.random.default_rng(0)
    student, teacher, temperature = rng.normal(size=(8, 10)) * 3, rng.normal(size=(8, 10)) * 3, 4.0

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    p, q = softmax(teacher / temperature), softmax(student / temperature)
    expected = temperature ** 2 * np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
    ours = distillation_loss(t(student), t(teacher), None, temperature=temperature, ce_weight=0.0, kd_weight=1.0)
    assert float(ours["loss"]) == pytest.approx(expected, rel=1e-5)
    peer = keras.distillation.LogitsDistillation(temperature=temperature, loss=keras.losses.KLDivergence())
    assert float(peer.compute_loss(t(teacher), t(student))) == pytest.approx(expected, rel=1e-4)
    default = keras.distillation.LogitsDistillation(temperature=temperature)
    assert abs(float(default.compute_loss(t(teacher), t(student))) - expected) > 0.5 * expected
