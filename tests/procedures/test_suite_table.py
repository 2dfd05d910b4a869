"""procedure=suite's table: means, intervals over seeds (Student's t, on the logit scale for
an accuracy), the paired fraction of the reference row, the extra metric columns, a seed
apart and a seed without a gap, by hand."""
from __future__ import annotations

import math

from procedures.suite import format_suite

T_1 = math.tan(0.475 * math.pi)  # Student-t, 97.5% quantile, 1 degree of freedom
T_2 = 4.302653  # Student-t, 97.5% quantile, 2 degrees of freedom


def _logistic(y):
    return 1 / (1 + math.exp(-y))


def test_three_seed_table_by_hand():
    results = [("teacher", [0.90, 0.92, 0.94]), ("student", [0.81, 0.828, 0.846])]
    extras = [{"kd_gain": [None, None, None]}, {"kd_gain": [0.01, 0.02, 0.03]}]
    table = format_suite("KD", results, "teacher", [0, 1, 2], extras)
    lines = table.splitlines()
    assert lines[0] == "KD (3 seeds: 0, 1, 2)"
    teacher = next(line for line in lines if line.startswith("teacher"))
    student = next(line for line in lines if line.startswith("student"))
    y = [math.log(9), math.log(0.92 / 0.08), math.log(0.94 / 0.06)]  # the logits of the teacher's accuracies
    y_mean = sum(y) / 3
    y_half = T_2 * math.sqrt(sum((v - y_mean) ** 2 for v in y) / 2) / 3 ** 0.5
    low, high = 100 * _logistic(y_mean - y_half), 100 * _logistic(y_mean + y_half)
    assert "92.00%" in teacher and f"[{low:.2f}, {high:.2f}]" in teacher and "[85.49, 95.91]" in teacher
    assert "0.900" in student and "[0.900, 0.900]" in student  # 0.9 of the teacher at every seed
    gain_half = T_2 * 0.01 / 3 ** 0.5
    assert f"+0.0200 [{0.02 - gain_half:+.4f}, {0.02 + gain_half:+.4f}]" in student
    assert "+0." not in teacher  # no kd_gain for the teacher's row


def test_one_seed_has_no_interval():
    table = format_suite("KD", [("student", [0.81])], None, [0], [{"kd_gain": [0.01]}])
    assert "CI" not in table and "+0.0100" in table and "81.00%" in table


def test_a_seed_apart_is_shown_beside_the_interval():
    """Four seeds at 92% and one at 1%: the logit interval [5.35, 99.29] (tests/engine/test_stats.py
    derives it), then the seeds."""
    table = format_suite("KD", [("student", [0.92, 0.92, 0.92, 0.92, 0.01])], None, [0, 1, 2, 3, 4])
    assert "73.80%" in table and "[5.35, 99.29] (seeds: 92.00 92.00 92.00 92.00 1.00)" in table
    steady = format_suite("KD", [("student", [0.90, 0.91, 0.92, 0.93, 0.95])], None, [0, 1, 2, 3, 4])
    assert "(seeds:" not in steady


def test_gap_recovered_says_which_seed_had_no_gap():
    """Seeds 0 and 2 recover 0.5 and 0.7 of the gap, seed 1 has none: the mean and the t
    interval of the two, 0.6 +- t_{0.975,1} x 0.1, and the seed without a gap."""
    table = format_suite("KD", [("student", [0.81, 0.82, 0.83])], None, [0, 1, 2],
                         [{"gap_recovered": [0.5, None, 0.7]}])
    half = T_1 * 0.1
    assert f"+0.6000 [{0.6 - half:+.4f}, {0.6 + half:+.4f}] (no gap in seed 1)" in table
    assert "(no gap in seeds 1, 2)" in format_suite("KD", [("student", [0.81, 0.82, 0.83])], None, [0, 1, 2],
                                                    [{"gap_recovered": [0.5, None, None]}])


def test_a_cost_column_is_unsigned_in_significant_digits():
    table = format_suite("t", [("student", [0.9, 0.91, 0.92])], None, [0, 1, 2],
                         [{"student_tflite_ms": [0.0601, 0.0612, 0.0598], "student_macs": [1275200] * 3}])
    assert "0.06037 [0.05854, 0.0622]" in table and "1.275e+06" in table and "+0.06" not in table


def test_an_accuracy_column_is_unsigned_and_a_gain_signed():
    table = format_suite("t", [("student", [0.9, 0.91, 0.92])], None, [0, 1, 2],
                         [{"scratch_test_accuracy": [0.84, 0.85, 0.86], "kd_gain": [0.01, 0.02, 0.03]}])
    assert "0.8500 [" in table and "+0.85" not in table
    assert "+0.0200 [" in table
