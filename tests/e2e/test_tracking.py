"""Tracking and resumable searches as a user meets them: `python main.py logger=mlflow`,
`python main.py logger=wandb` offline, and an Optuna sweep killed after its first trial, then rerun."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e  # real `python main.py` runs: `python -m pytest -m e2e`


def test_the_main_job_with_mlflow_shows_its_three_runs_with_curves(cli, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    result = cli("logger=mlflow", "debug=smoke", "train.epochs=2", f"paths.runs={tmp_path / 'runs'}",
                 f"hydra.run.dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.output[-3000:]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("kd-runner").experiment_id])
    assert sorted(r.data.tags["procedure"] for r in runs) == ["distill", "train", "train"]
    for run in runs:
        assert len(client.get_metric_history(run.info.run_id, "epoch/loss")) == 2


def test_the_main_job_with_wandb_offline_leaves_three_runs_with_config_curves_and_metrics(cli, tmp_path):
    pytest.importorskip("wandb")
    from tests.wandb_files import offline_runs
    home = tmp_path / "home"
    env = {"WANDB_MODE": "offline", "WANDB_CONFIG_DIR": str(home / "config"), "WANDB_CACHE_DIR": str(home / "cache"),
           "WANDB_DATA_DIR": str(home / "data")}
    result = cli("logger=wandb", "debug=smoke", "train.epochs=2", f"paths.runs={tmp_path / 'runs'}",
                 f"hydra.run.dir={tmp_path / 'out'}", env=env)
    assert result.returncode == 0, result.output[-3000:]
    assert f"wandb sync {tmp_path / 'wandb'}/offline-run-*" in result.output
    runs = offline_runs(tmp_path / "wandb")
    assert sorted(r.job_type for r in runs) == ["distill", "train", "train"]
    for run in runs:
        folder = Path(run.config["kd_runner"]["run_store_dir"])
        metrics = json.loads((folder / "metrics.json").read_text())
        assert run.config["train"]["epochs"] == 2 and run.config["procedure"]["name"] == run.job_type
        assert [h["_step"] for h in run.history if "epoch/loss" in h] == [1, 2]
        assert run.summary["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
        assert run.artifacts[0]["type"] == "model" and "model.keras" in run.artifacts[0]["files"]


def _study_trials(db):
    import optuna
    (summary,) = optuna.get_all_study_summaries(storage=f"sqlite:///{db}")
    return optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{db}").trials


def test_a_killed_optuna_sweep_resumes_its_study(tmp_path):
    pytest.importorskip("optuna")
    sweeps = tmp_path / "sweeps"
    args = [sys.executable, "main.py", "-m", "hparams_search=distill_optuna", "debug=smoke", "dataset=synthetic",
            "hydra.sweeper.n_trials=2", f"paths.runs={tmp_path / 'runs'}", f"paths.sweeps={sweeps}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not list(sweeps.glob("*/0/result.json")):
        time.sleep(0.1)
    assert list(sweeps.glob("*/0/result.json")), "the first trial never finished"
    time.sleep(1.0)  # the second trial starts
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    killed = _study_trials(sweeps / "optuna.db")
    assert [t.state.name for t in killed][:1] == ["COMPLETE"] and len(killed) <= 2
    finished = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, (finished.stdout + finished.stderr)[-3000:]
    trials = _study_trials(sweeps / "optuna.db")
    assert len(trials) == 2 and all(t.state.name == "COMPLETE" for t in trials)
    assert trials[0].params == killed[0].params  # the finished trial is kept, not redone
