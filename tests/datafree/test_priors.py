"""DeepInversion's image priors and BatchNorm-statistics objective for optimize_dataset:
golden values by hand on batches of several inputs, gradients, and runs."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from procedures import optimize_dataset
from src.datafree.batchnorm import BatchNormObjective
from src.datafree.priors import image_norm, make_prior, make_view, total_variation_l1, total_variation_l2
from src.datafree.reconstruct import InputOptimizer
from src.errors import ArtifactError
from tests.conftest import numeric_gradient

FAST = ["optimize.per_class=16", "optimize.batch_size=8", "optimize.steps=20"]
# One batch of two 2x2 images, [[0, 1], [2, 4]] and [[2, 0], [0, 1]]. Differences of the batch:
#   right       (-1, -2) and (2, -1):  norm sqrt(1 + 4 + 4 + 1) = sqrt 10,  mean |d| 6 / 4 = 1.5
#   down        (-2, -3) and (2, -1):  norm sqrt(4 + 9 + 4 + 1) = sqrt 18,  mean |d| 8 / 4 = 2
#   down-right  -4 and 1:              norm sqrt 17,                        mean |d| 5 / 2 = 2.5
#   down-left   1 - 2 = -1 and 0 - 0:  norm 1,                              mean |d| 1 / 2 = 0.5
# and the batch's norm sqrt(0 + 1 + 4 + 16 + 4 + 0 + 0 + 1) = sqrt 26. A second batch of two
# constant-3 images has no differences and norm sqrt(8 * 9) = sqrt 72.
IMAGES = np.array([[[0.0, 1.0], [2.0, 4.0]], [[2.0, 0.0], [0.0, 1.0]],
                   [[3.0, 3.0], [3.0, 3.0]], [[3.0, 3.0], [3.0, 3.0]]], np.float32)[..., None]
TV_L2 = math.sqrt(10) + math.sqrt(18) + math.sqrt(17) + 1
TV_L1 = 1.5 + 2 + 2.5 + 0.5


def optimize_settings(**changes):
    base = {"tv_l1": 0.0, "tv_l2": 0.0, "l2": 0.0, "roll": 0, "flip": False, "batch_size": 2, "bn_weight": 1.0,
            "init": [0.15, 0.1]}
    return OmegaConf.create({**base, **changes})


def test_total_variation_and_norm_over_each_batch_by_hand():
    x = tf.constant(IMAGES)
    np.testing.assert_allclose(total_variation_l2(x, 2), [TV_L2, 0.0], rtol=1e-6)
    np.testing.assert_allclose(total_variation_l1(x, 2), [TV_L1, 0.0], rtol=1e-6)
    np.testing.assert_allclose(image_norm(x, 2), [math.sqrt(26), math.sqrt(72)], rtol=1e-6)
    # a batch of one is one image: image 0 alone has norms sqrt 5, sqrt 13, 4, 1
    np.testing.assert_allclose(total_variation_l2(x[:1], 1), [math.sqrt(5) + math.sqrt(13) + 5], rtol=1e-6)


def test_the_prior_is_the_weighted_sum_per_batch_and_off_when_every_weight_is_zero():
    assert make_prior(optimize_settings()) is None
    prior = make_prior(optimize_settings(tv_l2=0.5, tv_l1=0.2, l2=0.1))
    first = 0.5 * TV_L2 + 0.2 * TV_L1 + 0.1 * math.sqrt(26)
    second = 0.1 * math.sqrt(72)
    np.testing.assert_allclose(prior(tf.constant(IMAGES)), [first, first, second, second], rtol=1e-6)


def test_the_prior_gradient_matches_finite_differences():
    values = np.random.default_rng(0).random((4, 4, 4, 1))
    prior = make_prior(optimize_settings(tv_l2=0.5, tv_l1=0.3, l2=0.2))
    variable = tf.Variable(values, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(prior(variable))
    expected = numeric_gradient(lambda v: float(tf.reduce_sum(prior(tf.constant(v)))), values, h=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, variable).numpy(), expected, rtol=1e-4, atol=1e-6)


def deepinversion_priors(x: tf.Tensor) -> tf.Tensor:
    """DeepInversion's get_image_prior_losses on a batch, written as its code (NCHW slices,
    torch.norm of the whole tensor): (loss_var_l1, loss_var_l2, the batch's norm)."""
    x = tf.transpose(x, [0, 3, 1, 2])
    diffs = [x[:, :, :, :-1] - x[:, :, :, 1:], x[:, :, :-1, :] - x[:, :, 1:, :],
             x[:, :, 1:, :-1] - x[:, :, :-1, 1:], x[:, :, :-1, :-1] - x[:, :, 1:, 1:]]
    var_l2 = tf.add_n([tf.sqrt(tf.reduce_sum(tf.square(d))) for d in diffs])
    var_l1 = tf.add_n([tf.reduce_mean(tf.abs(d)) for d in diffs])
    return var_l1, var_l2, tf.sqrt(tf.reduce_sum(tf.square(x)))


def test_the_optimised_gradient_per_image_is_deepinversions_at_its_weights():
    """The optimiser minimises the sum over inputs / batch_size; each image's gradient
    equals that of DeepInversion's w_l1 loss_var_l1 + w_tv loss_var_l2 + w_l2 ||x_batch||
    over its batch, sqrt(B) times the per-input norms' (w / B) sum_i ||d_i||."""
    size, weights = 16, {"tv_l1": 1e-3, "tv_l2": 2.5e-5, "l2": 3e-5}
    x = tf.constant(np.random.default_rng(3).random((2 * size, 8, 8, 3)))  # two batches
    optimizer = InputOptimizer(lambda v, targets: tf.zeros(tf.shape(v)[:1], v.dtype), lr=0.1, batch_size=size,
                               clip=False, prior=make_prior(optimize_settings(batch_size=size, **weights)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(optimizer.per_example_loss(x, [])) / size
    ours = tape.gradient(loss, x).numpy()
    with tf.GradientTape() as tape:
        tape.watch(x)
        reference = 0.0
        for batch in (x[:size], x[size:]):
            var_l1, var_l2, norm = deepinversion_priors(batch)
            reference += weights["tv_l1"] * var_l1 + weights["tv_l2"] * var_l2 + weights["l2"] * norm
    theirs = tape.gradient(reference, x).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12)
    # the per-input norms would give each image a gradient about sqrt(B) = 4 times weaker
    with tf.GradientTape() as tape:
        tape.watch(x)
        per_input = tf.add_n([weights["tv_l2"] * total_variation_l2(x, 1), weights["l2"] * image_norm(x, 1)])
        per_input = tf.reduce_sum(per_input + weights["tv_l1"] * total_variation_l1(x, 1)) / size
    old = tape.gradient(per_input, x).numpy()
    assert not np.allclose(old, theirs, rtol=1e-2)


def test_the_view_rolls_every_input_alike_anew_at_each_step():
    x = tf.constant(np.random.default_rng(1).random((3, 6, 6, 1)).astype("float32"))
    view = make_view(optimize_settings(roll=2), seed=0)
    assert make_view(optimize_settings(), seed=0) is None
    shifts = set()
    for step in range(12):
        out = view(x, tf.constant(step)).numpy()
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(out, np.roll(x.numpy(), (dy, dx), axis=(1, 2)))]
        assert len(found) == 1  # one circular shift within +-2, the same for the three inputs
        shifts.add(found[0])
        np.testing.assert_array_equal(out, view(x, tf.constant(step)).numpy())  # a function of (seed, step)
    assert len(shifts) > 3
    flips = [np.array_equal(make_view(optimize_settings(flip=True), 0)(x, tf.constant(s)).numpy(),
                            x.numpy()[:, :, ::-1]) for s in range(20)]
    assert 3 < sum(flips) < 17


def tiny_bn_teacher() -> keras.Model:
    """Input (2) -> BatchNorm with stored mean (0, 1), variance (1, 4) -> Dense 3 logits."""
    inputs = keras.Input((2,))
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(bn(inputs)))
    bn.moving_mean.assign([0.0, 1.0])
    bn.moving_variance.assign([1.0, 4.0])
    return model


