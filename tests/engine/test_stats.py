"""The interval over seeds against hand computations of Student's t (on the logit scale for a
proportion), the bounds read from a metric's name, and Dixon's Q for a seed that stands apart."""
from __future__ import annotations

import math

import pytest

from src.stats import (DIFFERENCE, PROPORTION, RATIO, bounds_of, excludes_zero, has_outlier, metric_interval,
                       seed_interval)

# Student's t quantiles in closed form: with one degree of freedom t_p = tan(pi (p - 1/2)),
# with two t_p = (2p - 1) / sqrt(2 p (1 - p)).
T_1 = math.tan(0.475 * math.pi)                         # 12.7062
T_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)              # 4.3027
T_4 = 2.776445                                          # four degrees of freedom, from the table


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


def test_bounds_are_read_from_the_name():
    assert bounds_of("test_accuracy") == bounds_of("teacher_agreement") == bounds_of("interpretability") == PROPORTION
    assert bounds_of("fir") == bounds_of("swap_mask_class") == bounds_of("train_hidden") == PROPORTION
    assert bounds_of("kd_gain") == bounds_of("val_distill_gain") == DIFFERENCE
    assert bounds_of("fidelity") == bounds_of("evalx_fii") == bounds_of("fraction_of_teacher") == RATIO
    assert bounds_of("gap_recovered") is None and bounds_of("epochs") is None


def _logistic(y):
    return 1 / (1 + math.exp(-y))


def test_a_proportion_with_a_collapsed_seed_stays_inside_0_1():
    """Four seeds at 0.92 and one at 0.01: the plain t interval, 0.738 +- 0.505, runs above 1.
    On the logit scale: logit 0.92 = ln 11.5, logit 0.01 = -ln 99; their t interval, mapped back."""
    values = [0.92, 0.92, 0.92, 0.92, 0.01]
    y = [math.log(11.5)] * 4 + [-math.log(99)]
    y_mean = sum(y) / 5
    y_half = T_4 * math.sqrt(sum((v - y_mean) ** 2 for v in y) / 4) / math.sqrt(5)
    out = metric_interval("test_accuracy", values)
    assert out["mean"] == pytest.approx(0.738) and seed_interval(values)["high"] > 1  # the arithmetic mean is kept
    assert out["low"] == pytest.approx(_logistic(y_mean - y_half)) == pytest.approx(0.053506, abs=1e-6)
    assert out["high"] == pytest.approx(_logistic(y_mean + y_half)) == pytest.approx(0.992915, abs=1e-6)


def test_a_seed_at_exactly_0_has_no_logit_and_the_t_interval_is_clipped():
    """I = 0.97, 0.98, 0.96, 0.97, 0: mean 0.776, std 0.433855, t interval [0.2373, 1.3147]."""
    out = metric_interval("interpretability", [0.97, 0.98, 0.96, 0.97, 0.0])
    std = math.sqrt((0.194 ** 2 * 2 + 0.204 ** 2 + 0.184 ** 2 + 0.776 ** 2) / 4)
    assert out["std"] == pytest.approx(std) and out["low"] == pytest.approx(0.776 - T_4 * std / math.sqrt(5))
    assert out["high"] == 1.0


def test_a_paired_gain_keeps_its_t_interval_and_is_clipped_to_plus_minus_1():
    gain = metric_interval("kd_gain", [0.01, 0.02, 0.03])
    assert gain == seed_interval([0.01, 0.02, 0.03])  # inside the bounds: Student's t unchanged
    assert gain["low"] == pytest.approx(0.02 - T_2 * 0.01 / math.sqrt(3))
    wide = metric_interval("kd_gain", [-0.5, 0.9, 0.95])  # t: 0.45 +- 2.04
    assert (wide["low"], wide["high"]) == (-1.0, 1.0)


def test_a_ratio_may_exceed_1_but_not_fall_below_0():
    above = metric_interval("fraction_of_teacher", [1.01, 1.02, 1.03])
    assert above["high"] == pytest.approx(1.02 + T_2 * 0.01 / math.sqrt(3))  # a student better than its teacher
    assert metric_interval("fii", [0.8, 0.6])["low"] == 0.0  # t: 0.7 - 12.7062 x 0.1


def test_dixon_q_sets_a_seed_apart():
    """Q = gap to the nearest seed / range, against 0.710 for five seeds."""
    assert has_outlier([0.92, 0.92, 0.92, 0.92, 0.01])            # Q = 1
    assert not has_outlier([0.90, 0.91, 0.92, 0.93, 0.95])        # Q = 0.02 / 0.05 = 0.4
    assert has_outlier([0.0, 0.75, 0.8, 0.9, 1.0])                # Q = 0.75
    assert not has_outlier([0.0, 0.70, 0.8, 0.9, 1.0])            # Q = 0.70
    assert not has_outlier([0.1, 0.9]) and not has_outlier([0.5, 0.5, 0.5])
