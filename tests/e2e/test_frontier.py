"""experiment=kd_frontier under debug=smoke: every row distils, deploys and measures a
student of its width, and the frontier figure and its numbers land in the store."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from procedures._upstream import upstream
from src.runstore import is_done
from src.schema import validate
from tests.conftest import as_main

pytestmark = pytest.mark.e2e
# The preset's Fashion-MNIST when Debian's package is installed, else the embedded set.
FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_the_frontier_preset_runs_under_smoke_and_draws_its_figure(tmp_path, capsys):
    overrides = ["debug=smoke", "experiment=kd_frontier", f"paths.runs={tmp_path / 'runs'}", "deploy.calls=5",
                 "deploy.warmup=1", "deploy.calibration=32", *([] if FASHION.is_dir() else ["dataset=mnist_sample"])]
    with as_main(*overrides) as cfg:
        validate(cfg)
        metrics = upstream("suite").run(cfg)
    assert list(metrics) == [row.label for row in cfg.suite.rows]
    folder = Path(next(line for line in capsys.readouterr().out.splitlines()
                       if line.startswith("frontier: ")).split(": ", 1)[1]).parent
    assert is_done(folder) and (folder / "frontier.png").stat().st_size > 10_000
    points = list(csv.DictReader((folder / "frontier.csv").open()))
    curves = {p["curve"] for p in points}
    assert curves == {"scratch", "distilled", "distilled int8", "quantisation-aware int8", "teacher"}
    assert sum(p["curve"] == "distilled" for p in points) == 4