def test_batchnorm_statistics_by_hand():
    """Batch [[1, 1], [3, 5]]: mean (2, 3), biased variance (1, 4): ||(2, 2)|| + 0 = 2 sqrt 2.
    Batch [[0, 1], [0, 1]]: mean (0, 1), variance (0, 0): 0 + ||(-1, -4)|| = sqrt 17."""
    objective = BatchNormObjective(optimize_settings(), seed=0, teacher=tiny_bn_teacher())
    x = tf.constant([[1.0, 1.0], [3.0, 5.0], [0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(objective.batch_statistics_loss([x]), [2 * math.sqrt(2), math.sqrt(17)], rtol=1e-6)
    logits = objective.tap(x)[-1]
    labels = tf.constant([0, 1, 2, 0])
    cross = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits).numpy()
    expected = cross + np.repeat([2 * math.sqrt(2), math.sqrt(17)], 2)
    np.testing.assert_allclose(objective.loss(x, [labels]), expected, rtol=1e-5)


def test_batchnorm_gradient_matches_finite_differences():
    objective = BatchNormObjective(optimize_settings(), seed=0, teacher=tiny_bn_teacher())
    values = np.random.default_rng(2).normal(size=(4, 2)).astype(np.float32)
    labels = tf.constant([0, 1, 2, 1])
    variable = tf.Variable(values)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(objective.loss(variable, [labels]))
    expected = numeric_gradient(lambda v: float(tf.reduce_sum(objective.loss(tf.constant(v, tf.float32), [labels]))),
                                values.astype(np.float64), h=1e-2)
    np.testing.assert_allclose(tape.gradient(loss, variable).numpy(), expected, rtol=2e-2, atol=2e-3)


def test_priors_smooth_the_reconstruction_and_enter_the_key_only_when_used(make_cfg):
    plain = make_cfg("procedure=optimize_dataset", "model=lenet", *FAST)
    smooth = make_cfg("procedure=optimize_dataset", "model=lenet", "optimize.tv_l2=0.05", "optimize.roll=1", *FAST)
    assert "priors" not in optimize_dataset.artifact(plain).key["optimize"]
    assert optimize_dataset.artifact(smooth).key["optimize"]["priors"]["tv_l2"] == 0.05
    variation = []
    for cfg in (plain, smooth):
        optimize_dataset.run(cfg)
        x = np.load(optimize_dataset.artifact(cfg).file("data.npz"))["x"]
        variation.append(float(np.mean(total_variation_l2(tf.constant(x), 1))))
    assert variation[1] < 0.7 * variation[0]


def test_batchnorm_objective_needs_batchnorm_layers(make_cfg):
    with pytest.raises(ArtifactError, match="no BatchNormalization layers: optimize.objective=batchnorm"):
        optimize_dataset.run(make_cfg("procedure=optimize_dataset", "model=lenet", "optimize.objective=batchnorm",
                                      *FAST))
