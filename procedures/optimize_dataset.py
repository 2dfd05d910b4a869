"""optimize_dataset: reconstruct a training set from a teacher and its activation
statistics alone (Lopes, Fenu & Starner 2017): inputs, started from noise, are optimised
until the frozen teacher's activations match targets sampled from the per-class stats.

    python main.py procedure=optimize_dataset model=lenet dataset=mnist_conv optimize.objective=top_layer
    python main.py procedure=optimize_dataset optimize.objective=all_layers optimize.classes=[0,1,2]
    python main.py procedure=optimize_dataset teacher.path=bn_teacher.keras optimize.objective=batchnorm optimize.tv_l2=2.5e-5 optimize.roll=2

The stats come from the store (compute_stats, produced first when missing); the
batchnorm objective (DeepInversion) needs none. Image priors (optimize.tv_l1, tv_l2, l2,
roll, flip: src/datafree/priors.py) combine with every objective. Output:
data.npz (x, intended labels y, class_names) and samples.png, one row per class.
The method: src/datafree and docs/optimize_dataset.md.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from procedures._inputs import load_data
from procedures._upstream import (model_identity, model_label, teacher_architecture, upstream, upstream_config,
                                  upstream_run, upstream_teacher)
from src import progress, runtime
from src.datafree.objectives import check_teacher, default_lr, make_objective
from src.datafree.plots import sample_grid_png
from src.datafree.priors import make_prior, make_view
from src.datafree.reconstruct import InputOptimizer, reconstruct_classes
from src.datafree.statistics import check_class_counts
from src.errors import ConfigError
from src.fit import predict_logits
from src.runstore import Run, is_done, locate, read_json
from src.schema.datafree import BATCHNORM, SPECTRAL_GRAPHS
from src.tables import print_summary

log = logging.getLogger(__name__)
REPORT = {"optimize_dataset": {
    "settings": ["model.name", "optimize.objective", "optimize.per_class", "optimize.steps", "optimize.classes"],
    "metrics": ["examples", "teacher_agreement", "final_loss", "seconds"]}}
PRIORS = ("tv_l1", "tv_l2", "l2", "roll", "flip")


def _settings(cfg: DictConfig) -> dict:
    """What determines the reconstruction (chunk size does not: examples are independent);
    the priors and bn_weight only when they are used."""
    op = cfg.optimize
    keys = ("objective", "per_class", "batch_size", "steps", "lr", "init", "clip", "jitter", "layer_weighting",
            "out_of_band")
    settings = {k: op[k] for k in keys}
    settings["classes"] = sorted(op.classes) if op.classes is not None else None
    if any(op[k] for k in PRIORS):
        settings["priors"] = {k: op[k] for k in PRIORS}
    if op.objective == BATCHNORM:
        settings["bn_weight"] = op.bn_weight
    return settings


def stats_config(cfg: DictConfig) -> DictConfig:
    """The compute_stats run this reconstruction reads: with the graph-Fourier statistics
    of a spectral objective, without them otherwise (they cost minutes for LeNet)."""
    return upstream_config(cfg, "compute_stats", {"stats.spectral": SPECTRAL_GRAPHS.get(cfg.optimize.objective)})


def artifact(cfg: DictConfig) -> Run:
    if cfg.optimize.objective == BATCHNORM:  # reads the teacher alone
        source = {"teacher": model_identity(cfg, cfg.teacher.path)}
    else:
        source = {"stats": upstream("compute_stats").artifact(stats_config(cfg)).hash}
    key = {"procedure": "optimize_dataset", **source, "optimize": _settings(cfg), "seed": cfg.seed}
    name = f"{model_label(cfg, cfg.teacher.path)}-{cfg.optimize.objective}"
    if cfg.optimize.classes is not None:
        name += "-classes" + "-".join(str(c) for c in sorted(cfg.optimize.classes))
    return locate(cfg.paths.runs, cfg.dataset.name, "optimize_dataset", name, key)


def reconstruction_files(cfg: DictConfig) -> list[Path] | None:
    """data.npz files that together cover every class: the full run, or finished shards
    (optimize.classes) of the same reconstruction. None when neither exists."""
    full = artifact(upstream_config(cfg, "optimize_dataset", {"optimize.classes": None}))
    if full.is_done():
        return [full.file("data.npz")]
    without_classes = lambda key: {**key, "optimize": {**key["optimize"], "classes": None}}  # noqa: E731
    shards, covered = [], set()
    for folder in sorted(full.dir.parent.glob("*")):  # the folder may not exist yet
        if folder == full.dir or not is_done(folder):
            continue
        key = read_json(folder / "key.json")
        classes = set(key["optimize"]["classes"] or ())
        if classes and not covered & classes and without_classes(key) == without_classes(full.key):
            shards.append(folder / "data.npz")
            covered |= classes
    if not shards:
        return None
    with np.load(shards[0], allow_pickle=False) as first:
        num_classes = len(first["class_names"])
    return shards if covered == set(range(num_classes)) else None


def ensure_stats_file(cfg: DictConfig) -> Path:
    return upstream_run("compute_stats", stats_config(cfg), why="optimize_dataset").file("stats.npz")


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    _check_teacher(cfg, data)
    teacher = upstream_teacher(cfg, data).model
    if cfg.optimize.objective == BATCHNORM:
        stats = {"count": None, "class_names": np.array(data.class_names)}
    else:
        stats = _load_stats(ensure_stats_file(cfg))
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _optimize(cfg, out, teacher, stats, data.input_shape), "optimize_dataset")
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """The reconstruction: how many inputs, how often the teacher sees the intended class."""
    rows = [{"objective": metrics["objective"], "inputs": metrics["examples"],
             "teacher agrees": metrics["teacher_agreement"], "final loss": metrics["final_loss"],
             "seconds": metrics["seconds"]}]
    return rows, []


def _check_teacher(cfg: DictConfig, data) -> None:
    """The objective can read the teacher: checked on its architecture, before it is trained."""
    objective = cfg.optimize.objective
    if objective in SPECTRAL_GRAPHS:
        upstream("compute_stats").check_teacher(stats_config(cfg), data)
    elif objective in (BATCHNORM, "all_layers_dropout"):
        check_teacher(objective, teacher_architecture(cfg, data), [])
    if objective == BATCHNORM:
        _check_batches_mix(cfg.optimize, data.num_classes)


def _check_batches_mix(op: DictConfig, num_classes: int) -> None:
    """Every BatchNorm batch mixes the classes only when a chunk holds a batch of each."""
    classes = len(op.classes) if op.classes is not None else num_classes
    if op.chunk_examples // op.batch_size < classes:
        raise ConfigError(f"optimize.objective=batchnorm mixes the {classes} classes in every batch, but "
                          f"optimize.chunk_examples={op.chunk_examples} holds only {op.chunk_examples // op.batch_size}"
                          f" batches of {op.batch_size}: set optimize.chunk_examples>={classes * op.batch_size}")


def _load_stats(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _optimize(cfg: DictConfig, out: Run, teacher, stats: dict, input_shape: tuple) -> dict:
    """stats: the compute_stats arrays, or for batchnorm only the class names."""
    op = cfg.optimize
    num_classes = len(stats["class_names"])
    classes = sorted(op.classes) if op.classes is not None else list(range(num_classes))
    if stats["count"] is not None:
        check_class_counts(stats["count"], classes, "the teacher's statistics")
    objective = make_objective(op, cfg.seed, teacher, stats)
    lr = op.lr if op.lr is not None else default_lr(teacher)
    optimizer = InputOptimizer(objective.loss, lr=lr, batch_size=op.batch_size, clip=op.clip,
                               jit_compile=runtime.use_xla(cfg), view=make_view(op, cfg.seed), prior=make_prior(op))
    batches = len(classes) * -(-op.per_class // op.batch_size)
    started = time.perf_counter()
    x, y, loss = reconstruct_classes(objective, optimizer, classes, op.per_class, op.batch_size, op.chunk_examples,
                                     op.steps, input_shape, progress.bar(batches, unit_name="batch"))
    seconds = time.perf_counter() - started
    predicted = np.argmax(predict_logits(teacher, x), axis=-1)
    class_names = stats["class_names"]
    out.write("data.npz", lambda tmp: np.savez(tmp, x=x.astype(np.float32), y=y, class_names=class_names))
    sample_grid_png(x, y, [str(n) for n in class_names], out.file("samples.png"),
                    f"{teacher.name}: {op.objective}, {op.steps} steps")
    metrics = {"examples": int(len(x)), "classes": classes, "objective": op.objective, "lr": lr,
               "seconds": seconds, "sample_steps_per_second": batches * op.batch_size * op.steps / seconds,
               "final_loss": float(loss.mean()),
               "final_loss_per_class": {int(c): float(loss[y == c].mean()) for c in classes},
               "teacher_agreement": float(np.mean(predicted == y)),
               "input_range": [float(x.min()), float(x.max())]}
    out.finish(metrics)
    return metrics


