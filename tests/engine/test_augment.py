"""augment=: per-example shifts and flips inside the train step; distillation then runs
the teacher live on the same augmented batch."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import stored_accuracy

from src.augment import make_augment


def test_none_is_no_augmentation():
    assert make_augment("none", 0) is None


def test_flip_mirrors_some_examples_and_keeps_the_rest():
    x = tf.constant(np.arange(64 * 4 * 4, dtype="float32").reshape(64, 4, 4, 1))
    out = make_augment("flip", 0)(x).numpy()
    flipped = [np.array_equal(o, x[i].numpy()[:, ::-1]) for i, o in enumerate(out)]
    kept = [np.array_equal(o, x[i].numpy()) for i, o in enumerate(out)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54  # about half, per example


def test_shift_moves_content_per_example_with_zero_fill():
    x = np.zeros((32, 20, 20, 1), "float32")
    x[:, 8:12, 8:12] = 1.0  # a bright square in the middle
    out = make_augment("shift", 0)(tf.constant(x)).numpy()
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1.0 + 1e-6
    centres = {tuple(np.round(np.argwhere(o[..., 0] > 0.5).mean(axis=0))) for o in out}
    assert len(centres) > 3  # different shifts for different examples
    assert all(abs(c[0] - 9.5) <= 2.5 and abs(c[1] - 9.5) <= 2.5 for c in centres)  # at most 10% of 20 px


def test_train_and_distill_with_augmentation(make_cfg, caplog):
    from procedures import distill, train
    cfg = make_cfg("procedure=distill", "augment=shift_flip")
    with caplog.at_level("INFO"):
        metrics = distill.run(cfg)
    assert metrics["test_accuracy"] == pytest.approx(stored_accuracy(cfg, distill.artifact(cfg).dir))
    assert "computed per step (augment=shift_flip)" in caplog.text
    assert distill.artifact(cfg).dir != distill.artifact(make_cfg("procedure=distill")).dir
    plain = train.artifact(make_cfg("procedure=train"))
    assert train.artifact(make_cfg("procedure=train", "augment=shift")).dir != plain.dir


def test_unknown_augment_is_rejected(make_cfg):
    from src.errors import ConfigError
    from src.schema import validate
    with pytest.raises(ConfigError, match="augment='rotate' is not one of none, shift, flip, shift_flip"):
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
    out = make_augment("crop", 0)(tf.constant(x)).numpy()
    moves = []
    for image, cropped in zip(x, out):
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if np.array_equal(cropped, _translated(image, dy, dx))]
        assert len(found) == 1
        moves.append(found[0])
    assert len(set(moves)) > 8  # drawn per example, not once per batch


def test_crop_flip_flips_some_crops():
    x = tf.constant(np.random.default_rng(1).random((64, 8, 8, 1)).astype("float32") + 0.5)
    out = make_augment("crop_flip", 0)(x).numpy()
    assert out.shape == x.shape and not np.array_equal(out, x.numpy())
