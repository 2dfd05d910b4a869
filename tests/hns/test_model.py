"""src/hns/model.py: the joint model's training step, slope, kept weights, logit penalty
and mask-only evaluation; weight transfer by layer name; the joint model built from
pretrained parts."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.hns import build_hider, build_seeker
from src.errors import ArtifactError
from src.hns import masks
from src.hns.alpha import AlphaController
from src.hns.model import HideAndSeek, transfer_by_name


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


def test_build_joint_model_loads_pretrained_parts_and_freezes_the_judge(tmp_path):
    from omegaconf import OmegaConf

    from src.hns.model import build_joint_model
    from src.schema.hns import HnsConfig
    h = OmegaConf.structured(HnsConfig(alpha=0.5))
    tf.keras.utils.set_random_seed(1)
    build_hider("hider_small", (8, 8, 1)).save(tmp_path / "hider.keras")
    build_seeker("seeker_small", (8, 8, 1), 3).save(tmp_path / "judge.keras")
    fresh = build_joint_model(h, (8, 8, 1), 3, 5, seed=0)
    assert fresh.seeker.trainable and fresh.controller.alpha.numpy() == pytest.approx(0.5)
    for a, b in zip(fresh.joint_weights, build_joint_model(h, (8, 8, 1), 3, 5, seed=0).joint_weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # seeded: the same fresh parts every time
    joint = build_joint_model(h, (8, 8, 1), 3, 5, seed=0, hider_from=tmp_path / "hider.keras",
                              judge_from=tmp_path / "judge.keras")
    for part, file in ((joint.hider, "hider.keras"), (joint.seeker, "judge.keras")):
        for ours, theirs in zip(part.get_weights(), tf.keras.models.load_model(tmp_path / file).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert not joint.seeker.trainable and joint.hider.trainable
    assert len(joint.trainable_variables) == len(joint.hider.trainable_variables)  # only the hider learns
