"""The toolkit every procedure gets its upstream runs and trained models with, so each one
reads as: get the inputs, call the method, save through the run, declare the summary. The
data and fresh networks come from procedures/_inputs.py.

- upstream runs: `upstream_config` (the upstream config), `upstream_run` (its finished
  run, produced first when missing and auto_prereqs=true), `baseline_run` plus
  `paired_gain` (the `<name>_gain` convention);
- trained models: `upstream_teacher` (model, source, identity, label), its logits kept in
  the store for reuse (`stored_teacher_outputs`), `trained_model`,
  `model_identity` (what keys a model without loading it), `check_model_path` (a path a
  user gave, refused before any work when missing, unfinished or made on other data),
  `teacher_architecture` (the network whose layer names a setting is checked against);
- the summary's teacher row: `teacher_row`.

Procedures never import each other: they name an upstream procedure here (`upstream`),
the same name-based lookup main.py dispatches with.
"""
from __future__ import annotations

import importlib
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import keras
import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

import datasets
from datasets.cache import Cache, digest
from models.factory import load_module
from procedures._inputs import build_model, data_key, network_name
from src.artifacts import check_fits, load_model, resolve_model_file
from src.errors import ArtifactError
from src.fit import eval_rows
from src.runstore import Run, file_digest, read_json
from src.schema.core import FACTORY, network_kind

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


def baseline_run(cfg: DictConfig, procedure: str, changes: dict[str, Any], why: str) -> dict:
    """The metrics of the run a result is compared with (the same settings but `changes`),
    with its folder as "dir"; produced first when missing."""
    run = upstream_run(procedure, upstream_config(cfg, procedure, changes), why=why)
    return {"dir": str(run.dir), **run.metrics()}


def paired_gain(metrics: dict, baseline: dict, name: str, *, validation: bool = True) -> None:
    """Add `<name>_gain` (test accuracy minus the baseline's, paired by seed and split) and,
    when both runs were validated on the same split, `val_<name>_gain` to metrics. Every
    `*_gain` is a paired figure: src/stats reports its interval as such."""
    metrics[f"{name}_gain"] = metrics["test_accuracy"] - baseline["test_accuracy"]
    if validation and metrics.get("val_accuracy") is not None and baseline.get("val_accuracy") is not None:
        metrics[f"val_{name}_gain"] = metrics["val_accuracy"] - baseline["val_accuracy"]


# ---- trained models ------------------------------------------------------------------
def model_train_config(cfg: DictConfig, what: str) -> DictConfig:
    """The train run that makes `cfg.model`: cfg's train.* and augment, except that a
    teacher trains for teacher.epochs and with teacher.augment when those are set (a
    well-trained teacher, a short student run; one teacher for students with and without
    mixup)."""
    changes = {}
    if what == "teacher" and cfg.teacher.epochs:
        changes["train.epochs"] = cfg.teacher.epochs
    if what == "teacher" and cfg.teacher.augment is not None:
        changes["augment"] = cfg.teacher.augment
    return upstream_config(cfg, "train", changes)


def check_model_path(path: str, dataset: str, what: str, key: str, class_names: tuple[str, ...] | None = None) -> Path:
    """The .keras file a user gave as `key`; a one-line error, before any work, when it is
    missing, an unfinished run, or a run folder trained on another data set or on other
    classes (a run on a user's data records them in its key)."""
    file = resolve_model_file(path, what)
    folder = Path(path).expanduser()
    if folder.is_dir() and (folder / "config.yaml").exists():
        trained_on = OmegaConf.select(OmegaConf.load(folder / "config.yaml"), "dataset.name")
        if trained_on and trained_on != dataset:
            raise ArtifactError(
                f"{key}={path} was trained on {trained_on}, but this run uses {dataset}: give a {what} trained on "
                f"{dataset} (or its .keras file, {key}={folder / file.name}, to use it anyway)")
        recorded = (read_json(folder / "key.json").get("dataset") or {}).get("class_names") \
            if (folder / "key.json").exists() else None
        if recorded is not None and class_names is not None and list(recorded) != list(class_names):
            raise ArtifactError(f"{key}={path} was trained on the classes {_first_difference(recorded, class_names)}: "
                                f"give a {what} trained on these classes, in this order")
    return file


def _first_difference(theirs: list[str], ours: tuple[str, ...]) -> str:
    """Where two class lists part, in a few words."""
    shown = ", ".join(theirs[:4]) + (", ..." if len(theirs) > 4 else "")
    if len(theirs) != len(ours):
        return f"{shown} ({len(theirs)}) but the data has {len(ours)}"
    i = next(i for i, (a, b) in enumerate(zip(theirs, ours)) if a != b)
    return f"{shown}, but class {i} is {theirs[i]!r} there and {ours[i]!r} here"


def model_label(cfg: DictConfig, path: str | None) -> str:
    """How a model appears in run folder names: its network's name, or "file" when given by path."""
    return "file" if path else network_name(cfg.model)


