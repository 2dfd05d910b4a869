"""Binary mask layers of Hide-and-Seek and their gradient estimators.

Input is the hider's pre-activation a (its sigmoid map is p = sigmoid(a)); output is a
0/1 mask of the same shape. Forward passes:

    deterministic  H = [p > 0.5]                  (exactly 0.5 -> 0, as rounding does)
    stochastic     H ~ Bernoulli(p)               (st1, st2, reinforce)
    sa             H ~ Bernoulli(sigmoid(k a))    (k = slope, annealed upwards during training)

Backward (dL/da, with dy = dL/dH), for the textbook estimators (Bengio et al. 2013;
Chung et al. 2016); docs/hns_train.md says where the reference code differs:

    deterministic  dy * p(1-p)        straight through the threshold, not the sigmoid
    st1            dy                 straight through threshold and sigmoid
    st2            dy * p(1-p)        straight through the sample only
    sa             dy * k p_k(1-p_k)  with p_k = sigmoid(k a); no gradient for k
    reinforce      none through H: `reinforce_surrogate` carries the hider's gradient

Noise comes in as a uniform tensor u so that the caller owns the random generator (and
tests can fix it). `thresholded` gives a trained hider's deterministic masks over a split,
what the figures and the encoding diagnostics look at.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from src.fit import batched
from src.schema.hns import ESTIMATORS


def _step(condition: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.cast(condition, like.dtype)


def threshold(a: tf.Tensor) -> tf.Tensor:
    """Deterministic mask [sigmoid(a) > 0.5] = [a > 0], with the straight-through gradient
    dL/da = dL/dH * sigmoid'(a) (identity with respect to the sigmoid map)."""
    @tf.custom_gradient
    def forward(a):
        p = tf.sigmoid(a)

        def grad(dy):
            return dy * p * (1.0 - p)
        return _step(a > 0.0, a), grad
    return forward(a)


def thresholded(hider, x: np.ndarray) -> np.ndarray:
    """The deterministic masks of `hider` (a Keras model of mask logits) on x, in batches:
    `threshold` of its float32 logits, as the joint model evaluates them."""
    return batched(lambda xs: threshold(tf.cast(hider(xs, training=False), tf.float32)), x)


def sample(a: tf.Tensor, u: tf.Tensor, estimator: str, slope: tf.Tensor | float = 1.0) -> tf.Tensor:
    """Stochastic mask H = [u < sigmoid(k a)] (k = slope for sa, else 1) with the gradient
    of `estimator` (see the module docstring). reinforce returns H without a gradient."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}")
    k = tf.cast(tf.convert_to_tensor(slope), a.dtype) if estimator == "sa" else tf.constant(1.0, a.dtype)
    if estimator == "reinforce":
        return tf.stop_gradient(_step(u < tf.sigmoid(a), a))

    @tf.custom_gradient
    def forward(a):
        p = tf.sigmoid(k * a)

        def grad(dy):
            if estimator == "st1":
                return dy
            return dy * k * p * (1.0 - p)  # st2 (k = 1) and sa
        return _step(u < p, a), grad
    return forward(a)


def reinforce_surrogate(a: tf.Tensor, mask: tf.Tensor, per_example_loss: tf.Tensor) -> tf.Tensor:
    """A scalar whose gradient with respect to a is the REINFORCE estimate
        dJ/da[b, i] = (J_b - c_bi) (H[b, i] - sigmoid(a[b, i])) / B
    (mean over the batch of the per-example loss J), with the variance-reducing baseline
    of Bengio et al. (2013) per mask unit i, estimated on the other examples of the batch:
        c_bi = sum_{b' != b} (H - p)^2[b', i] J_b' / sum_{b' != b} (H - p)^2[b', i].
    Leaving the example's own (H, J) out keeps the estimate unbiased: a baseline that
    includes it is correlated with the example's own sample and shrinks the expected
    gradient by O(1/B). Its value is not a loss: add `s - stop_gradient(s)` to the loss so
    it only steers the gradient. The per-example loss must be the real one: with a
    constant loss the baseline equals it and the gradient is exactly 0."""
    mask = tf.stop_gradient(mask)
    loss = tf.stop_gradient(tf.cast(per_example_loss, a.dtype))
    loss = tf.reshape(loss, [-1] + [1] * (len(a.shape) - 1))
    residual2 = tf.stop_gradient(tf.square(mask - tf.sigmoid(a)))
    weighted, weights = residual2 * loss, residual2
    others = tf.reduce_sum(weighted, axis=0) - weighted  # every example's baseline without itself
    baseline = others / (tf.reduce_sum(weights, axis=0) - weights + 1e-8)
    advantage = tf.stop_gradient(loss - baseline)
    log_prob = -tf.nn.sigmoid_cross_entropy_with_logits(labels=mask, logits=a)  # log P(H | a)
    per_example = tf.reduce_sum(tf.reshape(advantage * log_prob, [tf.shape(a)[0], -1]), axis=1)
    return tf.reduce_mean(per_example)


def slope_factor(rate: float, steps_per_epoch: int) -> float:
    """Per-step multiplier that makes the slope grow by `rate` (0.5 = +50%) per epoch:
    (1 + rate) ** (1 / steps), applied on training steps only."""
    return float((1.0 + rate) ** (1.0 / max(int(steps_per_epoch), 1)))


def advance_slope(slope: tf.Variable, factor: float, maximum: float) -> tf.Operation:
    """One training step of annealing: slope <- min(slope * factor, maximum). Only training
    steps call it; evaluation never does."""
    return slope.assign(tf.minimum(slope * factor, maximum))
