"""The soft decision tree layer: routing math against hand-derived values, beta modes,
prediction rules, deep trees, and the .keras round trip."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from models.soft_tree import ancestors, build_tree, leaves_under, route, training_bytes, tree_layer


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def make(depth, classes=3, features=4, **kwargs):
    keras.utils.set_random_seed(0)
    return build_tree((features,), classes, depth, **kwargs)


def set_weights(model, kernel, bias, leaf_logits):
    layer = tree_layer(model)
    layer.kernel.assign(np.asarray(kernel, "float32"))
    layer.bias.assign(np.asarray(bias, "float32"))
    layer.leaf_logits.assign(np.asarray(leaf_logits, "float32"))


@pytest.mark.parametrize("depth", [1, 2, 5])
@pytest.mark.parametrize("batch", [1, 3, 17])
def test_path_probabilities_sum_to_one(depth, batch):
    model = make(depth)
    x = np.random.default_rng(depth).normal(size=(batch, 4)).astype("float32") * 3
    r = route(model, x)
    assert r["log_leaf"].shape == (batch, 2 ** depth) and r["log_inner"].shape == (batch, 2 ** depth - 1)
    np.testing.assert_allclose(np.exp(r["log_leaf"]).sum(axis=1), 1.0, atol=1e-5)
    for level in range(depth):  # every level of inner nodes also partitions the mass
        lo, hi = 2 ** level - 1, 2 ** (level + 1) - 1
        np.testing.assert_allclose(np.exp(r["log_inner"][:, lo:hi]).sum(axis=1), 1.0, atol=1e-5)


def test_depth_two_routing_by_hand():
    """p_i = sigmoid(x.w_i + b_i) is the probability of going right; heap order 0 | 1 2."""
    model = make(2, classes=2, features=2, beta_mode="fixed", beta=1.0)
    kernel = [[1.0, -2.0, 0.5], [0.0, 1.0, -1.0]]
    bias = [0.1, 0.0, 0.3]
    set_weights(model, kernel, bias, np.zeros((4, 2)))
    x = np.array([[0.5, -1.0]], "float32")
    p = sigmoid(x @ np.array(kernel) + np.array(bias))[0]
    expected = [(1 - p[0]) * (1 - p[1]), (1 - p[0]) * p[1], p[0] * (1 - p[2]), p[0] * p[2]]
    r = route(model, x)
    np.testing.assert_allclose(np.exp(r["log_leaf"][0]), expected, rtol=1e-5)
    np.testing.assert_allclose(np.exp(r["log_inner"][0]), [1.0, 1 - p[0], p[0]], rtol=1e-5)
    np.testing.assert_allclose(np.exp(r["log_right"][0]), p, rtol=1e-5)


@pytest.mark.parametrize("mode,size", [("per_node", 7), ("shared", 1), ("fixed", None)])
def test_beta_modes(mode, size):
    model = make(3, beta_mode=mode, beta=2.5)
    layer = tree_layer(model)
    names = [w.name for w in layer.trainable_weights]
    if size is None:
        assert "log_beta" not in names
    else:
        assert layer.log_beta.shape == (size,)
        np.testing.assert_allclose(np.exp(layer.log_beta.numpy()), 2.5, rtol=1e-6)
    x = np.random.default_rng(1).normal(size=(5, 4)).astype("float32")
    raw = x @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(route(model, x)["z"], 2.5 * raw, rtol=1e-5, atol=1e-6)  # sharpens: beta > 1


def test_per_node_beta_scales_each_node():
    model = make(2, beta_mode="per_node")
    layer = tree_layer(model)
    layer.log_beta.assign(np.log([1.0, 2.0, 4.0]).astype("float32"))
    x = np.ones((1, 4), "float32")
    raw = x @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(route(model, x)["z"][0], raw[0] * [1, 2, 4], rtol=1e-5)


def test_max_path_and_mixture_predictions_by_hand():
    model = make(1, classes=2, features=1, beta_mode="fixed")
    set_weights(model, [[1.0]], [0.0], [[2.0, 0.0], [0.0, 1.0]])
    x = np.array([[np.log(3.0)]], "float32")  # p(right) = 0.75
    q_left, q_right = np.exp([2, 0]) / np.exp([2, 0]).sum(), np.exp([0, 1]) / np.exp([0, 1]).sum()
    layer = tree_layer(model)
    r = layer.route(x)
    np.testing.assert_allclose(np.exp(layer.logits(r, "max_path"))[0], q_right, rtol=1e-5)
    np.testing.assert_allclose(np.exp(layer.logits(r, "mixture"))[0], 0.25 * q_left + 0.75 * q_right, rtol=1e-5)
    np.testing.assert_allclose(np.exp(model(x))[0], q_right, rtol=1e-5)  # default rule: max_path


def test_prediction_uses_the_argmax_path_not_a_greedy_walk():
    """Root p(right) = 0.6 but the right child splits 50/50 (0.3 each), while the left
    child sends 0.4 * 0.95 = 0.38 to leaf 1: greedy goes right, the argmax leaf is 1."""
    model = make(2, classes=4, features=1, beta_mode="fixed")
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    set_weights(model, [[0.0, 0.0, 0.0]], [logit(0.6), logit(0.95), 0.0], np.eye(4) * 5)
    r = route(model, np.zeros((1, 1), "float32"))
    assert int(np.argmax(r["log_leaf"][0])) == 1
    assert int(np.argmax(model(np.zeros((1, 1), "float32"))[0])) == 1


def test_deep_tree_stays_finite():
    """Depth 12 with large logits: products of 12 probabilities underflow in float32; log space does not."""
    model = make(12, features=2, beta_mode="fixed", beta=50.0)
    x = np.random.default_rng(2).normal(size=(3, 2)).astype("float32") * 10
    r = route(model, x)
    assert np.all(np.isfinite(r["log_leaf"]))
    np.testing.assert_allclose(np.exp(r["log_leaf"]).sum(axis=1), 1.0, atol=1e-4)


def test_save_and_load_give_identical_outputs(tmp_path):
    keras.utils.set_random_seed(3)
    model = build_tree((6, 6, 3), 5, 3, beta=1.5, beta_mode="shared", predict="mixture")
    layer = tree_layer(model)
    layer.balance_num.assign(np.arange(7, dtype="float32"))
    x = np.random.default_rng(3).random((9, 6, 6, 3)).astype("float32")
    model.save(tmp_path / "tree.keras")
    loaded = keras.models.load_model(tmp_path / "tree.keras", compile=False)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    other = tree_layer(loaded)
    assert (other.depth, other.beta_mode, other.predict) == (3, "shared", "mixture")
    np.testing.assert_array_equal(other.balance_num.numpy(), np.arange(7))


def test_tree_helpers():
    assert ancestors(0, 2) == [(0, False), (1, False)]
    assert ancestors(3, 2) == [(0, True), (2, True)]
    assert ancestors(5, 3) == [(0, True), (2, False), (5, True)]
    assert list(leaves_under(0, 3)) == list(range(8))
    assert list(leaves_under(2, 3)) == [4, 5, 6, 7] and list(leaves_under(4, 3)) == [2, 3]
    assert training_bytes(8, 784, 10, 128) < 50 * 2 ** 20  # the paper's tree: tens of MB
    assert training_bytes(30, 784, 10, 128) > 2 ** 40  # depth 30: terabytes
