"""src/hns/masks.py against hand derivations: the binary layers' forward passes and
gradient estimators, REINFORCE's surrogate, and the thresholded masks of a trained hider."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.hns import build_hider
from src.hns import masks

A = np.array([[-1.5, -0.2, 0.0, 0.3, 2.0]], np.float32)
U = np.array([[0.1, 0.6, 0.4, 0.45, 0.95]], np.float32)
DY = np.array([[1.0, -2.0, 0.5, 3.0, -1.0]], np.float32)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def grad_of(fn):
    a = tf.Variable(A)
    with tf.GradientTape() as tape:
        out = fn(a)
        loss = tf.reduce_sum(out * DY)
    return out.numpy(), tape.gradient(loss, a).numpy()


def test_threshold_forward_and_straight_through_gradient():
    out, grad = grad_of(masks.threshold)
    np.testing.assert_array_equal(out, [[0, 0, 0, 1, 1]])  # sigmoid(0) = 0.5 is not kept
    np.testing.assert_allclose(grad, DY * sig(A) * (1 - sig(A)), rtol=1e-6)


@pytest.mark.parametrize("estimator,expected", [
    ("st1", lambda: DY),
    ("st2", lambda: DY * sig(A) * (1 - sig(A))),
])
def test_straight_through_estimators(estimator, expected):
    out, grad = grad_of(lambda a: masks.sample(a, U, estimator))
    np.testing.assert_array_equal(out, (U < sig(A)).astype(np.float32))
    np.testing.assert_allclose(grad, expected(), rtol=1e-6)


def test_slope_annealing_uses_the_slope_in_forward_and_backward():
    k = tf.Variable(3.0, trainable=False)
    a = tf.Variable(A)
    with tf.GradientTape(persistent=True) as tape:
        out = masks.sample(a, U, "sa", k)
        loss = tf.reduce_sum(out * DY)
    p = sig(3.0 * A)
    np.testing.assert_array_equal(out.numpy(), (U < p).astype(np.float32))
    np.testing.assert_allclose(tape.gradient(loss, a).numpy(), DY * 3.0 * p * (1 - p), rtol=1e-4)
    assert tape.gradient(loss, k) is None  # the slope is a schedule, not a parameter


def test_reinforce_gradient_matches_the_hand_derivation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 3, 1)).astype(np.float32)
    mask = (rng.random(a.shape) < sig(a)).astype(np.float32)
    loss = np.array([0.3, 1.7, 0.9, 2.4], np.float32)
    var = tf.Variable(a)
    with tf.GradientTape() as tape:
        s = masks.reinforce_surrogate(var, tf.constant(mask), tf.constant(loss))
    grad = tape.gradient(s, var).numpy()
    r2 = (mask - sig(a)) ** 2
    J = loss[:, None, None, None]
    expected = np.empty_like(a)
    for b in range(4):  # each example's baseline is taken over the three others
        others = [o for o in range(4) if o != b]
        baseline = (r2[others] * J[others]).sum(0) / (r2[others].sum(0) + 1e-8)
        expected[b] = (J[b] - baseline) * (mask[b] - sig(a[b])) / 4
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-7)
    assert np.abs(grad).max() > 1e-3
    # with the same loss for every example the baseline takes all of it: the reference code's case
    # (its loss was the constant 1), whose gradient was exactly zero
    with tf.GradientTape() as tape:
        s = masks.reinforce_surrogate(var, tf.constant(mask), tf.ones(4))
    np.testing.assert_allclose(tape.gradient(s, var).numpy(), 0.0, atol=1e-6)


def test_reinforce_is_unbiased_against_the_exact_gradient():
    """One Bernoulli unit p = sigmoid(0.7) per example and J = 2 - H, so E[mean_b J_b] =
    2 - p and its exact gradient with respect to each a_b is -p (1 - p) / B. The mean of the
    estimate over 40,000 batches of 4 must match it; a baseline that includes the example's
    own sample gives 0.70 of it at this batch size."""
    batch, draws, logit = 4, 40_000, 0.7
    generator = tf.random.Generator.from_seed(0)

    @tf.function
    def mean_gradient():
        a = tf.fill([batch, 1], logit)
        total = tf.zeros_like(a)
        for _ in tf.range(draws):
            with tf.GradientTape() as tape:
                tape.watch(a)
                mask = tf.cast(generator.uniform([batch, 1]) < tf.sigmoid(a), tf.float32)
                s = masks.reinforce_surrogate(a, mask, 2.0 - mask[:, 0])
            total += tape.gradient(s, a)
        return total / draws

    p = sig(np.float32(logit))
    exact = -p * (1 - p) / batch
    estimate = mean_gradient().numpy()
    np.testing.assert_allclose(estimate, exact, rtol=0.05)  # Monte-Carlo error: about 1% here


def test_thresholded_keeps_where_the_hider_logit_is_above_zero_over_every_batch():
    """A hider whose logit is x - 0.5: kept exactly where x > 0.5 (0.5 itself hidden), on
    more images than one inference batch holds."""
    x = np.random.default_rng(0).choice([0.2, 0.5, 0.9], size=(1100, 4, 4, 1)).astype(np.float32)
    kept = masks.thresholded(lambda xs, training: tf.constant(xs) - 0.5, x)
    assert kept.shape == x.shape and kept.dtype == np.float32
    np.testing.assert_array_equal(kept, (x > 0.5).astype(np.float32))
    tf.keras.utils.set_random_seed(0)
    hider = build_hider("hider_small", (8, 8, 1))
    images = np.random.default_rng(1).random((6, 8, 8, 1), np.float32)
    np.testing.assert_array_equal(masks.thresholded(hider, images), masks.threshold(hider(images)).numpy())
