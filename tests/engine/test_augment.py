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
