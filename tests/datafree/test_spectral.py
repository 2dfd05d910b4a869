"""The spectral objectives (src/datafree/spectral): golden values small enough to check by hand,
the conv/pool linearisation on LeNet, statistics against numpy, sampling covariance."""
from __future__ import annotations

import logging
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from src.datafree import spectral
from src.datafree.gaussian import cholesky_with_jitter

# Weights of the tiny network, by hand: 3 inputs -> fc1 (3) -> fc2 (2) -> logits (2).
W1 = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0], [2.0, 1.0, 1.0]], np.float32)
W2 = np.array([[1.0, -1.0], [-2.0, 0.5], [0.0, 4.0]], np.float32)
W3 = np.array([[3.0, -1.0], [2.0, 2.0]], np.float32)


def tiny_model() -> keras.Model:
    inputs = keras.Input(shape=(3,), name="input")
    x = keras.layers.Dense(3, name="fc1")(inputs)
    x = keras.layers.ReLU(name="fc1_relu")(x)
    x = keras.layers.Dropout(0.5, name="fc1_dropout")(x)
    x = keras.layers.Dense(2, name="fc2")(x)
    x = keras.layers.ReLU(name="fc2_relu")(x)
    outputs = keras.layers.Dense(2, name="logits")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    for name, w in (("fc1", W1), ("fc2", W2), ("logits", W3)):
        model.get_layer(name).set_weights([w, np.full(w.shape[1], 0.7, np.float32)])  # biases must not leak
    return model


def stats_from(bases, activations, labels, keep, num_classes=2, batch=7):
    """spectral_stats over mixed-class batches of `batch` examples."""
    def batches():
        for i in range(0, len(labels), batch):
            yield [a[i:i + batch] for a in activations], labels[i:i + batch]
    return spectral.spectral_stats(batches, bases, keep, num_classes)


# ---------------------------------------------------------------- connectivity + graph

def test_tiny_network_blocks_adjacency_and_basis():
    model = tiny_model()
    blocks = spectral.connectivity_blocks(model, models.activation_layers(model))
    assert [b.shape for b in blocks] == [(3, 2), (2, 2)]
    np.testing.assert_array_equal(blocks[0], np.abs(W2))  # fc1_relu -> dropout -> fc2: |W2|, no bias
    np.testing.assert_array_equal(blocks[1], np.abs(W3))

    a, scales = spectral.adjacency(blocks)
    np.testing.assert_allclose(scales, [np.linalg.norm(np.abs(W2).astype(np.float64), 2),
                                        np.linalg.norm(np.abs(W3).astype(np.float64), 2)], rtol=1e-12)
    np.testing.assert_array_equal(a, a.T)
    b2, b3 = np.abs(W2).astype(np.float64), np.abs(W3).astype(np.float64)
    np.testing.assert_allclose(a[0:3, 3:5], b2 / scales[0], rtol=1e-12)
    np.testing.assert_allclose(a[3:5, 5:7], b3 / scales[1], rtol=1e-12)
    np.testing.assert_allclose(a[3:5, 0:3], (b2 / scales[0]).T, rtol=1e-12)
    for rows, cols in ((slice(0, 3), slice(0, 3)), (slice(3, 5), slice(3, 5)), (slice(5, 7), slice(5, 7)),
                       (slice(0, 3), slice(5, 7))):
        assert not a[rows, cols].any()  # no self-loops, no skip connections

    (basis,) = spectral.graph_bases(blocks, [3, 2, 2], "all_layers", ["fc1", "fc2", "logits"])
    u = basis.U
    assert basis.n == 7 and basis.layers == ("fc1", "fc2", "logits") and basis.span == slice(0, 7)
    np.testing.assert_allclose(u.T @ u, np.eye(7), atol=1e-12)  # orthonormal: U^-1 = U^T
    np.testing.assert_allclose(u @ np.diag(basis.eigenvalues) @ u.T, a, atol=1e-12)
    assert np.all(np.diff(basis.eigenvalues) >= 0)

    s = np.random.default_rng(0).random((5, 7))
    s_hat = basis.gft(s)
    np.testing.assert_allclose(np.linalg.norm(s_hat, axis=1), np.linalg.norm(s, axis=1), rtol=1e-12)  # Parseval
    np.testing.assert_allclose(basis.igft(s_hat), s, atol=1e-12)


