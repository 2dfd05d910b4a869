"""history.csv keeps each value's type through a write and a read: int, float, bool, None."""
from __future__ import annotations

from src.history import read_rows, write_rows


def test_rows_round_trip_with_their_types(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5, "collapsed": False, "fii": None},
            {"epoch": 2, "loss": 0.25, "collapsed": True, "fii": 0.75, "extra": 3}]
    write_rows(tmp_path / "history.csv", rows)
    back = read_rows(tmp_path / "history.csv")
    assert back == [{**rows[0], "extra": None}, rows[1]]
    assert isinstance(back[1]["epoch"], int) and isinstance(back[0]["loss"], float)


def test_a_missing_file_is_an_empty_history(tmp_path):
    assert read_rows(tmp_path / "history.csv") == []
