"""src/hns/encoding.py: the mask-swap test, the code-free control, the EVAL-X evaluator and
the diagnostics of a whole joint model, on hand-made cases where the answer is known."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.hns import build_seeker
from src.fit import Fitter
from src.hns.encoding import (diagnostics, evalx_scores, evaluator_loss, keep_rates, mask_swap_shares, matched_evalx,
                              random_keep, support_masks, swap_partners)
from src.hns.scores import figures_of_merit

CLASSES, SIDE = 4, 16


def test_swap_partners_are_of_another_class_and_deterministic():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    partners = swap_partners(y, seed=0)
    assert np.all(y[partners] != y)
    np.testing.assert_array_equal(partners, swap_partners(y, seed=0))
    with pytest.raises(ValueError, match="at least two classes"):
        swap_partners(np.zeros(5, int), seed=0)


def _patterns(rng) -> np.ndarray:
    """One fixed mask per class, keeping 16 of the 256 pixels, all in the border."""
    border = [(r, c) for r in range(SIDE) for c in range(SIDE) if min(r, c, SIDE - 1 - r, SIDE - 1 - c) < 3]
    masks = np.zeros((CLASSES, SIDE, SIDE, 1), np.float32)
    for k in range(CLASSES):
        for index in rng.choice(len(border), 16, replace=False):
            masks[(k, *border[index], 0)] = 1.0
    return masks


def test_the_swap_test_tells_a_code_reader_from_an_evidence_reader():
    rng = np.random.default_rng(0)
    patterns = _patterns(rng)
    y = np.repeat(np.arange(CLASSES), 5)
    x = np.broadcast_to(y[:, None, None, None].astype(np.float32), (len(y), SIDE, SIDE, 1)).copy()
    masks = patterns[y]

    def code_reader(images, seen_masks):  # reads the class from where the mask keeps pixels
        return np.argmax(np.einsum("nhwc,khwc->nk", seen_masks, patterns), -1)

    def evidence_reader(images, seen_masks):  # reads the class from the image (its value)
        return images[:, 0, 0, 0].astype(int)

    assert mask_swap_shares(code_reader, x, y, masks, seed=1) == {"swap_mask_class": 1.0, "swap_image_class": 0.0}
    assert mask_swap_shares(evidence_reader, x, y, masks, seed=1) == {"swap_mask_class": 0.0, "swap_image_class": 1.0}


def test_support_masks_keep_the_runs_counts_shuffled_on_the_object_only():
    x = np.zeros((3, 4, 4, 2), np.float32)
    x[0, :, :2, 0] = 1.0         # 8 object pixels
    x[1, 2:, :, 1] = 0.5         # 8 object pixels, in the second channel
    x[2, :, :, 0] = 1.0          # all 16
    masks = np.zeros((3, 4, 4, 1), np.float32)
    masks[0, 3, 2:] = 1.0        # 2 kept, all on the background
    masks[1, 0, :3] = 1.0        # 3 kept, on the background
    masks[2, 0, :] = 1.0         # 4 kept
    control = support_masks(x, masks, seed=0)
    assert control.shape == (3, 4, 4, 1)
    assert sorted(control.sum(axis=(1, 2, 3))) == [2, 3, 4]  # the run's counts, each object big enough
    support = np.any(x != 0, axis=-1, keepdims=True)
    assert np.all(control <= support)  # on the object only
    np.testing.assert_array_equal(control, support_masks(x, masks, seed=0))
    counts = {tuple(support_masks(x, masks, seed).sum(axis=(1, 2, 3))) for seed in range(20)}
    assert len(counts) > 1  # the counts move between images


def test_support_masks_keep_the_whole_object_when_the_count_is_bigger():
    x = np.zeros((2, 4, 4, 1), np.float32)
    x[:, 0, :2] = 1.0            # 2 object pixels each
    masks = np.ones((2, 4, 4, 1), np.float32)  # 16 kept
    np.testing.assert_array_equal(support_masks(x, masks, seed=0), (x != 0).astype(np.float32))


def test_a_count_that_codes_the_class_gives_the_control_no_code():
    """Masks whose kept-pixel count is 3 * class (class 0 keeps nothing): the count of the
    image's own mask tells its class every time; the control's count only at chance."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 1000)
    x = np.ones((len(y), 8, 8, 1), np.float32)
    masks = np.zeros_like(x).reshape(len(y), -1)
    for i, k in enumerate(y):
        masks[i, :3 * k] = 1.0
    masks = masks.reshape(x.shape)
    decode = lambda m: np.rint(m.sum(axis=(1, 2, 3)) / 3).astype(int)  # noqa: E731
    assert np.mean(decode(masks) == y) == 1.0
    assert np.mean(decode(support_masks(x, masks, seed=0)) == y) < 0.15  # chance: 0.1