def test_two_neuron_graph_golden():
    # Two neurons joined by weight w: A = [[0, w], [w, 0]], eigenvalues -w, +w with
    # eigenvectors [1, -1]/sqrt2 and [1, 1]/sqrt2. Normalising by the spectral norm (w)
    # makes them -1, +1 and leaves the eigenvectors alone.
    w = 3.0
    a, _ = spectral.adjacency([np.array([[w]])], normalise=False)
    np.testing.assert_allclose(np.linalg.eigvalsh(a), [-w, w])
    (basis,) = spectral.graph_bases([np.array([[w]])], [1, 1], "all_layers")
    assert basis.scales == (w,)
    np.testing.assert_allclose(basis.eigenvalues, [-1.0, 1.0], atol=1e-15)
    r = 1 / math.sqrt(2)
    np.testing.assert_allclose(np.abs(basis.U[:, 0] @ [r, -r]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(basis.U[:, 1] @ [r, r]), 1.0, atol=1e-12)


def test_three_neuron_chain_golden_and_per_block_normalisation():
    # A path 1 - 2 - 3 with weights 3 and 5: each block is divided by its own norm, so the
    # graph is the unit path P3: eigenvalues -sqrt2, 0, sqrt2; eigenvectors
    # [1, -sqrt2, 1]/2, [1, 0, -1]/sqrt2, [1, sqrt2, 1]/2 (up to sign).
    (basis,) = spectral.graph_bases([np.array([[3.0]]), np.array([[5.0]])], [1, 1, 1], "all_layers")
    assert basis.scales == (3.0, 5.0)
    r2 = math.sqrt(2)
    np.testing.assert_allclose(basis.eigenvalues, [-r2, 0.0, r2], atol=1e-12)
    expected = np.array([[1, -r2, 1], [r2, 0, -r2], [1, r2, 1]]) / 2
    np.testing.assert_allclose(np.abs(np.sum(basis.U * expected.T, axis=0)), 1.0, atol=1e-12)


def test_layer_pairs_versus_all_layers():
    rng = np.random.default_rng(1)
    dims = [4, 3, 3, 2]
    blocks = [rng.random((dims[k], dims[k + 1])) for k in range(3)]
    names = ["a", "b", "c", "d"]
    (whole,) = spectral.graph_bases(blocks, dims, "all_layers", names)
    assert (whole.name, whole.n, whole.layers, whole.offset) == ("all", 12, tuple(names), 0)
    pairs = spectral.graph_bases(blocks, dims, "layer_pairs", names)
    assert [p.name for p in pairs] == ["a-b", "b-c", "c-d"]
    assert [p.n for p in pairs] == [7, 6, 5] and [p.offset for p in pairs] == [0, 4, 7]
    assert [p.layers for p in pairs] == [("a", "b"), ("b", "c"), ("c", "d")]
    for p, block in zip(pairs, blocks):
        # a bipartite pair graph's spectrum is +-(singular values of its normalised block)
        # and zeros: symmetric, with top eigenvalue exactly 1
        sigma = np.linalg.svd(block / np.linalg.norm(block, 2), compute_uv=False)
        expected = np.sort(np.concatenate([sigma, -sigma, np.zeros(p.n - 2 * len(sigma))]))
        np.testing.assert_allclose(p.eigenvalues, expected, atol=1e-12)
    with pytest.raises(ValueError, match="unknown spectral mode"):
        spectral.graph_bases(blocks, dims, "pairs")
    with pytest.raises(ValueError, match="block 2"):
        spectral.graph_bases([blocks[0], blocks[1], blocks[2].T], dims, "all_layers")


def test_lenet_blocks_linearise_conv_and_max_pool():
    keras.utils.set_random_seed(0)
    model = models.build("lenet", (28, 28, 1), 10)
    layers = models.activation_layers(model)
    blocks = spectral.connectivity_blocks(model, layers)
    # 28x28: conv1 24x24x6, pool 12x12x6, conv2 8x8x16, pool 4x4x16 = 256, fc1 120, fc2 84
    assert [b.shape for b in blocks] == [(3456, 1024), (1024, 120), (120, 84), (84, 10)]
    assert all(b.dtype == np.float32 and (b >= 0).all() for b in blocks)

    # conv1 unit (y, x, c) -> pool1 (y//2, x//2, c) with weight 1/4 (average = the max-pool
    # linearisation) -> conv2 unit (i, j, f) with |k2[y//2 - i, x//2 - j, c, f]| when 0 <= . < 5
    k2 = np.abs(model.get_layer("conv2").get_weights()[0])
    i, j, f = 2, 3, 5
    expected = np.zeros((24, 24, 6), np.float32)
    for di in range(5):
        for dj in range(5):
            for a in range(2):
                for b in range(2):
                    expected[2 * (i + di) + a, 2 * (j + dj) + b, :] = k2[di, dj, :, f] / 4
    np.testing.assert_allclose(blocks[0][:, (i * 8 + j) * 16 + f], expected.reshape(-1), rtol=1e-6, atol=0)

    # conv2 unit (y, x, f) -> pool2 (y//2, x//2, f) -> flatten ((y//2)*4 + x//2)*16 + f -> fc1
    w_fc1 = np.abs(model.get_layer("fc1").get_weights()[0])
    y, x, f = 7, 2, 11
    np.testing.assert_allclose(blocks[1][(y * 8 + x) * 16 + f], w_fc1[((y // 2) * 4 + x // 2) * 16 + f] / 4,
                               rtol=1e-6)
    np.testing.assert_array_equal(blocks[2], np.abs(model.get_layer("fc2").get_weights()[0]))
    np.testing.assert_array_equal(blocks[3], np.abs(model.get_layer("logits").get_weights()[0]))


def test_reference_models_block_shapes():
    lenet32 = models.build("lenet", (32, 32, 1), 10)
    assert [b.shape for b in spectral.connectivity_blocks(lenet32, models.activation_layers(lenet32))] == [
        (4704, 1600), (1600, 120), (120, 84), (84, 10)]
    hinton = models.build("hinton1200", (28, 28, 1), 10)
    blocks = spectral.connectivity_blocks(hinton, models.activation_layers(hinton))
    assert [b.shape for b in blocks] == [(1200, 1200), (1200, 10)]
    np.testing.assert_array_equal(blocks[0], np.abs(hinton.get_layer("fc2").get_weights()[0]))


def test_unlinearisable_structures_are_named():
    inputs = keras.Input(shape=(4,))
    x = keras.layers.ReLU(name="fc1_relu")(keras.layers.Dense(3, name="fc1")(inputs))
    x = keras.layers.LayerNormalization(name="norm")(x)
    outputs = keras.layers.Dense(2, name="logits")(x)
    with pytest.raises(ValueError, match="'norm'"):
        spectral.connectivity_blocks(keras.Model(inputs, outputs), ["fc1", "logits"])
    with pytest.raises(ValueError, match="'fc2_relu'"):  # not adjacent: a ReLU in between
        spectral.connectivity_blocks(tiny_model(), ["fc1", "logits"])
    with pytest.raises(ValueError, match="not downstream"):
        spectral.connectivity_blocks(tiny_model(), ["fc2", "fc1"])


# ---------------------------------------------------------------- statistics

def test_spectral_stats_selects_the_class_directions_and_matches_numpy():
    rng = np.random.default_rng(2)
    dims = [4, 3, 3]
    blocks = [rng.random((4, 3)) + 0.1, rng.random((3, 3)) + 0.1]
    (basis,) = spectral.graph_bases(blocks, dims, "all_layers")
    u = basis.U
    u_pos = u.copy()
    u_pos[:, -1] *= np.sign(u[0, -1])  # top (Perron) eigenvector: all entries > 0 (connected, >= 0 graph)
    assert (u_pos[:, -1] > 0.05).all()
    # class 0 lives in span{perron, u_2}, class 1 in span{perron, u_5}; a large Perron
    # coefficient keeps the signals positive, so the ReLU of the signal convention is a no-op
    n_per = 400
    dirs = {0: [9, 2], 1: [9, 5]}
    labels = np.repeat([0, 1], n_per)
    rng.shuffle(labels)
    coeff = np.empty((2 * n_per, 2))
    coeff[labels == 0] = rng.multivariate_normal([30.0, 1.0], [[4.0, 1.0], [1.0, 2.0]], n_per)
    coeff[labels == 1] = rng.multivariate_normal([25.0, -2.0], [[3.0, -0.5], [-0.5, 1.0]], n_per)
    s = np.einsum("bc,bnc->bn", coeff, u_pos[:, np.array([dirs[c] for c in labels])].transpose(1, 0, 2))
    assert (s > 0).all()
    acts = [s[:, :4], s[:, 4:7], s[:, 7:]]

    stats = stats_from([basis], acts, labels, keep=0.2)  # C = ceil(0.2 * 10) = 2
    index = stats["spectral/all/index"]
    assert index.shape == (2, 2)
    assert [set(index[c]) for c in range(2)] == [set(dirs[0]), set(dirs[1])]
    assert index[0, 0] == 9 and index[1, 0] == 9  # most energetic first
    np.testing.assert_array_equal(stats["spectral/all/count"], [n_per, n_per])
    np.testing.assert_allclose(stats["spectral/all/captured"], 1.0, atol=1e-9)
    s_hat = s @ u
    for c in range(2):
        x = s_hat[labels == c][:, index[c]]
        np.testing.assert_allclose(stats["spectral/all/mean"][c], x.mean(axis=0), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(stats["spectral/all/cov"][c], np.cov(x, rowvar=False), rtol=1e-4, atol=1e-4)
    assert stats["spectral/all/basis"].dtype == np.float32 and stats["spectral/all/basis"].shape == (10, 10)
    assert list(stats["spectral/layers"]) == ["layer0", "layer1", "layer2"]
    assert str(stats["spectral/mode"]) == "all_layers" and list(stats["spectral/graphs"]) == ["all"]

    with pytest.raises(ValueError, match="at least 2 examples"):
        stats_from([basis], acts, np.zeros_like(labels), keep=0.2)


# ---------------------------------------------------------------- sampling

def test_cholesky_with_jitter_on_a_singular_matrix():
    cov = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])  # rank 2: exact zero pivot
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(cov)
    factor, jitter = cholesky_with_jitter(cov)
    assert jitter > 0
    np.testing.assert_allclose(factor @ factor.T, cov + jitter * np.eye(3), atol=1e-12)
    assert np.allclose(factor, np.tril(factor))
    good = np.array([[4.0, 2.0], [2.0, 3.0]])
    factor, jitter = cholesky_with_jitter(good)
    assert jitter == 0.0
    np.testing.assert_allclose(factor @ factor.T, good)


def test_samples_have_the_class_mean_and_covariance():
    # Sigma = [[4, 2], [2, 3]]: L = [[2, 0], [1, sqrt2]], so mean + z L (covariance L^T L =
    # [[5, 1.41], [1.41, 2]]) and mean + z Sigma (Sigma^2) are both far from Sigma.
    sigma = np.array([[[4.0, 2.0], [2.0, 3.0]], [[1.0, -0.5], [-0.5, 2.0]]])
    mean = np.array([[10.0, -1.0], [0.0, 5.0]])
    stats = {"spectral/graphs": np.array(["g"]), "spectral/g/mean": mean, "spectral/g/cov": sigma}
    labels = np.tile([0, 1, 1], 100_000)
    samples = spectral.sample_spectral_targets(stats, 0, labels, np.random.default_rng(3))
    assert samples.shape == (300_000, 2)
    for c in range(2):
        x = samples[labels == c]
        np.testing.assert_allclose(x.mean(axis=0), mean[c], atol=0.03)
        np.testing.assert_allclose(np.cov(x, rowvar=False), sigma[c], atol=0.05)
    again = spectral.sample_spectral_targets(stats, "g", labels, np.random.default_rng(3),
                                             chol=spectral.spectral_cholesky(stats, "g")[0])
    np.testing.assert_allclose(again, samples, atol=1e-12)


def test_sampling_a_singular_covariance_warns_with_the_jitter(caplog):
    stats = {"spectral/graphs": np.array(["g"]), "spectral/g/mean": np.zeros((1, 2)),
             "spectral/g/cov": np.array([[[1.0, 1.0], [1.0, 1.0]]])}
    with caplog.at_level(logging.WARNING, logger="src.spectral"):
        samples = spectral.sample_spectral_targets(stats, "g", np.zeros(1000, int), np.random.default_rng(4))
    assert "added" in caplog.text and "class 0" in caplog.text
    np.testing.assert_allclose(samples[:, 0], samples[:, 1], atol=1e-2)  # all variance along [1, 1]


# ---------------------------------------------------------------- loss

def test_spectral_loss_with_keep_one_is_the_vertex_domain_mse():
    # With keep = 1 every class selects all n coefficients, P_c = U[:, index_c] is U with
    # its columns permuted, hence orthogonal: P_c P_c^T = I. For a target t of class c,
    #   ||P_c^T s - t||^2 = ||P_c (P_c^T s - t)||^2 = ||s - P_c t||^2,
    # so the mean over the C = n coefficients equals the plain mean squared error between
    # the signal s and the inverse-transformed target P_c t, vertex by vertex.
    model = tiny_model()
    layers = models.activation_layers(model)
    blocks = spectral.connectivity_blocks(model, layers)
    bases = spectral.graph_bases(blocks, [3, 2, 2], "all_layers", layers)
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 60)
    acts = [rng.random((60, d)) for d in (3, 2, 2)]
    stats = stats_from(bases, acts, labels, keep=1.0)
    assert stats["spectral/all/index"].shape == (2, 7)

    loss = spectral.SpectralLoss(stats)
    assert loss.layers == layers and loss.graphs == ["all"] and loss.sizes == [7]
    b_labels = np.array([1, 0, 0, 1, 1])  # mixed classes in one batch
    b_acts = [rng.random((5, d)).astype(np.float32) for d in (3, 2, 2)]
    targets = spectral.sample_spectral_targets(stats, "all", b_labels, rng)
    value = float(loss(b_acts, b_labels, [targets]))
    s = np.concatenate(b_acts, axis=1).astype(np.float64)
    inverse = spectral.reconstruct(stats, "all", b_labels, targets)
    np.testing.assert_allclose(value, np.mean((s - inverse) ** 2), rtol=1e-5)
    assert value > 0


def test_spectral_loss_projects_each_example_with_its_class_basis():
    rng = np.random.default_rng(6)
    dims = [5, 4, 3, 2]
    blocks = [rng.random((dims[k], dims[k + 1])) for k in range(3)]
    names = ["fc1", "fc2", "fc3", "logits"]
    bases = spectral.graph_bases(blocks, dims, "layer_pairs", names)
    labels = rng.integers(0, 3, 90)
    acts = [rng.random((90, d)) for d in dims]
    stats = stats_from(bases, acts, labels, keep=0.5, num_classes=3)
    loss = spectral.SpectralLoss(stats)
    assert loss.graphs == ["fc1-fc2", "fc2-fc3", "fc3-logits"] and loss.sizes == [5, 4, 3]

    b_labels = np.array([2, 0, 2, 1, 0, 2], np.int32)
    b_pre = [rng.normal(size=(6, d)).astype(np.float32) for d in dims]  # pre-activations: ReLU inside
    s = np.maximum(np.concatenate(b_pre, axis=1), 0.0)
    got = loss.project(b_pre, b_labels)
    for g, basis in enumerate(bases):
        index = stats[f"spectral/{basis.name}/index"][b_labels]
        expected = np.take_along_axis(s[:, basis.span] @ basis.U, index, axis=1)
        np.testing.assert_allclose(got[g].numpy(), expected, rtol=1e-5, atol=1e-6)

    # a signal whose selected coefficients equal the targets has zero loss, in any batch order
    targets = [p.numpy() for p in got]
    assert float(loss(b_pre, b_labels, targets)) < 1e-10
    targets[1][3] += 2.0  # one example, one graph: (2^2 * C) / C / B per element
    per_example = loss.per_example(dict(zip(names, b_pre)), b_labels, dict(zip(loss.graphs, targets))).numpy()
    np.testing.assert_allclose(per_example, [0, 0, 0, 4.0, 0, 0], atol=1e-5)

    # inside tf.function, with a gradient that reaches the activations
    x = [tf.Variable(a) for a in b_pre]

    @tf.function
    def step(lab, tgt):
        with tf.GradientTape() as tape:
            value = loss(x, lab, tgt)
        return value, tape.gradient(value, x)

    value, grads = step(tf.constant(b_labels), [tf.constant(t) for t in targets])
    np.testing.assert_allclose(float(value), 4.0 / 6, rtol=1e-5)
    assert all(np.isfinite(g.numpy()).all() for g in grads) and any(np.abs(g.numpy()).sum() > 0 for g in grads)


def test_out_of_band_weight_one_is_the_papers_reconstruction_loss():
    # P = U_C(c) has orthonormal columns, so for any s and target t (Pythagoras, P^T P = I):
    #   ||s - P t||^2 = ||P^T s - t||^2 + ||s - P P^T s||^2,
    # the in-band error plus the energy outside the C selected coefficients. out_of_band = 1
    # therefore gives ||s - s_bar||^2 / C with s_bar = P t the paper's reconstruction.
    rng = np.random.default_rng(7)
    dims = [3, 2, 2]
    (basis,) = spectral.graph_bases([rng.random((3, 2)), rng.random((2, 2))], dims, "all_layers")
    labels = rng.integers(0, 2, 40)
    stats = stats_from([basis], [rng.random((40, d)) for d in dims], labels, keep=0.5)  # C = 4 of 7
    b_labels = np.array([0, 1, 1, 0])
    b_acts = [rng.random((4, d)).astype(np.float32) for d in dims]
    targets = [spectral.sample_spectral_targets(stats, 0, b_labels, rng)]
    s = np.concatenate(b_acts, axis=1).astype(np.float64)
    s_bar = spectral.reconstruct(stats, "all", b_labels, targets[0])
    full = spectral.SpectralLoss(stats, out_of_band=1.0).per_example(b_acts, b_labels, targets).numpy()
    np.testing.assert_allclose(full, np.sum((s - s_bar) ** 2, axis=1) / 4, rtol=1e-5)
    in_band = spectral.SpectralLoss(stats).per_example(b_acts, b_labels, targets).numpy()
    assert (full > in_band + 1e-4).all()  # keep < 1: the out-of-band energy is not zero here
