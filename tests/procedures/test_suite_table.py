"""procedure=suite's table: means, Student-t intervals over seeds, the paired fraction of
the reference row and the extra metric columns, by hand on three seeds."""
from __future__ import annotations

from procedures.suite import format_suite

T_2 = 4.302653  # Student-t, 97.5% quantile, 2 degrees of freedom


def test_three_seed_table_by_hand():
    results = [("teacher", [0.90, 0.92, 0.94]), ("student", [0.81, 0.828, 0.846])]
    extras = [{"kd_gain": [None, None, None]}, {"kd_gain": [0.01, 0.02, 0.03]}]
    table = format_suite("KD", results, "teacher", [0, 1, 2], extras)
    lines = table.splitlines()
    assert lines[0] == "KD (3 seeds: 0, 1, 2)"
    teacher = next(line for line in lines if line.startswith("teacher"))
    student = next(line for line in lines if line.startswith("student"))
    half = T_2 * 2.0 / 3 ** 0.5  # std 2.00 points over sqrt(3)
    assert "92.00%" in teacher and f"[{92 - half:.2f}, {92 + half:.2f}]" in teacher
    assert "0.900" in student and "[0.900, 0.900]" in student  # 0.9 of the teacher at every seed
    gain_half = T_2 * 0.01 / 3 ** 0.5
    assert f"+0.0200 [{0.02 - gain_half:+.4f}, {0.02 + gain_half:+.4f}]" in student
    assert "+0." not in teacher  # no kd_gain for the teacher's row


def test_one_seed_has_no_interval():
    table = format_suite("KD", [("student", [0.81])], None, [0], [{"kd_gain": [0.01]}])
    assert "CI" not in table and "+0.0100" in table and "81.00%" in table
