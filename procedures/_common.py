"""What several procedures share: deriving an upstream config, making sure an upstream
artifact exists (running it first when auto_prereqs=true), loading data and models."""
from __future__ import annotations

import importlib
import json
import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

import datasets
import models
from src.artifacts import check_fits, load_model, resolve_model_file
from src.errors import ArtifactError
from src.runstore import Run, file_digest
from src.schema import DROPOUT_KEYS

log = logging.getLogger(__name__)


def derive(cfg: DictConfig, procedure: str, **changes: Any) -> DictConfig:
    """A copy of cfg for an upstream procedure: never forced (force applies to the run
    the user asked for, not to what it reuses)."""
    upstream = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(upstream):
        upstream.procedure.name = procedure
        upstream.force = False
        for dotted, value in changes.items():
            OmegaConf.update(upstream, dotted.replace("__", "."), value, merge=False)
    return upstream


def ensure(procedure: str, cfg: DictConfig, why: str) -> Run:
    """The finished run of `procedure` for cfg; produced first if missing and allowed."""
    module = importlib.import_module(f"procedures.{procedure}")
    run = module.artifact(cfg)
    if run.is_done():
        return run
    if not cfg.auto_prereqs:
        raise ArtifactError(
            f"{why} needs a finished '{procedure}' run at {run.dir}, and auto_prereqs=false: "
            f"run `python main.py procedure={procedure} ...` first, or set auto_prereqs=true")
    log.info("%s needs a '%s' run that is not in the store yet: running it first -> %s", why, procedure, run.dir)
    module.run(cfg)
    return run


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
    from src.runtime import seed_everything
    seed_everything(seed)
    return models.build(model_cfg.name, data.input_shape, data.num_classes, init=model_cfg.init,
                        dropout=model_cfg.dropout, input_dropout=model_cfg.input_dropout)


def model_key(model_cfg: DictConfig) -> dict:
    """A model's settings for an artifact key. Unset (null) dropout overrides are left out,
    so runs made before those settings existed keep their keys."""
    settings = OmegaConf.to_container(model_cfg, resolve=True)
    return {k: v for k, v in settings.items() if not (k in DROPOUT_KEYS and v is None)}


def model_train_config(cfg: DictConfig, what: str) -> DictConfig:
    """The train run that makes `cfg.model`: cfg's train.*, except that a teacher trains
    for teacher.epochs when that is set (a well-trained teacher, a short student run)."""
    if what == "teacher" and cfg.teacher.epochs:
        return derive(cfg, "train", train__epochs=cfg.teacher.epochs)
    return derive(cfg, "train")


def trained_model(cfg: DictConfig, data: datasets.Dataset, path: str | None, what: str):
    """A trained `cfg.model`: from `path` (run folder or .keras) when given, else the
    store's train run for cfg (trained first if needed). Returns (model, source)."""
    if path:
        source = str(path)
    else:
        source = str(ensure("train", model_train_config(cfg, what), why=f"this {what}").dir)
    model = load_model(source, what)
    check_fits(model, data.input_shape, data.num_classes, data.name, what)
    return model, source


def model_identity(cfg: DictConfig, path: str | None, what: str = "teacher") -> str:
    """What identifies a model in an artifact key without loading it: the content hash of
    a user-given file, else the hash of the train run that makes it."""
    if path:
        return file_digest(resolve_model_file(path))
    return importlib.import_module("procedures.train").artifact(model_train_config(cfg, what)).hash


def optimizer_for(cfg: DictConfig, examples: int):
    """The train.* optimizer for a run over `examples` training examples."""
    from src.fit import make_optimizer, steps_per_epoch
    t = cfg.train
    total = steps_per_epoch(examples, t.batch_size, t.max_steps) * t.epochs
    return make_optimizer(t.optimizer, t.lr, t.lr_schedule, total)
