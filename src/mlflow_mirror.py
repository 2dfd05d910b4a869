"""logger=mlflow: a finished run folder mirrored as one MLflow run.

Each run gets its resolved config.yaml flattened into parameters, history.csv as metrics
`epoch/<column>` with the epoch as step, metrics.json's numbers as metrics, and its top-level
files (figures, model.keras, metrics, config) as artifacts. A run is tagged with its store
folder and is not mirrored into the same experiment twice. A multirun sweep is one
experiment named after its folder; every run is tagged with the sweep and job number.

The default store is the one MLflow 3 recommends for a machine of one's own, a SQLite file
beside the run store (<parent of paths.runs>/mlflow.db), with the artifacts beside it in
mlartifacts/<experiment>/ (MLflow would put them under the current folder). It works
offline, and `mlflow ui --backend-store-uri sqlite:///mlflow.db` shows it. Local stores (a
SQLite file or a folder) are written under a file lock, so the jobs of a parallel sweep
take turns.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig

from src import run_record
from src.tracking import beside_store, locked

DEFAULT_EXPERIMENT = "kd-runner"
PARAM_VALUE_CHARS = 6000  # MLflow's limit on a parameter's value
BATCH = 100  # MLflow takes at most 100 parameters per call (and 1,000 metrics)


def tracking_uri(cfg: DictConfig) -> str:
    """logger.tracking_uri, or the SQLite store mlflow.db beside the run store."""
    if cfg.logger.tracking_uri:
        return str(cfg.logger.tracking_uri)
    return f"sqlite:///{beside_store(cfg.paths.runs) / 'mlflow.db'}"


def mirror(runs: list[Path], *, tracking_uri: str, experiment: str | None, job) -> None:
    """Mirror each finished run folder into the experiment (see the module docstring)."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # an unreachable server: fail fast
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    for chatty in ("mlflow", "alembic"):  # store set-up notes on every first use
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient
    local = local_folder(tracking_uri)
    with locked(local):
        client = MlflowClient(tracking_uri=tracking_uri)
        name = experiment or (str(job.sweep_dir) if job.sweep_dir else DEFAULT_EXPERIMENT)
        experiment_id = _experiment(client, name, _artifact_root(tracking_uri))
        for folder in runs:
            if not _already_there(client, experiment_id, folder):
                _log_run(client, experiment_id, folder, job)


def local_folder(uri: str) -> Path | None:
    """The folder of a local store, a file store or a SQLite file's (created here); None
    for a server."""
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
    elif uri.startswith("file:"):
        folder = Path(urlparse(uri).path)
    elif "://" not in uri:
        folder = Path(uri)
    else:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _artifact_root(uri: str) -> Path | None:
    """mlartifacts/ beside a SQLite file; None where the store decides (a folder, a server)."""
    return Path(uri[len("sqlite:///"):]).parent / "mlartifacts" if uri.startswith("sqlite:///") else None


def _experiment(client, name: str, artifact_root: Path | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    where = None
    if artifact_root is not None:
        where = (artifact_root / run_record.slug(name)).as_uri()
    return client.create_experiment(name, artifact_location=where)


def _already_there(client, experiment_id: str, folder: Path) -> bool:
    found = client.search_runs([experiment_id], filter_string=f"tags.run_store_dir = '{folder}'", max_results=1)
    return bool(found)


def _log_run(client, experiment_id: str, folder: Path, job) -> None:
    from mlflow.entities import Metric, Param
    tags = {"run_store_dir": str(folder), "procedure": folder.parent.name, "dataset": folder.parent.parent.name}
    if job.sweep_dir:
        tags.update(sweep=str(job.sweep_dir), job=str(job.number))
    run = client.create_run(experiment_id, run_name=run_record.name(folder), tags=tags)
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in flat_params(folder).items()]
    metrics = _metrics(folder, Metric)
    for start in range(0, max(len(params), len(metrics)), BATCH):
        client.log_batch(run_id, params=params[start:start + BATCH], metrics=metrics[start:start + BATCH])
    for file in run_record.files(folder):
        client.log_artifact(run_id, str(file))
    client.set_terminated(run_id, "FINISHED")


def flat_params(folder: Path) -> dict[str, str]:
    """The run's resolved config as dotted keys -> strings (lists as their YAML text)."""
    flat: dict[str, str] = {}

    def walk(node, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = json.dumps(node) if isinstance(node, list) else str(node)

    walk(run_record.config(folder), "")
    return {k: v[:PARAM_VALUE_CHARS] for k, v in flat.items()}


def _metrics(folder: Path, Metric) -> list:
    """history.csv per epoch as epoch/<column>, then metrics.json's numbers."""
    now = int(time.time() * 1000)
    out = [Metric(f"epoch/{k}", v, now, epoch) for epoch, row in run_record.epochs(folder) for k, v in row.items()]
    return out + [Metric(k, float(v), now, 0) for k, v in run_record.final(folder).items()]
