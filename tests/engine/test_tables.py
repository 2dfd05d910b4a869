"""The one table formatter: aligned console text, markdown and csv from the same rows."""
from __future__ import annotations

import pytest

from src.tables import format_table

ROWS = [{"model": "teacher", "test acc": 0.974}, {"model": "student from scratch", "test acc": 0.97, "gain": None}]


def test_text_aligns_names_left_and_numbers_right():
    assert format_table(ROWS) == ("model                 test acc  gain\n"
                                  "teacher                 0.9740\n"
                                  "student from scratch    0.9700\n")


def test_markdown_and_csv_keep_every_column():
    assert format_table(ROWS, "markdown").splitlines() == [
        "| model | test acc | gain |", "|---|---|---|", "| teacher | 0.9740 |  |", "| student from scratch | 0.9700 |  |"]
    assert format_table(ROWS, "csv").splitlines() == ["model,test acc,gain", "teacher,0.974,", "student from scratch,0.97,"]


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown table style 'html'"):
        format_table(ROWS, "html")
