"""distill.method=fitnet|at: attention maps and both losses by hand on batches of two, the
pooling of a larger map, the regressor's shapes, a gradient check, and runs through the
distill procedure (layer names checked before any training)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from procedures import distill, train
from src.artifacts import load_model
from src.errors import ConfigError
from src.history import read_rows
from src.kd.features import attention, attention_loss, hint_loss, regressor
from tests.conftest import numeric_gradient

# Two examples of 2x2 maps with 2 channels. Example 1: channel values whose squares average
# to [[1, 0], [0, 0]] per position -> map [1, 0, 0, 0] (already unit length).
# Example 2: every position's mean square is 2 -> [2, 2, 2, 2] / 4 = [1/2] * 4.
F1 = np.zeros((2, 2, 2), "float32")
F1[0, 0] = [1.0, 1.0]
F2 = np.full((2, 2, 2), math.sqrt(2.0), "float32")
FEATURES = np.stack([F1, F2])


def test_attention_by_hand():
    np.testing.assert_allclose(attention(tf.constant(FEATURES)).numpy(), [[1, 0, 0, 0], [0.5] * 4], atol=1e-6)


def test_attention_loss_by_hand_is_a_mean_over_batch_and_positions():
    """Student maps swapped between the two examples: squared differences
    [(1 - .5)^2, .25, .25, .25] in both, mean 0.25 (a sum would give 2.0)."""
    assert float(attention_loss(tf.constant(FEATURES), tf.constant(FEATURES))) == pytest.approx(0.0, abs=1e-7)
    assert float(attention_loss(tf.constant(FEATURES[::-1]), tf.constant(FEATURES))) == pytest.approx(0.25, rel=1e-5)


def test_a_larger_student_map_is_average_pooled_to_the_teachers_size():
    student = np.zeros((1, 4, 4, 1), "float32")
    student[0, :2, :2] = 1.0  # the top-left 2x2 block pools to 1, the rest to 0
    teacher = np.zeros((1, 2, 2, 3), "float32")
    teacher[0, 0, 0] = 5.0
    assert float(attention_loss(tf.constant(student), tf.constant(teacher))) == pytest.approx(0.0, abs=1e-6)


def test_attention_needs_maps():
    with pytest.raises(ConfigError, match="convolutional layers"):
        attention_loss(tf.zeros((2, 8)), tf.zeros((2, 8)))


def test_hint_loss_by_hand():
    assert float(hint_loss(tf.constant([[1.0, 2.0], [0.0, 0.0]]), tf.constant([[0.0, 0.0], [0.0, 2.0]]))) == \
        pytest.approx((1 + 4 + 0 + 4) / 4)


@pytest.mark.parametrize("student,teacher", [((8, 8, 6), (8, 8, 16)), ((16, 16, 6), (8, 8, 16)),
                                             ((4, 4, 6), (8, 8, 16)), ((84,), (120,))])
def test_the_regressor_maps_the_student_feature_to_the_teachers_shape(student, teacher):
    r = regressor(student, teacher, "r")
    assert tuple(r(tf.zeros((2, *student))).shape[1:]) == teacher


def test_the_regressor_refuses_sizes_it_cannot_map():
    with pytest.raises(ConfigError, match="cannot be regressed"):
        regressor((6, 6, 4), (4, 4, 8), "r")


def test_attention_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 3, 3, 2)), tf.constant(rng.normal(size=(2, 3, 3, 4)), tf.float32)
    variable = tf.Variable(student, dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = attention_loss(variable, teacher)
    grad = tape.gradient(value, variable).numpy()
    numeric = numeric_gradient(lambda v: float(attention_loss(tf.constant(v, tf.float32), teacher)), student)
    np.testing.assert_allclose(grad, numeric, rtol=3e-2, atol=1e-4)


PAIRS = ["model=lenet", "student=lenet_half", "distill.features.teacher_layers=[conv2_relu]",
         "distill.features.student_layers=[conv2_relu]"]


@pytest.mark.parametrize("method", ["fitnet", "at"])
def test_feature_methods_distill_and_save_the_student_alone(make_cfg, method):
    cfg = make_cfg("procedure=distill", f"distill.method={method}", *PAIRS, "distill.baseline=false",
                   "train.epochs=2", "train.early_stopping=5")  # also keeps the best weights (regressors too)
    metrics = distill.run(cfg)
    run = distill.artifact(cfg)
    assert run.is_done() and np.isfinite(metrics["test_accuracy"])
    assert all(row["feature_loss"] > 0 for row in read_rows(run.dir / "history.csv"))
    saved = load_model(run.dir, "student")
    assert saved.name == "lenet_half" and not any("regressor" in layer.name for layer in saved.layers)


def test_an_unknown_layer_lists_the_models_layers_before_any_training(make_cfg):
    cfg = make_cfg("procedure=distill", "model=lenet", "student=lenet_half", "distill.method=at",
                   "distill.features.teacher_layers=[conv9]", "distill.features.student_layers=[conv2_relu]")
    with pytest.raises(ConfigError, match="the teacher lenet has no layer conv9; its layers are: input, conv1"):
        distill.run(cfg)
    assert not train.artifact(cfg).dir.exists()  # the teacher was not trained first


def test_feature_methods_need_matching_layer_lists(make_cfg):
    from src.schema import validate
    with pytest.raises(ConfigError, match="needs layer pairs"):
        validate(make_cfg("procedure=distill", "distill.method=fitnet",
                          "distill.features.teacher_layers=[conv1_relu,conv2_relu]",
                          "distill.features.student_layers=[conv2_relu]"))


def test_maps_of_sizes_that_are_not_multiples_pool_adaptively():
    """7 -> 4 as PyTorch's adaptive pooling: windows [0, 2), [1, 4), [3, 6), [5, 7)."""
    from src.kd.features import adaptive_pool_matrix
    np.testing.assert_allclose(adaptive_pool_matrix(7, 4), [[.5, .5, 0, 0, 0, 0, 0], [0, 1 / 3, 1 / 3, 1 / 3, 0, 0, 0],
                                                            [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 0, 0, .5, .5]],
                               rtol=1e-6)
    student = np.random.default_rng(0).random((2, 7, 7, 3)).astype("float32")
    teacher = np.random.default_rng(1).random((2, 4, 4, 5)).astype("float32")
    loss = float(attention_loss(tf.constant(student), tf.constant(teacher)))  # a shape error before
    pooled = np.einsum("ih,bhwc,jw->bijc", adaptive_pool_matrix(7, 4), student, adaptive_pool_matrix(7, 4))
    expected = np.mean((attention(tf.constant(pooled)).numpy() - attention(tf.constant(teacher)).numpy()) ** 2)
    assert loss == pytest.approx(float(expected), rel=1e-5)
