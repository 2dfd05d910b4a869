"""augment=: per-example shifts, crops and flips and mixup inside the train step;
distillation then runs the teacher live on the same augmented batch."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import stored_accuracy

from src.augment import make_augment
from src.losses import cross_entropy


def augmented(kind: str, x) -> np.ndarray:
    """The images of a batch of x after augment=kind (seed 0)."""
    return make_augment(kind, 0)({"x": tf.constant(x)})["x"].numpy()


def test_none_is_no_augmentation():
    assert make_augment("none", 0) is None


def test_flip_mirrors_some_examples_and_keeps_the_rest():
    x = tf.constant(np.arange(64 * 4 * 4, dtype="float32").reshape(64, 4, 4, 1))
    out = augmented("flip", x)
    flipped = [np.array_equal(o, x[i].numpy()[:, ::-1]) for i, o in enumerate(out)]
    kept = [np.array_equal(o, x[i].numpy()) for i, o in enumerate(out)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54  # about half, per example


def test_shift_moves_content_per_example_with_zero_fill():
    x = np.zeros((32, 20, 20, 1), "float32")
    x[:, 8:12, 8:12] = 1.0  # a bright square in the middle
    out = augmented("shift", x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1.0 + 1e-6
    centres = {tuple(np.round(np.argwhere(o[..., 0] > 0.5).mean(axis=0))) for o in out}
    assert len(centres) > 3  # different shifts for different examples
    assert all(abs(c[0] - 9.5) <= 2.5 and abs(c[1] - 9.5) <= 2.5 for c in centres)  # at most 10% of 20 px


@pytest.mark.parametrize("kind", ["shift_flip", "shift_mixup"])
def test_train_and_distill_with_augmentation(make_cfg, caplog, kind):
    from procedures import distill, train
    cfg = make_cfg("procedure=distill", f"augment={kind}")
    with caplog.at_level("INFO"):
        metrics = distill.run(cfg)
    assert metrics["test_accuracy"] == pytest.approx(stored_accuracy(cfg, distill.artifact(cfg).dir))
    assert f"computed per step (augment={kind})" in caplog.text
    assert distill.artifact(cfg).dir != distill.artifact(make_cfg("procedure=distill")).dir
    plain = train.artifact(make_cfg("procedure=train"))
    assert train.artifact(make_cfg("procedure=train", "augment=shift")).dir != plain.dir


def test_unknown_augment_is_rejected(make_cfg):
    from src.errors import ConfigError
    from src.schema import validate
    with pytest.raises(ConfigError, match="augment='rotate' is not one of none, shift, flip, shift_flip, crop, crop_flip, mixup"):
        validate(make_cfg("augment=rotate"))


def _translated(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """image moved down by dy and right by dx pixels, zeros where nothing moved in."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_crop_is_a_per_example_translation_by_up_to_four_pixels_with_zero_fill():
    """Pad 4 zeros, cut the original size: each example is its image moved by (dy, dx) in -4..4."""
    rng = np.random.default_rng(0)
    x = rng.random((32, 10, 10, 3)).astype("float32") + 0.5  # no zeros of its own
    out = augmented("crop", x)
    moves = []
    for image, cropped in zip(x, out):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if np.array_equal(cropped, _translated(image, dy, dx))]
        assert len(found) == 1
        moves.append(found[0])
    assert len(set(moves)) > 8  # drawn per example, not once per batch


def test_crop_flip_flips_some_crops():
    x = tf.constant(np.random.default_rng(1).random((64, 8, 8, 1)).astype("float32") + 0.5)
    out = augmented("crop_flip", x)
    assert out.shape == x.shape and not np.array_equal(out, x.numpy())


