"""Every procedure module follows procedures/__init__.py's protocol, so one engine
function prints every summary and `report` reads every procedure's columns."""
from __future__ import annotations

from pathlib import Path

import pytest

from procedures._upstream import upstream
from procedures.report import columns
from src.tables import print_summary

STORED = sorted(p.stem for p in Path("procedures").glob("*.py")
                if not p.stem.startswith("_") and p.stem not in ("report", "suite"))


@pytest.mark.parametrize("name", STORED)
def test_a_procedure_declares_its_summary_and_its_report_columns(name):
    module = upstream(name)
    assert callable(module.artifact) and callable(module.run) and callable(module.summary)
    declared = columns(name)
    assert declared["settings"] and declared["metrics"], f"{name}.REPORT has no columns for its own folder"


def test_the_summary_is_a_table_its_notes_and_the_folder(capsys, tmp_path):
    print_summary([{"model": "teacher", "test acc": 0.98765}, {"model": "student", "test acc": 0.5}],
                  ["kd_gain +0.0100", ""], tmp_path)
    assert capsys.readouterr().out.splitlines() == [
        "model    test acc", "teacher    0.9877", "student    0.5000", "kd_gain +0.0100", f"artifacts: {tmp_path}"]


def test_a_stage_folder_reads_its_owner_s_columns():
    assert "hns.seeker" in columns("hns_train", "hns_seeker")["settings"]
    assert columns("hns_train")["headline"] == "fii" and columns("no_such_procedure") == {}
