"""The `logger` choice: what a run records besides the run store, and the mirror of a job's
runs into it once they are finished.

The run store stays the source of truth. A tracker only mirrors finished run folders
(config.yaml, history.csv, metrics.json, figures, model), so a tracker that fails costs a
warning, never a run, and a run reused from the store is mirrored the same way as a new one.

    tensorboard  TensorBoard events in each run folder while it trains (the default)
    csv          no events; a copy of each run's history.csv in the job's output folder
    mlflow       each run mirrored to MLflow (src/mlflow_mirror.py)
    wandb        each run mirrored to Weights & Biases (src/wandb_mirror.py)
    none         the run store only
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig

from src import runstore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """Where a job sits in Hydra's output: its folder, and its sweep and number in a multirun."""
    output_dir: Path | None = None
    sweep_dir: str | None = None
    number: int | None = None


_logger = "tensorboard"


def configure(cfg: DictConfig) -> None:
    """Set the process's logger from cfg.logger (main.py, before the procedure runs)."""
    global _logger
    _logger = cfg.logger.name


def writes_tensorboard() -> bool:
    """Whether fit writes TensorBoard events into the run folder."""
    return _logger == "tensorboard"


def finished(folders: list[Path]) -> list[Path]:
    """Each finished folder once, in the order first produced."""
    seen: dict[Path, None] = {}
    for folder in folders:
        if runstore.is_done(folder):
            seen.setdefault(Path(folder), None)
    return list(seen)


def mirror(cfg: DictConfig, folders: list[Path], job: Job) -> None:
    """Record the job's finished runs with the configured logger; a failure is a warning."""
    runs = finished(folders)
    if not runs or cfg.logger.name in ("tensorboard", "none"):
        return
    try:
        if cfg.logger.name == "csv":
            copy_histories(runs, job)
        elif cfg.logger.name == "wandb":
            from src import wandb_mirror
            wandb_mirror.mirror(runs, cfg, job=job)
        else:
            from src import mlflow_mirror
            mlflow_mirror.mirror(runs, tracking_uri=mlflow_mirror.tracking_uri(cfg),
                                 experiment=cfg.logger.experiment, job=job)
    except Exception as error:  # noqa: BLE001  (a tracker never costs a run)
        reason = str(error).splitlines()[0][:160] if str(error) else ""
        log.warning("logger=%s: %d run(s) not recorded (%s: %s); the run store keeps them, e.g. %s",
                    cfg.logger.name, len(runs), type(error).__name__, reason, runs[-1])


def copy_histories(runs: list[Path], job: Job) -> None:
    """<job output>/history/<run folder>.csv for every run that has a history."""
    if job.output_dir is None:
        return
    target = Path(job.output_dir) / "history"
    for run in runs:
        source = run / "history.csv"
        if source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / f"{run.parent.name}-{run.name}.csv")


def beside_store(runs: str) -> Path:
    """The folder beside the run store, <parent of paths.runs>, where local trackers keep
    their records (mlflow.db, wandb/)."""
    return Path(runs).expanduser().resolve().parent


@contextlib.contextmanager
def locked(folder: Path | None) -> Iterator[None]:
    """An exclusive lock on <folder>/.lock (none for None), so the jobs of a parallel sweep
    take turns at a local tracker's records."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
