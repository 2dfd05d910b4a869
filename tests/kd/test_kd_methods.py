"""distill.method=dkd|dist and distill.standardize: golden values derived by hand on batches
of several examples, the identities each paper states, gradients against finite
differences, and the warm-up through a real fit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from src.kd.dist import dist_loss
from src.kd.dkd import dkd_terms, warmup_factor
from src.kd.loss import method_loss, soft_target_loss, standardized
from src.schema.kd import DistillConfig
from tests.conftest import numeric_gradient

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)
# Example 1, target 0: teacher [ln4, ln2, ln2] -> p = [1/2, 1/4, 1/4]; student [0, ln3, 0] -> [1/5, 3/5, 1/5].
#   b_t = [1/2, 1/2], b_s = [1/5, 4/5]:           TCKD = 1/2 ln(5/2) + 1/2 ln(5/8) = ln(5/4)
#   p_hat_t = [1/2, 1/2], p_hat_s = [3/4, 1/4]:   NCKD = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
# Example 2, target 2: teacher [0, 0, ln2] -> [1/4, 1/4, 1/2]; student [0, 0, 0] -> [1/3, 1/3, 1/3].
#   b_t = [1/2, 1/2], b_s = [1/3, 2/3]:           TCKD = 1/2 ln(3/2) + 1/2 ln(3/4) = 1/2 ln(9/8)
#   p_hat_t = p_hat_s = [1/2, 1/2]:               NCKD = 0
TEACHER = [[LN4, LN2, LN2], [0.0, 0.0, LN2]]
STUDENT = [[0.0, LN3, 0.0], [0.0, 0.0, 0.0]]
LABELS = [0, 2]
TCKD = [math.log(5 / 4), 0.5 * math.log(9 / 8)]
NCKD = [0.5 * math.log(4 / 3), 0.0]


def t(values, dtype=tf.float32):
    return tf.constant(values, dtype)


def kd_config(**overrides):
    return OmegaConf.merge(OmegaConf.structured(DistillConfig), overrides)


def test_dkd_terms_by_hand():
    tckd, nckd = dkd_terms(t(STUDENT), t(TEACHER), t(LABELS), 1.0)
    np.testing.assert_allclose(tckd.numpy(), TCKD, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(nckd.numpy(), NCKD, rtol=1e-5, atol=1e-7)


def test_dkd_total_by_hand_with_warmup_and_the_batch_mean():
    kd = kd_config(method="dkd", temperature=1.0, ce_weight=0.5, kd_weight=2.0, dkd={"alpha": 1.0, "beta": 8.0,
                                                                                    "warmup": 4})
    out = method_loss(t(STUDENT), t(TEACHER), t(LABELS), kd, epoch=1)
    ce = np.mean([-math.log(1 / 5), -math.log(1 / 3)])  # the student's probability of each true class
    soft = np.mean([TCKD[i] + 8.0 * NCKD[i] for i in range(2)])  # a mean over the batch, not a sum
    assert float(out["loss"]) == pytest.approx(0.5 * ce + 2.0 * (1 / 4) * soft, rel=1e-5)
    assert float(out["tckd"]) == pytest.approx(np.mean(TCKD), rel=1e-5)
    assert float(out["dkd_warmup"]) == pytest.approx(0.25)


def test_classical_kd_is_tckd_plus_the_muted_nckd_per_example():
    """Zhao et al.'s decomposition: KL = TCKD + (1 - p_t[target]) NCKD, at any temperature."""
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 5)) * 3, rng.normal(size=(6, 5)) * 3
    labels = rng.integers(0, 5, size=6)
    for temperature in (1.0, 4.0):
        tckd, nckd = dkd_terms(t(student), t(teacher), t(labels), temperature)
        p_teacher = tf.nn.softmax(t(teacher) / temperature).numpy()[np.arange(6), labels]
        kl = [float(soft_target_loss(t(student[i:i + 1]), t(teacher[i:i + 1]), temperature)) for i in range(6)]
        np.testing.assert_allclose(tckd.numpy() + (1 - p_teacher) * nckd.numpy(), kl, rtol=1e-4, atol=1e-6)


def test_warmup_is_linear_in_the_one_indexed_epoch_then_one():
    assert [float(warmup_factor(e, 20)) for e in (1, 10, 20, 30)] == pytest.approx([0.05, 0.5, 1.0, 1.0])
    assert float(warmup_factor(1, 0)) == 1.0


def _pearson_rows(a, b):
    return np.array([np.corrcoef(a[i], b[i])[0, 1] for i in range(len(a))])


