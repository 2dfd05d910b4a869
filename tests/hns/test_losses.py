"""src/hns/losses.py: the Hide-and-Seek objective against golden values."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from src.hns.losses import joint_objective


def test_objective_golden_values():
    labels = tf.constant([0, 1])
    logits = tf.constant([[2.0, 0.0], [0.0, 0.0]])
    mask = tf.constant(np.array([[1, 0, 0, 0], [1, 1, 1, 0]], np.float32).reshape(2, 2, 2, 1))
    out = joint_objective(labels, logits, mask, 0.7)
    np.testing.assert_allclose(out["per_example"].numpy(), [0.16384959, 0.71020297], rtol=1e-6)
    assert out["loss"].numpy() == pytest.approx(0.43702628, rel=1e-6)
    assert out["classification"].numpy() == pytest.approx((0.12692801 + 0.69314718) / 2, rel=1e-6)
    assert out["kept"].numpy() == pytest.approx(0.5)
