"""curves.png draws every curve its history rows have: F, I, FII, alpha and the hidden
fraction of training batches, from the columns hns_train writes into history.csv."""
from __future__ import annotations

import math

from src.hns.plots import CURVES, curve_series, curves_png


def _row(epoch: int, **values) -> dict:
    return {"epoch": epoch, "test_fidelity": 0.9, "test_interpretability": 0.5, "test_fii": 0.45,
            "alpha_end": 1.0 - 0.1 * epoch, "hidden": 0.4, **values}


def test_every_curve_of_a_full_history_is_drawn(tmp_path):
    history = [_row(1), _row(2)]
    series = curve_series(history)
    assert list(series) == list(CURVES.values())
    assert series["alpha (end of epoch)"] == [0.9, 0.8]
    assert curves_png(history, tmp_path / "curves.png", "t").stat().st_size > 1000


def test_a_curve_without_values_is_left_out_and_gaps_stay_gaps():
    history = [_row(1, test_fidelity=None, test_fii=None), _row(2, test_fidelity=None, test_fii=None)]
    assert "F (fidelity)" not in curve_series(history) and "FII = F x I" not in curve_series(history)
    gappy = curve_series([_row(1, hidden=None), _row(2)])["hidden (training batches)"]
    assert math.isnan(gappy[0]) and gappy[1] == 0.4
