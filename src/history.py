"""history.csv: one row per epoch, written atomically after every epoch and read back
when a run resumes. Values keep their type through the round trip: int, float, bool and
None (an empty cell)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from src.runstore import atomic_write


def write_rows(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    atomic_write(path, lambda tmp: tmp.write_text(buffer.getvalue()))


def read_rows(path: Path) -> list[dict]:
    """The rows of a history file; [] when there is none yet."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as handle:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _value(text: str):
    if text in ("", "None"):
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        return float(text)
