"""A procedure's inputs: the data set (loaded once per process, keyed by its content for a
user's files) and fresh networks (any a model section names: this project's, a file's
architecture, keras_app, factory), with what names and keys a network without building
it, and the optimizer of a run."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import datasets
import models
from models.app_weights import weights_file
from models.factory import source_file
from src.artifacts import check_fits, load_model, resolve_model_file
from src.errors import ArtifactError
from src.optim import make_optimizer, steps_per_epoch
from src.runstore import file_digest, note_data
from src.runtime import seed_everything
from src.schema.core import FACTORY, KERAS_APP, network_kind

log = logging.getLogger(__name__)

_loaded: dict[str, datasets.Dataset] = {}
# The procedures that read their data a batch at a time, so that it may stream from the
# store (dataset.stream, docs/data.md#data-bigger-than-memory); the others refuse it.
STREAMING = ("train", "distill", "evaluate", "deploy", "suite")


def data_key(cfg: DictConfig) -> dict:
    """The data's part of every run key: a user's files by their content, not their path."""
    return datasets.identity(cfg.dataset, store=cfg.paths.runs)


def load_data(cfg: DictConfig) -> datasets.Dataset:
    """The dataset of cfg, loaded once per process (a distill run and the train runs it
    starts share it); what the runs on it record about it goes into their metrics."""
    key = json.dumps([data_key(cfg), cfg.train.val_split, str(cfg.dataset.stream), cfg.dataset.memory_budget,
                      cfg.procedure.name in STREAMING],
                     sort_keys=True)
    procedure = cfg.procedure.name
    if key not in _loaded:
        _loaded.clear()  # keep at most one data set in memory
        _loaded[key] = datasets.load(cfg.dataset, val_split=cfg.train.val_split, store=cfg.paths.runs,
                                     in_memory_for=None if procedure in STREAMING else procedure)
    data = _loaded[key]
    note_data(data.facts)
    log.info("dataset %s: %d train / %d val / %d test, input %s, %d classes (%s)", data.name,
             len(data.x_train), len(data.x_val), len(data.x_test), data.input_shape, data.num_classes, data.source)
    return data


def build_model(model_cfg: DictConfig, data: datasets.Dataset, seed: int, key: str = "model"):
    """A fresh model for the model section `key` ("model" or "student", which errors
    name), seeded here so its initial weights do not depend on what else ran in this
    process first (e.g. a teacher trained as a prerequisite). A bad network is a one-line
    error: build it before any work to check it."""
    seed_everything(seed)
    if model_cfg.path:
        return _file_network(model_cfg, data, key)
    spec = OmegaConf.to_container(model_cfg, resolve=True) if OmegaConf.is_config(model_cfg) else dict(model_cfg)
    return models.network(spec, data.input_shape, data.num_classes, key)


def network_file(path: str, key: str) -> Path:
    """The .keras file `key`.path names: the file, or a finished run folder's model.keras."""
    if not Path(path).expanduser().exists():
        raise ArtifactError(f"{key}.path={path}: no such file or folder; give a .keras file or a finished run folder")
    return resolve_model_file(path, f"{key}.path")


def _file_network(model_cfg: DictConfig, data: datasets.Dataset, key: str):
    """The architecture of `key`.path with fresh weights (init default or reinit: the
    scratch baseline and the distilled student start alike) or the file's (init weights:
    fine-tuning); refused when it does not fit the data or ends in a softmax."""
    model = load_model(network_file(model_cfg.path, key), f"{key}.path")
    check_fits(model, data.input_shape, data.num_classes, data.name, key)
    models.check_logits(model, f"{key}.path={model_cfg.path}")
    return model if model_cfg.init == "weights" else models.reinitialized(model)


REGISTRY_KEYS = ("name", "init", "dropout", "input_dropout")  # the settings of one of this project's networks


def network_key(model_cfg: DictConfig, key: str = "model") -> dict:
    """What identifies a network in an artifact key, without building it: the settings its
    kind reads, with each file it reads (`key`.path, a keras_app weights file, a factory's
    module) replaced by a digest of its content, so that a changed file makes new runs."""
    kind = network_kind(model_cfg)
    if kind == "file":
        return {"file": file_digest(network_file(model_cfg.path, key)),
                "init": "weights" if model_cfg.init == "weights" else "reinit"}
    if kind == KERAS_APP:
        weights = model_cfg.weights
        if weights not in (None, "imagenet"):
            weights = {"file": file_digest(weights_file(weights, model_cfg.arch, key))}
        return {"name": KERAS_APP, "arch": model_cfg.arch, "weights": weights, "kwargs": model_cfg.kwargs}
    if kind == FACTORY:
        source = source_file(model_cfg.target, key)
        return {"name": FACTORY, "target": model_cfg.target, "kwargs": model_cfg.kwargs,
                "source": file_digest(source) if source else None}
    return {k: model_cfg[k] for k in REGISTRY_KEYS}


def network_name(model_cfg: DictConfig) -> str:
    """How a network appears in folder names and summaries: this project's name, the
    keras.applications name, the factory function's name, or the file's (run folder's) name."""
    kind = network_kind(model_cfg)
    if kind == "file":
        path = Path(model_cfg["path"]).expanduser()
        return path.name if path.is_dir() else path.stem
    if kind == KERAS_APP:
        return model_cfg["arch"]
    return model_cfg["target"].rpartition(".")[2] if kind == FACTORY else model_cfg["name"]


def optimizer_for(cfg: DictConfig, examples: int, settings: DictConfig | None = None):
    """The optimizer of a run over `examples` training examples, from train.* or from a
    section with the same keys (the tree's, whose keys interpolate train.*)."""
    s = settings if settings is not None else cfg.train
    per_epoch = steps_per_epoch(examples, s.batch_size, s.max_steps)
    return make_optimizer(s.optimizer, s.lr, s.lr_schedule, per_epoch * s.epochs, epoch_steps=per_epoch,
                          milestones=tuple(s.lr_milestones), decay=s.lr_decay)
