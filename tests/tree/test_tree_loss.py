"""The tree's loss: leaf term and balancing penalty against hand computations, a penalty
that has a gradient, running sums, no batch x batch mix-up, and the target kinds."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.soft_tree import build_tree, tree_layer
from src.tree.loss import node_weights, targets, tree_loss, window_decay


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def softmax(v):
    e = np.exp(v - np.max(v, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def tiny(kernel=((1.0,),), bias=(0.5,), leaves=((1.0, 0.0), (0.0, 2.0)), depth=1):
    keras.utils.set_random_seed(0)
    model = build_tree((len(kernel),), len(leaves[0]), depth, beta_mode="fixed", beta=1.0)
    layer = tree_layer(model)
    layer.kernel.assign(np.asarray(kernel, "float32"))
    layer.bias.assign(np.asarray(bias, "float32"))
    layer.leaf_logits.assign(np.asarray(leaves, "float32"))
    return model


def test_depth_one_loss_by_hand():
    model = tiny()
    x = np.array([[1.0], [-2.0]], "float32")
    t = np.array([[1.0, 0.0], [0.3, 0.7]], "float32")
    loss_fn = tree_loss(model, penalty_strength=2.0, penalty_decay=0.5, penalty_window=1.0)
    out = loss_fn({"x": x, "targets": t, "y": np.array([0, 1])}, False)

    p = sigmoid(np.array([1.5, -1.5]))  # right-branch probabilities
    log_q = np.log(softmax(np.array([[1.0, 0.0], [0.0, 2.0]])))
    ce = -(t @ log_q.T)  # ce[b, leaf]
    leaf = np.mean((1 - p) * ce[:, 0] + p * ce[:, 1])
    alpha = p.sum() / 2  # root: path probability 1 for both examples
    penalty = 2.0 * -(0.5 * np.log(alpha) + 0.5 * np.log(1 - alpha))
    assert float(out["leaf_loss"]) == pytest.approx(leaf, rel=1e-5)
    assert float(out["penalty"]) == pytest.approx(penalty, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(leaf + penalty, rel=1e-5)
    # max-path prediction: example 0 goes right (class 1), example 1 goes left (class 0)
    assert float(out["accuracy"]) == pytest.approx(0.0)


def test_depth_two_penalty_weights_by_hand():
    """alpha_i = sum_b P_bi p_bi / sum_b P_bi with weight strength * decay^depth(i)."""
    kernel = [[1.0, -1.0, 2.0]]
    bias = [0.0, 0.5, -0.5]
    model = tiny(kernel, bias, np.zeros((4, 2)), depth=2)
    x = np.array([[0.3], [-1.2], [2.0]], "float32")
    p = sigmoid(x @ np.array(kernel) + np.array(bias))
    reach = np.stack([np.ones(3), 1 - p[:, 0], p[:, 0]], axis=1)
    alpha = (reach * p).sum(0) / reach.sum(0)
    weights = 0.7 * 0.25 ** np.array([0, 1, 1])
    expected = np.sum(weights * -(0.5 * np.log(alpha) + 0.5 * np.log(1 - alpha)))
    out = tree_loss(model, penalty_strength=0.7, penalty_decay=0.25, penalty_window=1.0)(
        {"x": x, "targets": np.full((3, 2), 0.5, "float32"), "y": np.zeros(3)}, False)
    assert float(out["penalty"]) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(node_weights(2, 0.7, 0.25), weights, rtol=1e-6)


def test_penalty_has_a_gradient():
    keras.utils.set_random_seed(1)
    model = build_tree((5,), 3, 3)
    layer = tree_layer(model)
    loss_fn = tree_loss(model, penalty_strength=1.0, penalty_decay=0.5, penalty_window=4.0)
    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    batch = {"x": x, "targets": np.full((16, 3), 1 / 3, "float32"), "y": np.zeros(16)}
    with tf.GradientTape() as tape:
        penalty = loss_fn(batch, True)["penalty"]
    grads = tape.gradient(penalty, [layer.kernel, layer.bias, layer.log_beta])
    for grad in grads:
        assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 1e-6


def test_penalty_gradient_by_hand_and_by_finite_differences():
    """Depth 1, window 1 (no history): alpha = mean_b p_b with p_b = sigmoid(w x_b + b0), so
    d penalty / d w = strength * (1/(2(1 - alpha)) - 1/(2 alpha)) * mean_b p_b (1 - p_b) x_b."""
    model = tiny()
    layer = tree_layer(model)
    x = np.array([[1.0], [-2.0], [0.5]], "float32")
    batch = {"x": x, "targets": np.full((3, 2), 0.5, "float32"), "y": np.zeros(3)}
    loss_fn = tree_loss(model, penalty_strength=2.0, penalty_decay=0.5, penalty_window=1.0)

    def penalty() -> float:
        return float(loss_fn(batch, False)["penalty"])
    with tf.GradientTape() as tape:
        value = loss_fn(batch, False)["penalty"]
    grad = float(tape.gradient(value, layer.kernel)[0, 0])
    p = sigmoid(x[:, 0] * 1.0 + 0.5)
    alpha = p.mean()
    by_hand = 2.0 * (0.5 / (1 - alpha) - 0.5 / alpha) * np.mean(p * (1 - p) * x[:, 0])
    eps = 2e-2  # large enough that float32 rounding of the penalty stays below 1e-3 of the gradient
    layer.kernel.assign([[1.0 + eps]])
    up = penalty()
    layer.kernel.assign([[1.0 - eps]])
    down = penalty()
    assert grad == pytest.approx(by_hand, rel=1e-4)
    assert grad == pytest.approx((up - down) / (2 * eps), rel=2e-3)


def test_running_sums_update_only_in_training():
    model = tiny()
    layer = tree_layer(model)
    loss_fn = tree_loss(model, penalty_strength=1.0, penalty_decay=0.5, penalty_window=2.0)
    x = np.array([[1.0], [-2.0]], "float32")
    batch = {"x": x, "targets": np.eye(2, dtype="float32"), "y": np.array([0, 1])}
    p = sigmoid(np.array([1.5, -1.5]))
    loss_fn(batch, False)
    assert layer.balance_den.numpy()[0] == 0.0  # evaluation leaves the sums alone
    loss_fn(batch, True)
    np.testing.assert_allclose([layer.balance_num.numpy()[0], layer.balance_den.numpy()[0]], [p.sum(), 2.0], rtol=1e-5)
    # root decay with window 2: g = 1 - 1/2; the history enters alpha, the batch keeps its share
    layer.balance_num.assign([1.0])
    layer.balance_den.assign([4.0])
    alpha = (0.5 * 1.0 + p.sum()) / (0.5 * 4.0 + 2.0)
    out = loss_fn(batch, False)
    assert float(out["penalty"]) == pytest.approx(-(0.5 * np.log(alpha) + 0.5 * np.log(1 - alpha)), rel=1e-5)
    np.testing.assert_allclose(window_decay(3, 2.0), [0.5, 0.75, 0.75, 0.875, 0.875, 0.875, 0.875])


def test_leaf_loss_pairs_each_example_with_its_own_target():
    """The reference code broadcast (B,1) x (B,) into B x B; here the batch loss is the mean of the
    per-example losses, for any batch size."""
    keras.utils.set_random_seed(2)
    model = build_tree((4,), 3, 2)
    loss_fn = tree_loss(model, penalty_strength=0.0, penalty_decay=0.5, penalty_window=1.0)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 4)).astype("float32")
    t = np.eye(3, dtype="float32")[[0, 2, 1, 1, 0]]
    batch = float(loss_fn({"x": x, "targets": t, "y": np.zeros(5)}, False)["leaf_loss"])
    singles = [float(loss_fn({"x": x[i:i + 1], "targets": t[i:i + 1], "y": np.zeros(1)}, False)["leaf_loss"])
               for i in range(5)]
    assert batch == pytest.approx(np.mean(singles), rel=1e-5)


def test_targets():
    y = np.array([0, 2])
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    np.testing.assert_array_equal(targets(y, 3, None, "hard", 1.0, 0.5), np.eye(3)[[0, 2]])
    soft = targets(y, 3, logits, "soft", 2.0, 0.5)
    np.testing.assert_allclose(soft, softmax(logits / 2.0), rtol=1e-6)
    mixed = targets(y, 3, logits, "mixed", 2.0, 0.25)
    np.testing.assert_allclose(mixed, 0.75 * np.eye(3)[[0, 2]] + 0.25 * softmax(logits / 2.0), rtol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)


def test_temperature_below_one_sharpens_the_teacher():
    """T = 0.5 (the default) doubles the logit gaps: logits (2, 0) give e^4 / (e^4 + 1)."""
    sharp = targets(np.array([1]), 2, np.array([[2.0, 0.0]]), "soft", 0.5, 0.5)
    p = np.exp(4.0) / (np.exp(4.0) + 1.0)
    np.testing.assert_allclose(sharp, [[p, 1.0 - p]], rtol=1e-6)
    assert p == pytest.approx(0.98201, abs=1e-5)  # the teacher's class, even against the label 1
    # a tie stays a tie at any temperature: ambiguous images keep soft targets
    np.testing.assert_allclose(targets(np.array([0]), 2, np.array([[1.0, 1.0]]), "soft", 0.5, 0.5), [[0.5, 0.5]])
