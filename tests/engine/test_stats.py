"""The interval over seeds against hand computations of Student's t."""
from __future__ import annotations

import math

import pytest

from src.stats import excludes_zero, seed_interval

# Student's t quantiles in closed form: with one degree of freedom t_p = tan(pi (p - 1/2)),
# with two t_p = (2p - 1) / sqrt(2 p (1 - p)).
T_1 = math.tan(0.475 * math.pi)                         # 12.7062
T_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)              # 4.3027


def test_three_seeds_by_hand():
    out = seed_interval([1.0, 2.0, 3.0])
    assert out["n"] == 3 and out["mean"] == 2.0 and out["std"] == pytest.approx(1.0)  # n - 1 in the variance
    assert out["low"] == pytest.approx(2.0 - T_2 / math.sqrt(3)) and out["high"] == pytest.approx(2.0 + T_2 / math.sqrt(3))


def test_two_seeds_and_a_narrower_confidence():
    out = seed_interval([0.5, 0.7])
    assert out["high"] - out["mean"] == pytest.approx(T_1 * out["std"] / math.sqrt(2))
    assert seed_interval([0.5, 0.7], confidence=0.5)["high"] - 0.6 == pytest.approx(out["std"] / math.sqrt(2))  # t_0.75,1 = 1


def test_one_seed_has_no_interval_and_zero_is_judged_by_the_interval():
    lone = seed_interval([0.9])
    assert lone["mean"] == 0.9 and math.isnan(lone["std"]) and excludes_zero(lone) is None
    assert excludes_zero(seed_interval([0.02, 0.021, 0.022])) is True
    assert excludes_zero(seed_interval([-0.02, -0.021, -0.022])) is True
    assert excludes_zero(seed_interval([0.01, 0.02, 0.03])) is False
