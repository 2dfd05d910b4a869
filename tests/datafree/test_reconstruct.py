"""The reconstruction kernel: one compiled loop over all batches equals the reference code's one
batch at a time, and NaN stops it with the step."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from src.errors import TrainingDiverged
from src.datafree.reconstruct import InputOptimizer, relu_mse

W = tf.constant(np.random.default_rng(0).standard_normal((6, 4)).astype("float32"))


def _loss(x, targets):
    return relu_mse([tf.matmul(x, W)], targets)


def test_relu_mse_by_hand():
    a, t = tf.constant([[1.0, -2.0, 3.0]]), tf.constant([[0.0, 1.0, 5.0]])
    # relu: [1, 0, 3] vs [0, 1, 5] -> (1 + 1 + 4) / 3
    assert float(relu_mse([a], [t])[0]) == pytest.approx(2.0)


def test_all_batches_at_once_equals_one_batch_at_a_time():
    rng = np.random.default_rng(1)
    x0 = rng.normal(0.15, 0.1, (4 * 8, 6)).astype("float32")
    targets = rng.standard_normal((4 * 8, 4)).astype("float32")
    together = InputOptimizer(_loss, lr=0.05, batch_size=8, clip=False)
    x_all, _ = together.run(tf.constant(x0), [tf.constant(targets)], steps=30)
    alone = InputOptimizer(_loss, lr=0.05, batch_size=8, clip=False)
    pieces = [alone.run(tf.constant(x0[i:i + 8]), [tf.constant(targets[i:i + 8])], steps=30)[0].numpy()
              for i in range(0, 32, 8)]
    # equal up to float summation order (matmul blocking differs with the row count)
    np.testing.assert_allclose(x_all.numpy(), np.concatenate(pieces), rtol=0, atol=1e-3)


def test_adam_matches_keras_adam_on_one_batch():
    import keras
    rng = np.random.default_rng(2)
    x0 = rng.normal(0.15, 0.1, (8, 6)).astype("float32")
    target = tf.constant(rng.standard_normal((8, 4)).astype("float32"))
    ours, _ = InputOptimizer(_loss, lr=0.01, batch_size=8, clip=False).run(tf.constant(x0), [target], steps=15)
    variable = tf.Variable(x0)
    adam = keras.optimizers.Adam(learning_rate=0.01, epsilon=1e-8)
    for _ in range(15):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(_loss(variable, [target])) / 8.0
        adam.apply([tape.gradient(loss, variable)], [variable])
    np.testing.assert_allclose(ours.numpy(), variable.numpy(), rtol=1e-4, atol=1e-5)


def test_loss_decreases_and_clip_holds():
    rng = np.random.default_rng(3)
    x0 = tf.constant(rng.normal(0.15, 0.1, (16, 6)).astype("float32"))
    target = [tf.constant(np.abs(rng.standard_normal((16, 4))).astype("float32"))]
    start = float(tf.reduce_mean(_loss(x0, target)))
    x, loss = InputOptimizer(_loss, lr=0.05, batch_size=16, clip=True).run(x0, target, steps=100)
    assert float(tf.reduce_mean(loss)) < start / 2
    assert float(tf.reduce_min(x)) >= 0.0 and float(tf.reduce_max(x)) <= 1.0


def test_nan_stops_with_the_step():
    def exploding(x, targets):
        return tf.reduce_sum(tf.exp(1e3 * x), axis=-1)

    optimizer = InputOptimizer(exploding, lr=1.0, batch_size=4, clip=False, check_every=10)
    with pytest.raises(TrainingDiverged, match=r"NaN/Inf \(class 7\) by step 10"):
        optimizer.run(tf.ones((4, 3)), [], steps=50, where=" (class 7)")


def test_relu_mse_sums_weighted_layers_per_example():
    """Layer 1 as above (2.0 for the first example, 0 for the second); layer 2: relu [2, 2]
    against relu [0, -1] = [0, 0] gives (4 + 4) / 2 = 4, and 0 for the second example."""
    a1, t1 = tf.constant([[1.0, -2.0, 3.0], [0.0, 0.0, 0.0]]), tf.constant([[0.0, 1.0, 5.0], [0.0, -3.0, 0.0]])
    a2, t2 = tf.constant([[2.0, 2.0], [1.0, 1.0]]), tf.constant([[0.0, -1.0], [1.0, 1.0]])
    np.testing.assert_allclose(relu_mse([a1, a2], [t1, t2]).numpy(), [6.0, 0.0])
    np.testing.assert_allclose(relu_mse([a1, a2], [t1, t2], [0.5, 0.25]).numpy(), [2.0, 0.0])