def test_dist_against_numpy_correlations_on_a_batch():
    rng = np.random.default_rng(1)
    student, teacher = rng.normal(size=(5, 4)) * 2, rng.normal(size=(5, 4)) * 2
    ys = tf.nn.softmax(t(student) / 2.0).numpy()
    yt = tf.nn.softmax(t(teacher) / 2.0).numpy()
    inter = 1 - _pearson_rows(ys, yt).mean()
    intra = 1 - _pearson_rows(ys.T, yt.T).mean()
    loss, parts = dist_loss(t(student), t(teacher), temperature=2.0, inter=1.0, intra=3.0)
    assert float(parts["inter_loss"]) == pytest.approx(inter, rel=1e-5)
    assert float(parts["intra_loss"]) == pytest.approx(intra, rel=1e-5)
    assert float(loss) == pytest.approx(inter + 3.0 * intra, rel=1e-5)


def test_dist_by_hand_and_its_invariance():
    """Rows [a, b] of two classes: each row's two centred entries are +-d, so every row
    correlation is +1 or -1. Student rows that order the classes as the teacher's give 0."""
    teacher = t([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    same_order = t([[0.5, 0.0], [0.0, 3.0], [0.0, 0.2]])
    loss, parts = dist_loss(same_order, teacher, temperature=1.0, inter=1.0, intra=0.0)
    assert float(parts["inter_loss"]) == pytest.approx(0.0, abs=1e-6)
    flipped = t([[0.0, 0.5], [3.0, 0.0], [0.2, 0.0]])  # every row reversed: correlation -1, loss 2
    _, parts = dist_loss(flipped, teacher, temperature=1.0, inter=1.0, intra=0.0)
    assert float(parts["inter_loss"]) == pytest.approx(2.0, abs=1e-5)


def test_standardized_by_hand_and_its_invariance():
    z = t([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    # row 2: mean 2, deviations [-2, -2, 4], unbiased variance (4 + 4 + 16) / 2 = 12
    expected = [[-1.0, 0.0, 1.0], [-2 / math.sqrt(12), -2 / math.sqrt(12), 4 / math.sqrt(12)]]
    np.testing.assert_allclose(standardized(z).numpy(), expected, rtol=1e-5)
    kd = kd_config(method="hinton", standardize=True, temperature=2.0, ce_weight=0.0, kd_weight=1.0)
    student = t([[0.3, -1.0, 2.0], [1.0, 0.0, 0.5]])
    base = float(method_loss(student, z, None, kd)["loss"])
    shifted_scaled = float(method_loss(student, 5.0 * z + 7.0, None, kd)["loss"])
    assert shifted_scaled == pytest.approx(base, rel=1e-4)  # a teacher's scale and offset no longer matter
    plain = float(method_loss(student, 5.0 * z + 7.0, None, kd_config(temperature=2.0, ce_weight=0.0,
                                                                        kd_weight=1.0))["loss"])
    assert plain != pytest.approx(base, rel=1e-2)


def test_standardisation_keeps_the_cross_entropy_on_raw_logits():
    kd = kd_config(method="dkd", standardize=True, ce_weight=1.0, kd_weight=0.0, temperature=2.0)
    out = method_loss(t(STUDENT), t(TEACHER), t(LABELS), kd)
    assert float(out["loss"]) == pytest.approx(np.mean([-math.log(1 / 5), -math.log(1 / 3)]), rel=1e-5)


@pytest.mark.parametrize("method,standardize", [("dkd", False), ("dkd", True), ("dist", False), ("hinton", True)])
def test_gradient_matches_finite_differences(method, standardize):
    kd = kd_config(method=method, standardize=standardize, temperature=2.0, ce_weight=0.3, kd_weight=1.0,
                   dkd={"warmup": 0})
    rng = np.random.default_rng(2)
    student = rng.normal(size=(4, 5))
    teacher, labels = t(rng.normal(size=(4, 5)) * 2, tf.float64), t(rng.integers(0, 5, size=4), tf.float64)

    def loss(values):
        return float(method_loss(tf.constant(values, tf.float32), tf.cast(teacher, tf.float32),
                                 tf.cast(labels, tf.float32), kd)["loss"])

    variable = tf.Variable(student, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = method_loss(variable, tf.cast(teacher, tf.float32), tf.cast(labels, tf.float32), kd)["loss"]
    grad = tape.gradient(value, variable).numpy()
    np.testing.assert_allclose(grad, numeric_gradient(loss, student), rtol=2e-2, atol=2e-4)
