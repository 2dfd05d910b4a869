"""Sweeps beyond one process: the parallel (joblib) and submitit_local launchers, the
Optuna preset, `report report.sweep=...`, and what happens when a plugin is missing."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from src.runstore import is_done
from src.stats import metric_interval

pytestmark = pytest.mark.e2e  # real `python main.py` runs: `python -m pytest -m e2e`

SMOKE = ["debug=smoke", "dataset=synthetic"]


def _sweep(cli, tmp_path, name, *args):
    folder = tmp_path / name
    result = cli("-m", *SMOKE, f"paths.runs={tmp_path / 'runs'}", f"hydra.sweep.dir={folder}", *args)
    assert result.returncode == 0, result.output[-3000:]
    return folder


def _report(cli, folder):
    """The report's tables as lists of csv rows: per job, then (when seed was swept) over seeds."""
    result = cli("procedure=report", f"report.sweep={folder}", "report.format=csv")
    assert result.returncode == 0, result.output[-3000:]
    tables, lines = [], [line for line in result.stdout.splitlines() if not line.startswith("[")]
    for block in "\n".join(lines).strip().split("\n\n"):
        tables.append([line.split(",") for line in block.splitlines()])
    return tables


@pytest.mark.parametrize("launcher", ["parallel", "submitit_local"])
def test_two_job_sweep_makes_both_artifacts_and_one_table(cli, tmp_path, launcher):
    folder = _sweep(cli, tmp_path, launcher, f"hydra/launcher={launcher}", "procedure=train", "seed=0,1")
    table, over_seeds = _report(cli, folder)
    header, rows = table[0], table[1:]
    assert header[:3] == ["job", "seed", "status"] and "test_accuracy" in header
    assert [r[:3] for r in rows] == [["0", "0", "done"], ["1", "1", "done"]]
    accuracies = [float(r[header.index("test_accuracy")]) for r in rows]
    summary = dict(zip(*over_seeds))
    assert summary["seeds"] == "2"
    assert float(summary["test_accuracy mean"]) == pytest.approx(sum(accuracies) / 2)
    expected = metric_interval("test_accuracy", accuracies)  # an accuracy's interval: inside [0, 1]
    assert float(summary["test_accuracy ci95 high"]) == pytest.approx(expected["high"], abs=1e-3)
    runs = {Path(r[header.index("run")]) for r in rows}
    store = (tmp_path / "runs" / "synthetic" / "train").resolve()
    assert len(runs) == 2 and all(run.parent == store and is_done(run) for run in runs)
    assert (folder / "sweep_test_accuracy.png").stat().st_size > 0


def test_parallel_jobs_with_one_artifact_train_it_once(cli, tmp_path):
    """report.format is not part of a train run's key: both jobs resolve to one folder;
    one trains it while the other waits on the lock, then reuses it."""
    folder = _sweep(cli, tmp_path, "same", "hydra/launcher=parallel", "procedure=train",
                    "report.format=markdown,csv")
    logs = [(folder / str(job) / "main.log").read_text() for job in (0, 1)]
    assert sum("reusing finished run" in log for log in logs) == 1
    assert len(list((tmp_path / "runs" / "synthetic" / "train").iterdir())) == 1


def _sweep_output(cli, tmp_path, name, *args):
    folder = tmp_path / name
    result = cli("-m", *SMOKE, f"paths.runs={tmp_path / 'runs'}", f"paths.sweeps={tmp_path / 'sweeps'}",
                 f"hydra.sweep.dir={folder}", *args)
    assert result.returncode == 0, result.output[-3000:]
    return folder, result.output


def test_optuna_preset_maximises_the_headline_metric(cli, tmp_path):
    folder, output = _sweep_output(cli, tmp_path, "optuna", "hparams_search=distill_optuna", "hydra.sweeper.n_trials=2")
    assert "Optuna study distill_optuna-" in output and "TPESampler, maximize): 0 trial(s) there, 2 to run" in output
    best = yaml.safe_load((folder / "optimization_results.yaml").read_text())
    (table,) = _report(cli, folder)  # no seed swept: no over-seeds table
    header, rows = table[0], table[1:]
    assert len(rows) == 2 and {"distill.temperature", "val_accuracy", "test_accuracy"} <= set(header)
    assert header.index("val_accuracy") < header.index("test_accuracy")  # the headline comes first
    assert best["best_value"] == pytest.approx(max(float(r[header.index("val_accuracy")]) for r in rows))


def test_an_optuna_search_over_two_objectives_writes_its_pareto_front(cli, tmp_path):
    folder, _ = _sweep_output(cli, tmp_path, "pareto", "hparams_search=distill_optuna", "hydra.sweeper.n_trials=2",
                              "optimized_metric=[val_accuracy,student_params]", "hydra.sweeper.direction=[maximize,minimize]",
                              "student=choice(lenet_half,hinton800)")
    front = yaml.safe_load((folder / "optimization_results.yaml").read_text())["solutions"]
    (table,) = _report(cli, folder)
    header, rows = table[0], table[1:]
    assert header.index("val_accuracy") < header.index("test_accuracy")  # the first objective is the headline
    done = {(float(r[header.index("val_accuracy")]), float(r[header.index("student_params")])) for r in rows}
    assert front and all(tuple(s["values"]) in done for s in front)


def test_an_optuna_search_with_a_direction_per_missing_metric_is_refused_before_any_trial(cli, tmp_path):
    result = cli("-m", *SMOKE, f"paths.runs={tmp_path / 'runs'}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                 "hparams_search=distill_optuna", "optimized_metric=[val_accuracy,student_params]")
    assert result.returncode != 0 and "Traceback" not in result.output
    assert ("hydra.sweeper.direction=maximize: 1 direction(s) for 2 metric(s) of "
            "optimized_metric=[val_accuracy,student_params]") in result.output
    assert not (tmp_path / "runs").exists()
