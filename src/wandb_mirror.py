"""logger=wandb: a finished run folder mirrored as one Weights & Biases run.

Each run gets its resolved config.yaml as its config (nested, as W&B shows it; the run's
store folder, sweep and job under `kd_runner`), history.csv as curves `epoch/<column>`
with the epoch as step, metrics.json's numbers as its summary, its PNG figures as images,
and its files (model.keras, config, metrics, history, figures) as one artifact, of type
`model` when it holds one. A run is named <procedure>/<run folder>; its job type is the
procedure and its tags are the procedure and the data set. A multirun sweep is one group,
named after its folder.

The project is `logger.project` (kd-runner), and W&B's folder is beside the run store
(<parent of paths.runs>/wandb, or $WANDB_DIR/wandb). Offline (logger.mode=offline,
WANDB_MODE=offline, or no W&B login on this machine) every run is a folder
wandb/offline-run-*, which `wandb sync` uploads later. A ledger in that folder
(mirrored.jsonl) keeps a run from being mirrored twice into the same project and group.
"""
from __future__ import annotations

import json
import logging
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig

from src import run_record
from src.tracking import beside_store, locked

log = logging.getLogger(__name__)
DEFAULT_PROJECT = "kd-runner"
LEDGER = "mirrored.jsonl"
DEFAULT_HOST = "https://api.wandb.ai"


def mirror(runs: list[Path], cfg: DictConfig, *, job) -> None:
    """Mirror each finished run folder into the project (see the module docstring)."""
    import wandb
    base = Path(os.environ.get("WANDB_DIR") or beside_store(cfg.paths.runs))
    records = base / "wandb"
    mode = run_mode(cfg.logger.mode)
    where = {"entity": cfg.logger.entity, "project": cfg.logger.project or DEFAULT_PROJECT,
             "group": str(job.sweep_dir) if job.sweep_dir else None}
    written = 0
    with locked(records):
        done = mirrored(records)
        try:
            for folder in runs:
                key = json.dumps({**where, "run": str(folder)}, sort_keys=True)
                if key in done:
                    continue
                run_id = _log_run(wandb, folder, where, job, mode=mode, base=base)
                with open(records / LEDGER, "a") as ledger:
                    ledger.write(json.dumps({"key": key, "id": run_id, "mode": mode}) + "\n")
                written += 1
        finally:
            wandb.teardown()  # the W&B service process ends with the mirror
    if written and mode == "offline":
        log.info("logger=wandb: %d run(s) written offline under %s; upload them with: wandb sync %s/offline-run-*",
                 written, records, records)


def run_mode(setting: str | None) -> str:
    """logger.mode, else WANDB_MODE, else online with a W&B login on this machine, else offline."""
    if setting:
        return str(setting)
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if logged_in() else "offline"


def logged_in() -> bool:
    """Whether W&B has credentials here: WANDB_API_KEY, an identity token, or `wandb login`'s
    entry in ~/.netrc (or $NETRC) for the W&B host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or DEFAULT_HOST).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def mirrored(records: Path) -> set[str]:
    """The keys (project, group, run folder) already mirrored from this W&B folder."""
    path = records / LEDGER
    lines = path.read_text().splitlines() if path.is_file() else []
    return {json.loads(line)["key"] for line in lines if line.strip()}


def _log_run(wandb, folder: Path, where: dict, job, *, mode: str, base: Path) -> str:
    """One W&B run for the folder; its id."""
    procedure, dataset = folder.parent.name, folder.parent.parent.name
    origin = {"run_store_dir": str(folder), "sweep": where["group"], "job": job.number}
    run = wandb.init(**where, job_type=procedure, name=run_record.name(folder), tags=[procedure, dataset],
                     config={**run_record.config(folder), "kd_runner": origin}, dir=str(base), mode=mode,
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True, disable_git=True,
                                             save_code=False))
    finished = False
    try:
        last = 0
        for epoch, row in run_record.epochs(folder):
            run.log({f"epoch/{k}": v for k, v in row.items()}, step=epoch)
            last = epoch
        images = {f"figures/{f.stem}": wandb.Image(str(f)) for f in run_record.figures(folder)}
        if images:
            run.log(images, step=last)
        run.summary.update(run_record.final(folder))
        files = run_record.files(folder)
        if files:
            kind = "model" if any(f.name == "model.keras" for f in files) else "run"
            artifact = wandb.Artifact(run_record.slug(f"{procedure}-{folder.name}"), type=kind,
                                      metadata={"run_store_dir": str(folder)})
            for file in files:
                artifact.add_file(str(file))
            run.log_artifact(artifact)
        finished = True
    finally:
        run.finish(exit_code=0 if finished else 1)
    return run.id
