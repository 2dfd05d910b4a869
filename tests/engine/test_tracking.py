"""The `logger` group: what each choice records, the MLflow mirror read back with MLflow's
own client, and a tracker that fails costing a warning, never a run."""
from __future__ import annotations

import logging

import pytest

from procedures._upstream import upstream
from src import runstore, tracking
from src.errors import ConfigError
from src.schema import validate
from tests.conftest import SMOKE, as_main

mlflow = pytest.importorskip("mlflow")


def _train(tmp_path, *overrides: str):
    """A two-epoch smoke train run; (cfg, its finished run folder)."""
    with as_main(*SMOKE, "procedure=train", "train.epochs=2", f"paths.runs={tmp_path / 'runs'}", *overrides) as cfg:
        validate(cfg)
        tracking.configure(cfg)
        upstream("train").run(cfg)
        return cfg, runstore.produced_runs()[-1]


@pytest.fixture(autouse=True)
def _default_logger():
    yield
    tracking._logger = "tensorboard"  # the process-wide switch back to its default


def _client(cfg):
    from mlflow.tracking import MlflowClient

    from src.mlflow_mirror import tracking_uri
    return MlflowClient(tracking_uri=tracking_uri(cfg))


def test_mlflow_mirror_reads_back_with_the_mlflow_client(tmp_path):
    cfg, folder = _train(tmp_path, "logger=mlflow")
    tracking.mirror(cfg, [folder], tracking.Job())
    client = _client(cfg)
    experiment = client.get_experiment_by_name("kd-runner")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags["run_store_dir"] == str(folder) and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2" and run.data.params["model.name"] == "lenet"
    losses = client.get_metric_history(run.info.run_id, "epoch/loss")
    assert sorted(m.step for m in losses) == [1, 2]  # one value per epoch, the epoch as step
    assert run.data.metrics["test_accuracy"] == pytest.approx(runstore.read_json(folder / "metrics.json")["test_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.keras", "history.csv", "metrics.json", "config.yaml"} <= artifacts
    assert (tmp_path / "mlflow.db").is_file()  # MLflow 3's SQLite store, beside the run store, and its artifacts
    assert (tmp_path / "mlartifacts" / "kd-runner" / run.info.run_id / "artifacts" / "model.keras").is_file()


def test_a_run_mirrored_twice_is_logged_once_and_a_sweep_is_its_own_experiment(tmp_path):
    cfg, folder = _train(tmp_path, "logger=mlflow")
    tracking.mirror(cfg, [folder], tracking.Job())
    tracking.mirror(cfg, [folder, folder], tracking.Job())  # reused from the store
    sweep = tracking.Job(sweep_dir="multirun/2026-01-01/00-00-00", number=3)
    tracking.mirror(cfg, [folder], sweep)
    client = _client(cfg)
    assert len(client.search_runs([client.get_experiment_by_name("kd-runner").experiment_id])) == 1
    (in_sweep,) = client.search_runs([client.get_experiment_by_name(sweep.sweep_dir).experiment_id])
    assert in_sweep.data.tags["sweep"] == sweep.sweep_dir and in_sweep.data.tags["job"] == "3"


def test_an_unreachable_tracker_is_a_warning_and_the_run_is_kept(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    cfg, folder = _train(tmp_path, "logger=mlflow", "logger.tracking_uri=http://127.0.0.1:9")
    with caplog.at_level(logging.WARNING):
        tracking.mirror(cfg, [folder], tracking.Job())
    assert "logger=mlflow: 1 run(s) not recorded" in caplog.text and str(folder) in caplog.text
    assert runstore.is_done(folder)


def test_csv_writes_no_events_and_copies_each_history_into_the_job_folder(tmp_path):
    cfg, folder = _train(tmp_path, "logger=csv")
    assert not (folder / "tensorboard").exists() and (folder / "history.csv").is_file()
    tracking.mirror(cfg, [folder], tracking.Job(output_dir=tmp_path / "job"))
    copy = tmp_path / "job" / "history" / f"train-{folder.name}.csv"
    assert copy.read_text() == (folder / "history.csv").read_text()


def test_tensorboard_is_the_default_and_writes_events(tmp_path):
    cfg, folder = _train(tmp_path)
    assert cfg.logger.name == "tensorboard" and list((folder / "tensorboard").iterdir())


def test_unfinished_runs_are_not_mirrored(tmp_path):
    unfinished = tmp_path / "runs" / "d" / "train" / "x-0"
    unfinished.mkdir(parents=True)
    assert tracking.finished([unfinished]) == []


def test_a_file_store_is_refused_before_any_work_where_mlflow_refuses_it(monkeypatch):
    import importlib.metadata
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.17.2" if name == "mlflow" else "0")
    for uri in ("mlruns", "file:///tmp/mlruns"):
        with as_main(*SMOKE, "logger=mlflow", f"logger.tracking_uri={uri}") as cfg, \
                pytest.raises(ConfigError, match=rf"logger.tracking_uri={uri}: MLflow 3 refuses a file store; give a "
                                                 r"SQLite file \(e.g. logger.tracking_uri=sqlite:///mlflow.db"):
            validate(cfg)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with as_main(*SMOKE, "logger=mlflow", "logger.tracking_uri=mlruns") as cfg:
        validate(cfg)


def test_mlflow_missing_is_refused_with_the_extra_to_install(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with as_main(*SMOKE, "logger=mlflow") as cfg, pytest.raises(ConfigError, match=r"pip install -e '.\[tracking\]'"):
        validate(cfg)