def test_mixup_blends_each_image_with_a_partner_and_keeps_the_larger_share_as_its_label():
    """Image i is all i: a blend w * i + (1 - w) * j names the partner j exactly."""
    x = np.broadcast_to(np.arange(16, dtype="float32")[:, None, None, None], (16, 3, 3, 1)).copy()
    out = make_augment("mixup", 0)({"x": tf.constant(x), "y": tf.constant(np.arange(16))})
    weight, images, partners = out["mix_weight"].numpy(), out["x"].numpy(), out["y_mix"].numpy()
    assert weight.shape == (16,) and np.all((weight >= 0.5) & (weight <= 1.0))
    assert len(np.unique(weight)) == 16  # drawn per example
    expected = weight * np.arange(16) + (1 - weight) * partners
    np.testing.assert_allclose(images[:, 0, 0, 0], expected, rtol=1e-5)
    assert np.all(images == images[:, :1, :1])  # the whole image is the same blend
    assert sorted(partners) == list(range(16))  # a permutation of the batch
    np.testing.assert_array_equal(out["y"].numpy(), np.arange(16))


def _mixup_of_four(per: str) -> dict:
    """Two calls of seed 0's mixup on images 0, 1, 2, 3 (image i is all i, label i): two
    outputs, so that the golden values below also pin how the stream moves between calls."""
    x = np.broadcast_to(np.arange(4, dtype="float32")[:, None, None, None], (4, 2, 2, 1)).copy()
    mixup = make_augment("mixup", 0, mixup_per=per)
    batch = {"x": tf.constant(x), "y": tf.constant(np.arange(4))}
    return [{k: v.numpy() for k, v in mixup(batch).items()} for _ in range(2)]


def test_mixup_per_example_draws_are_unchanged():
    """Golden values of the per-example draw (the default), as before mixup_per existed."""
    first, second = _mixup_of_four("example")
    np.testing.assert_allclose(first["mix_weight"], [0.64258516, 0.92270267, 0.8568307, 0.683929], rtol=1e-6)
    np.testing.assert_array_equal(first["y_mix"], [2, 0, 3, 1])
    np.testing.assert_allclose(first["x"][:, 0, 0, 0], [0.7148297, 0.92270267, 2.1431694, 2.3678582], rtol=1e-6)
    np.testing.assert_allclose(second["mix_weight"], [0.83312565, 0.5917064, 0.9527522, 0.8218054], rtol=1e-6)
    np.testing.assert_array_equal(second["y_mix"], [1, 3, 2, 0])


def test_mixup_per_batch_shares_one_weight_and_blends_each_image_with_the_one_before():
    """One weight per batch (folded to >= 0.5), partner i - 1 (the roll by one): image i
    becomes w i + (1 - w)(i - 1), and image 0 blends with image 3."""
    first, second = _mixup_of_four("batch")
    for out, w in ((first, 0.64258516), (second, 0.5536137)):
        np.testing.assert_allclose(out["mix_weight"], [w] * 4, rtol=1e-6)
        np.testing.assert_array_equal(out["y_mix"], [3, 0, 1, 2])
        np.testing.assert_allclose(out["x"][:, 0, 0, 0], w * np.arange(4) + (1 - w) * np.array([3, 0, 1, 2]),
                                   rtol=1e-6)
        np.testing.assert_array_equal(out["y"], np.arange(4))


def test_mixup_per_enters_the_key_only_per_batch(make_cfg):
    """Per example keeps the keys runs had before the setting existed."""
    from procedures import train
    mixed = train.artifact(make_cfg("procedure=train", "augment=mixup"))
    assert train.artifact(make_cfg("procedure=train", "augment=mixup", "mixup_per=example")).dir == mixed.dir
    assert train.artifact(make_cfg("procedure=train", "augment=mixup", "mixup_per=batch")).dir != mixed.dir
    assert train.artifact(make_cfg("procedure=train", "augment=shift", "mixup_per=batch")).dir == \
        train.artifact(make_cfg("procedure=train", "augment=shift")).dir