def model_display(cfg: DictConfig, path: str | None) -> str:
    """How a model appears in a summary: its network's name, or for a given path the
    network its run folder records (else the file name) and the path."""
    if not path:
        return network_name(cfg.model)
    folder = Path(path).expanduser()
    config = folder / "config.yaml"
    stored = OmegaConf.select(OmegaConf.load(config), "model") if folder.is_dir() and config.exists() else None
    name = network_name(stored) if stored else None
    return f"{name or folder.name} ({path})"


def model_identity(cfg: DictConfig, path: str | None, what: str = "teacher") -> str:
    """What identifies a model in an artifact key without loading it: the content hash of
    a user-given file, else the hash of the train run that makes it."""
    if path:
        return file_digest(resolve_model_file(path, what))
    return upstream("train").artifact(model_train_config(cfg, what)).hash


def trained_model(cfg: DictConfig, data: datasets.Dataset, path: str | None, what: str,
                  key: str = "teacher.path") -> tuple[keras.Model, str]:
    """A trained `cfg.model`: from `path` (run folder or .keras) when given, checked
    against the data, else the store's train run for cfg (trained first if needed).
    Returns (model, source)."""
    if path:
        check_model_path(path, data.name, what, key, data.class_names)
        source = str(path)
    else:
        source = str(upstream_run("train", model_train_config(cfg, what), why=f"this {what}").dir)
        if network_kind(cfg.model) == FACTORY:  # registers the custom layers its model.keras may hold
            load_module(cfg.model.target)
    model = load_model(source, what)
    check_fits(model, data.input_shape, data.num_classes, data.name, what)
    return model, source


@dataclass(frozen=True)
class Teacher:
    """The model a procedure distils from, and how it is named and keyed."""

    model: keras.Model
    source: str  # the run folder or file it was loaded from
    identity: str  # its part of an artifact key
    label: str  # in logs: "convnet", or "convnet (runs/.../convnet-ab12)" when given by path


def upstream_teacher(cfg: DictConfig, data: datasets.Dataset) -> Teacher:
    """cfg's teacher: teacher.path (refused when it was trained on another data set), else
    the store's train run of cfg.model, trained first when missing."""
    model, source = trained_model(cfg, data, cfg.teacher.path, "teacher")
    return Teacher(model, source, model_identity(cfg, cfg.teacher.path), model_display(cfg, cfg.teacher.path))


TEACHER_PASSES: Counter = Counter()  # examples the teacher was run on in this process, by split
OUTPUT_SPLITS = ("train", "val", "test")


def stored_teacher_outputs(cfg: DictConfig, teacher: Teacher, data: datasets.Dataset) -> dict[str, np.ndarray]:
    """The teacher's logits on the train, validation and test splits, memory-mapped from
    the store (cache/teacher_outputs/<key>/), keyed by the teacher and the data's identity
    and written once (in teacher.outputs: float16, or float32), a batch at a time: every
    student, baseline and sweep job on this teacher and data reads them."""
    dtype = cfg.teacher.outputs
    key = digest(teacher.identity, data_key(cfg), cfg.train.val_split, dtype)

    def write(folder: Path) -> None:
        for split in OUTPUT_SPLITS:
            x = getattr(data, f"x_{split}")
            out = np.lib.format.open_memmap(folder / f"{split}.npy", "w+", dtype, (len(x), teacher.model.output_shape[-1]))
            rows = eval_rows({"x": x})
            for start in range(0, len(x), rows):
                with np.errstate(over="ignore"):  # an overflow is refused just below, with its fix
                    out[start:start + rows] = np.asarray(teacher.model.predict_on_batch(x[start:start + rows]))
                if not np.isfinite(out[start:start + rows]).all():
                    raise ArtifactError(f"the teacher's logits on the {split} split do not fit {dtype} (larger than "
                                        f"{np.finfo(dtype).max:.0f}, or not finite); fix: teacher.outputs=float32")
            out.flush()
            TEACHER_PASSES[split] += len(x)
        log.info("the teacher's outputs on %s (%s) are stored for reuse", data.name, dtype)

    return Cache(cfg.paths.runs).folder("teacher_outputs", key, write)


def teacher_architecture(cfg: DictConfig, data: datasets.Dataset) -> keras.Model:
    """The teacher's network without training it (teacher.path loaded, else cfg.model
    built fresh): what the layer names a setting gives are checked against, before any work."""
    if cfg.teacher.path:
        return trained_model(cfg, data, cfg.teacher.path, "teacher")[0]
    return build_model(cfg.model, data, cfg.seed)


def teacher_row(cfg: DictConfig, **columns) -> dict:
    """The teacher's row of a summary table, from the config alone (a reused run)."""
    return {"model": f"teacher {model_display(cfg, cfg.teacher.path)}", **columns}
