"""The one table formatter: every summary a procedure prints and every report table.

Rows are dicts; the columns are their keys in first-seen order. Styles: "text" (aligned
columns for the console), "markdown", and "csv" (full precision, machine-readable).
"""
from __future__ import annotations

import csv
import io

from src.schema.core import REPORT_FORMATS

STYLES = ("text", *REPORT_FORMATS)  # text: the console's; the others: report.format


def format_table(rows: list[dict], style: str = "text", digits: int = 4) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if style == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows([["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows])
        return buffer.getvalue()
    cells = [[cell(row.get(c), digits) for c in columns] for row in rows]
    if style == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"
    if style != "text":
        raise ValueError(f"unknown table style {style!r}; styles: {', '.join(STYLES)}")
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(is_number(row.get(c)) for row in rows if row.get(c) is not None) for c in columns]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()
    return "\n".join([line(columns)] + [line(row) for row in cells]) + "\n"


def cell(value, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def seed_values(values, spec: str = ".4f") -> str:
    """The per-seed values in seed order, e.g. "0.9200 0.9200 0.0100": shown beside a mean
    that one seed pulls away, so the reader sees the seed rather than a blurred mean."""
    return " ".join(format(v, spec) if isinstance(v, float) else str(v) for v in values)


def print_summary(rows: list[dict], notes: list[str], folder) -> None:
    """How every procedure ends on the console: its table, its notes (one line each, the
    paired gains and warnings), and where its artifacts are."""
    lines = [format_table(rows).rstrip()] if rows else []
    lines += [note for note in notes if note]
    lines.append(f"artifacts: {folder}")
    print("\n".join(lines), flush=True)
