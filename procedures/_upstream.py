"""How a procedure reaches the runs it builds on: the upstream config (`upstream_config`),
its finished run, produced first when missing and auto_prereqs=true (`upstream_run`).
Also the inputs every procedure loads the same way: data, a fresh model, the optimizer.

Procedures never import each other: they name an upstream procedure here (`upstream`,
`upstream_run`), the same name-based lookup main.py dispatches with.
"""
from __future__ import annotations

import importlib
import json
import logging
from types import ModuleType
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf, open_dict

import datasets
import models
from src.errors import ArtifactError
from src.fit import make_optimizer, steps_per_epoch
from src.runstore import Run
from src.runtime import seed_everything

log = logging.getLogger(__name__)


class Stage(Protocol):
    """What upstream_run() needs of an upstream step: a procedure module, or a stage of one."""

    def artifact(self, cfg: DictConfig) -> Run: ...

    def run(self, cfg: DictConfig) -> dict: ...


def upstream(procedure: str) -> ModuleType:
    """The module of another procedure, by name."""
    return importlib.import_module(f"procedures.{procedure}")


def upstream_config(cfg: DictConfig, procedure: str, changes: dict[str, Any] | None = None) -> DictConfig:
    """A copy of cfg for an upstream procedure, with `changes` ({"dotted.key": value})
    applied. Never forced: force applies to the run the user asked for, not to what it reuses."""
    config = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(config):
        config.procedure.name = procedure
        config.force = False
        for dotted, value in (changes or {}).items():
            OmegaConf.update(config, dotted, value, merge=False)
    return config


def upstream_run(stage: str | Stage, cfg: DictConfig, why: str, fix: str = "") -> Run:
    """The finished run of `stage` (a procedure name or a Stage) for cfg; produced first
    if missing and auto_prereqs=true, else refused with a message naming `fix`."""
    module = upstream(stage) if isinstance(stage, str) else stage
    run = module.artifact(cfg)
    if run.is_done():
        return run
    name = stage if isinstance(stage, str) else getattr(stage, "name", "upstream")
    if not cfg.auto_prereqs:
        raise ArtifactError(
            f"{why} needs a finished '{name}' run at {run.dir}, and auto_prereqs=false: "
            f"{fix or f'run `python main.py procedure={name} ...` first'}, or set auto_prereqs=true")
    log.info("%s needs a '%s' run that is not in the store yet: running it first -> %s", why, name, run.dir)
    module.run(cfg)
    return run


def teacher_name(cfg: DictConfig, path: str | None) -> str:
    """How a model appears in run folder names: its config name, or "file" when given by path."""
    return "file" if path else cfg.model.name


_loaded: dict[str, datasets.Dataset] = {}


def load_data(cfg: DictConfig) -> datasets.Dataset:
    """The dataset of cfg, loaded once per process (a distill run and the train runs it
    starts share it)."""
    key = json.dumps([OmegaConf.to_container(cfg.dataset, resolve=True), cfg.train.val_split], sort_keys=True)
    if key not in _loaded:
        _loaded.clear()  # keep at most one data set in memory
        _loaded[key] = datasets.load(cfg.dataset, val_split=cfg.train.val_split)
    data = _loaded[key]
    log.info("dataset %s: %d train / %d val / %d test, input %s, %d classes (%s)", data.name,
             len(data.x_train), len(data.x_val), len(data.x_test), data.input_shape, data.num_classes, data.source)
    return data


def build_model(model_cfg: DictConfig, data: datasets.Dataset, seed: int):
    """A fresh model, seeded here so its initial weights do not depend on what else ran
    in this process first (e.g. a teacher trained as a prerequisite)."""
    seed_everything(seed)
    return models.build(model_cfg.name, data.input_shape, data.num_classes, init=model_cfg.init,
                        dropout=model_cfg.dropout, input_dropout=model_cfg.input_dropout)


def optimizer_for(cfg: DictConfig, examples: int):
    """The train.* optimizer for a run over `examples` training examples."""
    t = cfg.train
    per_epoch = steps_per_epoch(examples, t.batch_size, t.max_steps)
    return make_optimizer(t.optimizer, t.lr, t.lr_schedule, per_epoch * t.epochs, epoch_steps=per_epoch,
                          milestones=tuple(t.lr_milestones), decay=t.lr_decay)
