"""Hide-and-Seek building blocks against hand derivations: the binary layers' gradient
estimators, the slope schedule, the objective, the adaptive alpha controller, the
figures of merit and weight transfer by layer name."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from models.hns import build_hider, build_seeker
from src.hns import masks
from src.errors import ArtifactError
from src.hns.alpha import AlphaController, alpha_levels
from src.hns.losses import joint_objective
from src.hns.scores import figures_of_merit
from src.hns.model import HideAndSeek, transfer_by_name

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


def _joint(estimator, alpha=0.5, **kw):
    tf.keras.utils.set_random_seed(0)
    hider = build_hider("hider_small", (8, 8, 1))
    seeker = build_seeker("seeker_small", (8, 8, 1), 3)
    return HideAndSeek(hider, seeker, AlphaController(alpha, **kw.pop("ctl", {})), estimator=estimator, **kw)


def test_reinforce_trains_the_hider_through_the_joint_loss():
    model = _joint("reinforce")
    rng = np.random.default_rng(1)
    batch = {"x": tf.constant(rng.random((16, 8, 8, 1), np.float32)), "y": tf.constant(rng.integers(0, 3, 16))}
    with tf.GradientTape() as tape:
        out = model.loss_fn(batch, True)
    grads = tape.gradient(out["loss"], model.hider.trainable_variables + model.seeker.trainable_variables)
    hider_norm = tf.linalg.global_norm(grads[:len(model.hider.trainable_variables)]).numpy()
    assert all(g is not None for g in grads) and hider_norm > 1e-4


def test_slope_grows_by_rate_per_epoch_and_evaluation_does_not_advance_it():
    from src.fit import Fitter
    from src.optim import make_optimizer
    steps = 5
    factor = masks.slope_factor(0.5, steps)
    assert factor ** steps == pytest.approx(1.5)
    model = _joint("sa", slope_factor=factor, slope_max=1000.0)
    fitter = Fitter(model, model.loss_fn, make_optimizer("adam", 1e-3))
    rng = np.random.default_rng(2)
    data = {"x": rng.random((40, 8, 8, 1), np.float32), "y": rng.integers(0, 3, 40)}
    fitter.fit(data, epochs=2, batch_size=8, seed=0, verbose=0)  # 5 steps per epoch
    assert model.slope.numpy() == pytest.approx(1.5 ** 2, rel=1e-5)
    fitter.evaluate(data)
    model.loss_fn({k: v[:8] for k, v in data.items()}, False)
    assert model.slope.numpy() == pytest.approx(1.5 ** 2, rel=1e-5)
    capped = tf.Variable(900.0)
    masks.advance_slope(capped, 2.0, 1000.0)
    assert capped.numpy() == 1000.0


def test_objective_golden_values():
    labels = tf.constant([0, 1])
    logits = tf.constant([[2.0, 0.0], [0.0, 0.0]])
    mask = tf.constant(np.array([[1, 0, 0, 0], [1, 1, 1, 0]], np.float32).reshape(2, 2, 2, 1))
    out = joint_objective(labels, logits, mask, 0.7)
    np.testing.assert_allclose(out["per_example"].numpy(), [0.16384959, 0.71020297], rtol=1e-6)
    assert out["loss"].numpy() == pytest.approx(0.43702628, rel=1e-6)
    assert out["classification"].numpy() == pytest.approx((0.12692801 + 0.69314718) / 2, rel=1e-6)
    assert out["kept"].numpy() == pytest.approx(0.5)


def test_adaptive_alpha_lowers_after_patience_steps_without_improvement_and_stops_at_minimum():
    ctl = AlphaController(None, step=0.25, minimum=0.5, patience=3, smoothing=0.0)
    assert ctl.levels == [1.0, 0.75, 0.5]
    seen = []
    for value in [5, 4, 3, 3, 3, 3, 2, 2.5, 2.5, 2.5, 1, 1, 1, 1, 1, 1, 1]:
        lowered = bool(ctl.update(tf.constant(value, tf.float32)).numpy())
        seen.append((round(float(ctl.alpha.numpy()), 4), lowered))
    alphas = [a for a, _ in seen]
    assert alphas == [1.0] * 5 + [0.75] * 4 + [0.5] * 8
    assert [i for i, (_, low) in enumerate(seen) if low] == [5, 9]  # 3 non-improving steps each time
    margin = AlphaController(None, step=0.5, minimum=0.0, patience=2, smoothing=0.0, min_delta=0.1)
    drops = [bool(margin.update(tf.constant(v))) for v in (1.0, 0.95, 0.92, 0.5)]
    assert drops == [False, False, True, False]  # falls smaller than min_delta are no improvement
    assert alpha_levels(0.05, 0.05)[-1] == 0.05 and len(alpha_levels(0.05, 0.05)) == 20


def test_alpha_is_a_variable_read_by_the_compiled_step():
    ctl = AlphaController(None, step=0.5, minimum=0.0, patience=1, smoothing=0.0)
    step = tf.function(lambda v: (ctl.alpha.read_value(), ctl.update(v)))
    assert float(step(tf.constant(1.0))[0]) == 1.0
    step(tf.constant(2.0))  # no improvement: lowered inside the graph
    assert float(step(tf.constant(3.0))[0]) == 0.5
    constant = AlphaController(0.7)
    for v in (3.0, 3.0, 3.0):
        assert not bool(constant.update(tf.constant(v)))
    assert constant.alpha.numpy() == pytest.approx(0.7)


def test_weights_are_kept_at_every_alpha():
    model = _joint("st1", alpha=None, ctl={"step": 0.5, "minimum": 0.0, "patience": 1, "smoothing": 0.0})
    rng = np.random.default_rng(3)
    batch = {"x": tf.constant(rng.random((4, 8, 8, 1), np.float32)), "y": tf.constant([0, 1, 2, 0])}
    before = [w.numpy().copy() for w in model.joint_weights]
    model.controller.best.assign(-1.0)  # nothing will count as an improvement: lower at once
    model.loss_fn(batch, True)
    kept = model.kept_alphas()
    assert [alpha for alpha, _ in kept] == [1.0]
    for saved, original in zip(kept[0][1], before):
        np.testing.assert_array_equal(saved, original)


def test_figures_of_merit_and_collapse():
    out = figures_of_merit(0.9, 0.95, 0.98)
    assert out["fidelity"] == pytest.approx(0.9 / 0.98)
    assert out["fii"] == pytest.approx(0.9 / 0.98 * 0.95)
    assert out["fir"] == pytest.approx((0.9 / 0.98) / (0.9 / 0.98 + 0.95))
    assert not out["collapsed"]
    assert figures_of_merit(0.97, 0.05, 0.98)["collapsed"]          # hides almost nothing
    assert figures_of_merit(0.25, 0.99, 0.98)["collapsed"]          # hides all, accuracy < 0.3 x baseline
    assert not figures_of_merit(0.90, 0.99, 0.98)["collapsed"]
    assert figures_of_merit(0.5, 0.5, None)["fidelity"] is None


def test_transfer_by_layer_name():
    tf.keras.utils.set_random_seed(0)
    source = build_hider("hider_small", (8, 8, 1))
    tf.keras.utils.set_random_seed(1)
    target = build_hider("hider_small", (8, 8, 1))
    assert transfer_by_name(source, target, "hider") == 7
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_transfer_names_the_layers_that_do_not_match():
    rgb = build_hider("hider_small", (8, 8, 3), mask_channels=3)
    with pytest.raises(ArtifactError, match=r"layer hider_logits has weights .*\(1, 1, 4, 3\).*\(1, 1, 4, 1\)"):
        transfer_by_name(rgb, build_hider("hider_small", (8, 8, 3), mask_channels=1), "hider")
    with pytest.raises(ArtifactError, match=r"only in the pretrained seeker: seeker_conv4, seeker_conv5"):
        transfer_by_name(build_seeker("seeker_large", (32, 32, 1), 3), build_seeker("seeker_small", (32, 32, 1), 3),
                         "seeker")


def test_unknown_model_names_list_the_known_ones():
    from models.errors import ModelError
    with pytest.raises(ModelError, match="hider_small, hider_large"):
        build_hider("hider_tiny", (8, 8, 1))
    with pytest.raises(ModelError, match="seeker_small, seeker_large, seeker_resnet"):
        build_seeker("resnet", (8, 8, 1), 3)
    with pytest.raises(ModelError, match="at least 32x32"):
        build_seeker("seeker_resnet", (28, 28, 1), 10)
    assert not math.isnan(build_seeker("seeker_resnet", (32, 32, 3), 10).count_params())


def test_logit_penalty_adds_beta_mean_square_of_the_hider_logits():
    # loss(beta) - loss(0) = beta * mean(a^2), and its gradient with respect to the logits
    # is 2 beta a / n: largest where the sigmoid is most saturated
    rng = np.random.default_rng(3)
    batch = {"x": tf.constant(rng.random((4, 8, 8, 1), np.float32)), "y": tf.constant(rng.integers(0, 3, 4))}
    plain, penalised = _joint(None), _joint(None, logit_penalty=1000.0)  # large: an untrained hider's a is ~0.01
    a = plain.hider(batch["x"])
    out0, out1 = plain.loss_fn(batch, False), penalised.loss_fn(batch, False)
    expected = 1000.0 * float(np.mean(np.square(a.numpy().astype(np.float64))))
    assert float(out1["loss"] - out0["loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(out1["logit_rms"]) == pytest.approx(np.sqrt(np.mean(np.square(a.numpy()))), rel=1e-5)
    logits = tf.Variable([[-300.0, 2.0]])
    with tf.GradientTape() as tape:
        term = 0.01 * tf.reduce_mean(tf.square(logits))
    np.testing.assert_allclose(tape.gradient(term, logits).numpy(), [[-3.0, 0.02]], rtol=1e-6)


def test_mask_only_shows_the_seeker_the_mask_filled_with_a_constant():
    model = _joint(None)
    rng = np.random.default_rng(4)
    x = rng.random((16, 8, 8, 1), np.float32)
    y = rng.integers(0, 3, 16)
    mask = (model.hider(x).numpy() > 0).astype(np.float32)
    expected = np.mean(np.argmax(model.seeker(0.3 * mask).numpy(), -1) == y)
    out = model.mask_only_fn({"x": tf.constant(x), "y": tf.constant(y)}, 0.3)
    assert float(out["accuracy"]) == pytest.approx(expected)


def test_restore_alpha_loads_the_weights_kept_at_that_alpha():
    model = _joint(None, alpha=None, ctl={"patience": 1, "smoothing": 0.0})
    rng = np.random.default_rng(5)
    batch = {"x": tf.constant(rng.random((8, 8, 8, 1), np.float32)), "y": tf.constant(rng.integers(0, 3, 8))}
    model.loss_fn(batch, True)
    model.loss_fn(batch, True)  # no improvement for one step: alpha 1.00 is left, its weights kept
    kept = dict(model.kept_alphas())
    assert 1.0 in kept
    for w in model.joint_weights:
        w.assign(tf.zeros_like(w))
    model.restore_alpha(1.0)
    for w, k in zip(model.joint_weights, kept[1.0]):
        np.testing.assert_array_equal(w.numpy(), k)
    with pytest.raises(ValueError, match="no weights were kept for alpha 0.5"):
        model.restore_alpha(0.5)