def test_unknown_mixup_per_is_rejected(make_cfg):
    from src.errors import ConfigError
    from src.schema import validate
    with pytest.raises(ConfigError, match="mixup_per='image' is not one of example, batch"):
        validate(make_cfg("augment=mixup", "mixup_per=image"))


def test_mixup_after_a_flip_and_without_labels():
    x = np.random.default_rng(0).random((8, 4, 4, 1)).astype("float32")
    out = make_augment("flip_mixup", 0)({"x": tf.constant(x)})
    assert set(out) == {"x"} and out["x"].shape == x.shape


def test_mixed_cross_entropy_by_hand():
    """Logits (0, ln 3) give p = (1/4, 3/4): CE(0) = ln 4, CE(1) = ln 4/3. Three examples
    with own/partner labels (0, 1), (1, 1), (1, 0) and weights 0.75, 0.5, 1."""
    logits = tf.constant([[0.0, np.log(3.0)]] * 3)
    labels, partners, weights = tf.constant([0, 1, 1]), tf.constant([1, 1, 0]), tf.constant([0.75, 0.5, 1.0])
    ln4, ln43 = np.log(4.0), np.log(4.0 / 3.0)
    expected = np.mean([0.75 * ln4 + 0.25 * ln43, ln43, ln43])
    assert float(cross_entropy(labels, logits, (partners, weights))) == pytest.approx(expected, rel=1e-6)
    assert float(cross_entropy(labels, logits)) == pytest.approx(np.mean([ln4, ln43, ln43]), rel=1e-6)


def test_mixed_cross_entropy_gradient_is_the_blend_of_the_two_targets():
    """d CE / d logits = softmax - (w onehot(y) + (1 - w) onehot(partner)), over the batch size."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(4, 5)).astype("float32")
    labels, partners = np.array([0, 2, 4, 1]), np.array([3, 2, 0, 1])
    weights = np.array([0.5, 0.9, 0.6, 1.0], "float32")
    logits = tf.Variable(values)
    with tf.GradientTape() as tape:
        loss = cross_entropy(tf.constant(labels), logits, (tf.constant(partners), tf.constant(weights)))
    probs = np.exp(values) / np.exp(values).sum(axis=1, keepdims=True)
    target = weights[:, None] * np.eye(5)[labels] + (1 - weights[:, None]) * np.eye(5)[partners]
    np.testing.assert_allclose(tape.gradient(loss, logits).numpy(), (probs - target) / 4, rtol=1e-5, atol=1e-7)


def test_mixup_alpha_enters_the_key_with_mixup_only(make_cfg):
    from procedures import train
    mixed = train.artifact(make_cfg("procedure=train", "augment=mixup"))
    assert train.artifact(make_cfg("procedure=train", "augment=mixup", "mixup_alpha=0.2")).dir != mixed.dir
    assert train.artifact(make_cfg("procedure=train", "augment=shift", "mixup_alpha=0.2")).dir == \
        train.artifact(make_cfg("procedure=train", "augment=shift")).dir  # alpha matters with mixup only


def test_mixup_alpha_must_be_positive(make_cfg):
    from src.errors import ConfigError
    from src.schema import validate
    with pytest.raises(ConfigError, match="mixup_alpha=0.0: the Beta distribution's parameter must be > 0"):
        validate(make_cfg("augment=mixup", "mixup_alpha=0"))


def test_teacher_augment_keeps_one_teacher_for_students_with_and_without_mixup(make_cfg):
    from procedures._upstream import model_identity
    plain = model_identity(make_cfg("procedure=distill"), None)
    assert model_identity(make_cfg("procedure=distill", "augment=mixup", "teacher.augment=none"), None) == plain
    assert model_identity(make_cfg("procedure=distill", "augment=mixup"), None) != plain


def test_unknown_teacher_augment_is_rejected(make_cfg):
    from src.errors import ConfigError
    from src.schema import validate
    with pytest.raises(ConfigError, match="teacher.augment='mix' is not one of none"):
        validate(make_cfg("procedure=distill", "teacher.augment=mix"))