def test_an_evaluator_on_a_keep_range_draws_one_rate_per_image_in_the_range():
    rates = keep_rates((0.02, 0.5), tf.constant([[[[0.0]]], [[[0.5]]], [[[1.0]]]])).numpy().ravel()
    np.testing.assert_allclose(rates, [0.02, 0.26, 0.5])
    x = tf.ones([3, 64, 64, 1])
    kept = random_keep(x, tf.random.stateless_uniform([3, 64, 64, 1], seed=[0, 1]), rates[:, None, None, None])
    np.testing.assert_allclose(tf.reduce_mean(kept, [1, 2, 3]).numpy(), rates, atol=0.02)


def test_random_keep_keeps_about_half_of_the_pixels_for_every_channel_alike():
    x = tf.ones([8, SIDE, SIDE, 3])
    kept = random_keep(x, tf.random.stateless_uniform([8, SIDE, SIDE, 1], seed=[0, 1])).numpy()
    assert 0.4 < kept.mean() < 0.6 and np.all(kept == kept[..., :1])


def _images(rng, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The class is drawn in the centre (a bright quadrant of an 8x8 square); the 3-pixel
    border is a constant 1 that says nothing about the class."""
    y = rng.integers(0, CLASSES, n)
    x = np.ones((n, SIDE, SIDE, 1), np.float32)
    x[:, 3:13, 3:13] = rng.normal(0, 0.1, (n, 10, 10, 1))
    for i, k in enumerate(y):
        r, c = 4 + 4 * (k // 2), 4 + 4 * (k % 2)
        x[i, r:r + 4, c:c + 4] += 1.0
    return x, y


def test_an_encoding_hider_scores_high_with_its_own_seeker_and_low_under_eval_x():
    """Masks that keep a class code in the uninformative border: a seeker trained on them
    reads the code (high FII); the evaluator trained on random masks cannot (low FII)."""
    rng = np.random.default_rng(0)
    patterns = _patterns(rng)
    x, y = _images(rng, 1200)
    x_test, y_test = _images(rng, 400)
    keras.utils.set_random_seed(0)
    joint = build_seeker("seeker_small", (SIDE, SIDE, 1), CLASSES)
    joint.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    joint.fit(x * patterns[y], y, epochs=8, batch_size=64, verbose=0)
    joint_accuracy = float(np.mean(np.argmax(joint.predict(x_test * patterns[y_test], verbose=0), -1) == y_test))
    evaluator = build_seeker("seeker_small", (SIDE, SIDE, 1), CLASSES)
    Fitter(evaluator, evaluator_loss(evaluator, 0), keras.optimizers.Adam(1e-3)).fit(
        {"x": x, "y": y}, epochs=8, batch_size=64, seed=0, verbose=0)
    whole = float(np.mean(np.argmax(evaluator.predict(x_test, verbose=0), -1) == y_test))
    joint_fii = figures_of_merit(joint_accuracy, 1 - 16 / SIDE ** 2, 1.0)["fii"]
    evalx = evalx_scores(evaluator, x_test, y_test, patterns[y_test], whole)
    assert whole > 0.9 and joint_fii > 0.85
    assert evalx["evalx_accuracy"] < 0.45 and evalx["evalx_fii"] < 0.45
    faithful = _evidence_masks(y_test)  # as sparse, on the class's quadrant
    matched = matched_evalx(evaluator, x_test, y_test, patterns[y_test], faithful, whole)
    assert matched["evalx_control_fidelity"] > 0.9 and matched["evalx_fidelity_vs_control"] < -0.5


def _evidence_masks(y: np.ndarray) -> np.ndarray:
    """16 pixels per image: the quadrant of _images that draws the class."""
    masks = np.zeros((len(y), SIDE, SIDE, 1), np.float32)
    for i, k in enumerate(y):
        r, c = 4 + 4 * (k // 2), 4 + 4 * (k % 2)
        masks[i, r:r + 4, c:c + 4] = 1.0
    return masks


# diagnostics() on a joint model of two fixed functions, 8x8 images of constant value
# VALUES[class]: the hider keeps row `class` (its mask encodes the class), and the seeker
# reads either the value it sees (the evidence) or which row is kept (the code).
VALUES = np.array([0.1, 0.2, 0.3, 0.9], np.float32)  # mean over the four classes: 0.375, nearest class 2


def _class_of(value: tf.Tensor) -> tf.Tensor:
    return tf.argmin(tf.abs(value[:, None] - VALUES[None, :]), axis=1)


def _row_logits(x):  # the hider: +1 on the row of the image's class, -1 elsewhere
    rows = tf.one_hot(_class_of(tf.reduce_max(x, [1, 2, 3])), 8)
    return tf.tile(rows[:, :, None, None], [1, 1, 8, 1]) * 2.0 - 1.0


def _value_reader(seen):  # the evidence: the value of any kept pixel
    return tf.one_hot(_class_of(tf.reduce_max(seen, [1, 2, 3])), CLASSES)


def _row_reader(seen):  # the code: the first four rows, by how many of their pixels are kept
    return tf.reduce_sum(tf.cast(seen[:, :CLASSES, :, 0] != 0, tf.float32), axis=2)


def _model(seeker_fn):
    from src.hns.alpha import AlphaController
    from src.hns.model import HideAndSeek

    def network(fn):
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(fn)])
    return HideAndSeek(network(_row_logits), network(seeker_fn), AlphaController(0.5))


def _split():
    y = np.repeat(np.arange(CLASSES), 5)
    return {"x": np.broadcast_to(VALUES[y][:, None, None, None], (len(y), 8, 8, 1)).copy(), "y": y}


def test_diagnostics_of_a_seeker_that_reads_the_evidence():
    """The mask alone and the code-free control are one grey (0.375): class 2, a quarter
    of the images; through any mask an image shows its own value."""
    evaluator = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Lambda(_value_reader)])
    out = diagnostics(_model(_value_reader), _split(), CLASSES, seed=0, evaluator=evaluator, whole_accuracy=0.8)
    assert out == {"mask_only_accuracy": 0.25, "chance_accuracy": 0.25, "swap_mask_class": 0.0,
                   "swap_image_class": 1.0, "support_mask_only_accuracy": 0.25, "support_swap_mask_class": 0.0,
                   "support_swap_image_class": 1.0, "evalx_accuracy": 1.0, "evalx_fidelity": 1.25,
                   "evalx_fii": pytest.approx(1.25 * 7 / 8), "evalx_whole_accuracy": 0.8,  # 8 of 64 pixels kept
                   "evalx_control_accuracy": 1.0, "evalx_control_fidelity": 1.25,  # the evidence, as sparse
                   "evalx_control_fii": pytest.approx(1.25 * 7 / 8), "evalx_fidelity_vs_control": 0.0}


def test_diagnostics_of_a_seeker_that_reads_the_code():
    """The kept row tells the class by itself: the mask alone is always right, and an image
    seen through another class's mask is always classified as the mask's class."""
    out = diagnostics(_model(_row_reader), _split(), CLASSES, seed=0)
    assert (out["mask_only_accuracy"], out["swap_mask_class"], out["swap_image_class"]) == (1.0, 1.0, 0.0)
    assert not any(key.startswith("evalx") for key in out)
    assert 0.0 <= out["support_mask_only_accuracy"] <= 1.0
