"""src/hns/alpha.py: the adaptive alpha schedule, as state of the compiled step."""
from __future__ import annotations

import pytest
import tensorflow as tf

from src.hns.alpha import AlphaController, alpha_levels


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
