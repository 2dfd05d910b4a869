"""compute_stats: per-class statistics of a teacher's activations on its training data,
the "metadata" that data-free distillation (Lopes et al. 2017) reconstructs inputs from.

    python main.py procedure=compute_stats model=hinton1200 dataset=fashion_mnist
    python main.py procedure=compute_stats model=lenet dataset=mnist_conv stats.max_cov_dim=4096

For every chosen layer (stats.layers, to which the output layer is added; default every
hidden pre-activation, models.activation_layers) and class, with the logits (the output
layer's, whatever its name) divided by stats.temperature: mean, standard deviation, and the full
covariance where the layer has at most stats.max_cov_dim units (diagonal above). Sums are
accumulated in float64, one single-class batch at a time (one a^T a matmul per batch, no
per-example loop). With stats.spectral=all_layers|layer_pairs the graph-Fourier statistics
of that spectral objective are added (src/datafree/spectral). Output: stats.npz and mean_activations.png.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from omegaconf import DictConfig

import models
from procedures._inputs import data_key, load_data
from procedures._upstream import Teacher, model_identity, model_label, teacher_architecture, upstream_teacher
from src import runtime
from src.artifacts import check_layers
from src.datafree.objectives import check_teacher as check_objective
from src.datafree.plots import mean_activations_png
from src.datafree.statistics import check_class_counts, layer_statistics, spectral_statistics
from src.datafree.taps import ActivationTap
from src.runstore import Run, locate
from src.schema.datafree import SPECTRAL_GRAPHS
from src.tables import print_summary

log = logging.getLogger(__name__)
REPORT = {"compute_stats": {"settings": ["model.name", "stats.temperature", "stats.max_cov_dim", "stats.spectral"],
                            "metrics": ["examples", "seconds", "layer_seconds"]}}


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "compute_stats", "teacher": model_identity(cfg, cfg.teacher.path),
           "dataset": data_key(cfg), "val_split": cfg.train.val_split, "stats": cfg.stats}
    return locate(cfg.paths.runs, cfg.dataset.name, "compute_stats", model_label(cfg, cfg.teacher.path), key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    check_class_counts(np.bincount(data.y_train, minlength=data.num_classes), cfg.optimize.classes,
                       f"the training split of {data.name}")
    check_teacher(cfg, data)
    teacher = upstream_teacher(cfg, data)
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _compute(cfg, out, data, teacher), "compute_stats")
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """A row per layer: its units and whether its covariance is full or diagonal."""
    full = set(metrics["full_covariance"])
    rows = [{"layer": name, "units": units, "covariance": "full" if name in full else "diagonal"}
            for name, units in metrics["units"].items()]
    return rows, [f"{metrics['examples']} training examples, {metrics['seconds']:.1f} s"
                  + (f", with the {metrics['spectral']} graph-Fourier statistics" if metrics["spectral"] else "")]


def check_teacher(cfg: DictConfig, data) -> None:
    """The layers stats.layers names exist and, with stats.spectral, the teacher's graph
    can be made: checked on its architecture, before a teacher is trained."""
    if not (cfg.stats.layers or cfg.stats.spectral):
        return
    teacher = teacher_architecture(cfg, data)
    if cfg.stats.layers:
        check_layers(teacher, list(cfg.stats.layers), "the teacher", "stats.layers")
    if cfg.stats.spectral:
        objective = next(name for name, graph in SPECTRAL_GRAPHS.items() if graph == cfg.stats.spectral)
        check_objective(objective, teacher, tapped_layers(cfg, teacher))


def tapped_layers(cfg: DictConfig, teacher) -> list[str]:
    """stats.layers (default every hidden pre-activation), then the output layer."""
    layers = list(cfg.stats.layers) if cfg.stats.layers else models.activation_layers(teacher)
    if models.output_layer(teacher) not in layers:  # the objectives all match the logits
        layers.append(models.output_layer(teacher))
    return layers


def _compute(cfg: DictConfig, out: Run, data, teacher: Teacher) -> dict:
    source, teacher = teacher.source, teacher.model
    layers = tapped_layers(cfg, teacher)
    tap = ActivationTap(teacher, layers, cfg.stats.temperature)
    started = time.perf_counter()
    arrays = layer_statistics(tap, data.x_train, data.y_train, data.num_classes, cfg.stats)
    layer_seconds = time.perf_counter() - started
    if cfg.stats.spectral:
        arrays.update(spectral_statistics(teacher, tap, data.x_train, data.y_train, data.num_classes, cfg.stats))
    seconds = time.perf_counter() - started
    arrays.update({"teacher_source": np.array(source), "class_names": np.array(data.class_names)})
    out.write("stats.npz", lambda tmp: np.savez(tmp, **arrays))
    mean_activations_png({n: arrays[f"mean/{n}"] for n in layers}, data.class_names,
                         out.file("mean_activations.png"), f"{teacher.name} on {data.name}")
    metrics = {"seconds": seconds, "layer_seconds": layer_seconds, "examples": int(len(data.x_train)),
               "layers": layers, "units": dict(zip(layers, tap.dims)),
               "full_covariance": [n for n in layers if f"cov/{n}" in arrays],
               "spectral": cfg.stats.spectral, "teacher_source": source}
    out.finish(metrics)
    return metrics
