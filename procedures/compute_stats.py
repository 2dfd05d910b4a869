"""compute_stats: per-class statistics of a teacher's activations on its training data,
the "metadata" that data-free distillation (Lopes et al. 2017) reconstructs inputs from.

    python main.py procedure=compute_stats model=hinton1200 dataset=fashion_mnist
    python main.py procedure=compute_stats model=lenet dataset=mnist_conv stats.max_cov_dim=4096

For every chosen layer (stats.layers; default every hidden pre-activation plus the
logits divided by stats.temperature) and class: mean, standard deviation, and the full
covariance where the layer has at most stats.max_cov_dim units (diagonal above). Sums are
accumulated in float64, one single-class batch at a time (one a^T a matmul per batch, no
per-example loop). With stats.spectral=all_layers|layer_pairs the graph-Fourier statistics
of that spectral objective are added (src/spectral.py). Output: stats.npz and mean_activations.png.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

import models
from procedures._common import load_data, model_identity, trained_model
from src import runtime
from src.activations import ActivationTap
from src.plots import mean_activations_png
from src.runstore import Run, atomic_write, locate

log = logging.getLogger(__name__)


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "compute_stats", "teacher": model_identity(cfg, cfg.teacher.path), "dataset": cfg.dataset,
           "val_split": cfg.train.val_split, "stats": cfg.stats}
    name = "file" if cfg.teacher.path else cfg.model.name
    return locate(cfg.paths.runs, cfg.dataset.name, "compute_stats", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    teacher, source = trained_model(cfg, data, cfg.teacher.path, "teacher")
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _compute(cfg, run_, data, teacher, source), "compute_stats")
    log.info("compute_stats %s on %s: units per layer %s, %d examples, %.1f s -> %s", teacher.name, data.name,
             metrics["units"], metrics["examples"], metrics["seconds"], run_.dir)
    return metrics


def _compute(cfg: DictConfig, run_: Run, data, teacher, source: str) -> dict:
    layers = list(cfg.stats.layers) if cfg.stats.layers else models.activation_layers(teacher)
    tap = ActivationTap(teacher, layers, cfg.stats.temperature)
    started = time.perf_counter()
    arrays = layer_statistics(tap, data.x_train, data.y_train, data.num_classes, cfg.stats)
    layer_seconds = time.perf_counter() - started
    if cfg.stats.spectral:
        arrays.update(_spectral(teacher, tap, data, cfg.stats))
    seconds = time.perf_counter() - started
    arrays.update({"teacher_source": np.array(source), "class_names": np.array(data.class_names)})
    atomic_write(run_.file("stats.npz"), lambda tmp: np.savez(tmp, **arrays))
    mean_activations_png({n: arrays[f"mean/{n}"] for n in layers}, data.class_names,
                         run_.file("mean_activations.png"), f"{teacher.name} on {data.name}")
    metrics = {"seconds": seconds, "layer_seconds": layer_seconds, "examples": int(len(data.x_train)),
               "layers": layers, "units": dict(zip(layers, tap.dims)),
               "full_covariance": [n for n in layers if f"cov/{n}" in arrays],
               "spectral": cfg.stats.spectral, "teacher_source": source}
    run_.finish(metrics, ["stats.npz", "mean_activations.png"])
    return metrics


def layer_statistics(tap: ActivationTap, x: np.ndarray, y: np.ndarray, num_classes: int, stats: DictConfig) -> dict:
    """Per class and layer: count, mean, std and (where small enough) full covariance.

    Examples are grouped by class, so every batch belongs to one class and a single
    a^T a per batch gives that class's second moments: no per-example work in Python and
    no wasted work on other classes' zeros. Sums are float64.
    """
    full = [d <= stats.max_cov_dim for d in tap.dims]

    @tf.function(reduce_retracing=True)
    def moments(batch):
        out = []
        for a, is_full in zip(tap(batch), full):
            a = tf.cast(a, tf.float64)
            second = tf.matmul(a, a, transpose_a=True) if is_full else tf.reduce_sum(a * a, axis=0)
            out.append((tf.reduce_sum(a, axis=0), second))
        return out

    count = np.zeros(num_classes, np.int64)
    first = [np.zeros((num_classes, d)) for d in tap.dims]
    second = [np.zeros((num_classes, d, d) if f else (num_classes, d)) for d, f in zip(tap.dims, full)]
    for c in range(num_classes):
        members = x[y == c]
        count[c] = len(members)
        for start in range(0, len(members), stats.batch_size):
            for i, (s1, s2) in enumerate(moments(tf.constant(members[start:start + stats.batch_size]))):
                first[i][c] += s1.numpy()
                second[i][c] += s2.numpy()

    arrays = {"layers": np.array(tap.layers), "temperature": np.float64(tap.temperature), "count": count}
    n = np.maximum(count, 2).astype(np.float64)
    for name, d, f, s1, s2, shape in zip(tap.layers, tap.dims, full, first, second, tap.shapes):
        mean = s1 / n[:, None]
        if f:  # unbiased covariance from float64 sums: (S2 - n mu mu^T) / (n - 1)
            cov = (s2 - n[:, None, None] * mean[:, :, None] * mean[:, None, :]) / (n - 1)[:, None, None]
            cov = (cov + np.transpose(cov, (0, 2, 1))) / 2
            var = np.einsum("cii->ci", cov)
            arrays[f"cov/{name}"] = cov.astype(np.float32)
        else:
            var = (s2 - n[:, None] * mean ** 2) / (n - 1)[:, None]
        arrays[f"mean/{name}"] = mean.astype(np.float32)
        arrays[f"std/{name}"] = np.sqrt(np.maximum(var, 0)).astype(np.float32)
        arrays[f"shape/{name}"] = np.array(shape, np.int64)
    return arrays


def _spectral(teacher, tap: ActivationTap, data, stats: DictConfig) -> dict:
    """Graph-Fourier statistics for one graph layout (docs/spectral.md)."""
    from src import spectral

    blocks = spectral.connectivity_blocks(teacher, tap.layers)
    bases = spectral.graph_bases(blocks, tap.dims, stats.spectral, tap.layers)

    def batches():  # the tap's output is what spectral_stats expects (it applies the ReLU)
        for start in range(0, len(data.x_train), stats.batch_size):
            acts = tap(tf.constant(data.x_train[start:start + stats.batch_size]))
            yield [a.numpy() for a in acts], data.y_train[start:start + stats.batch_size]

    return spectral.spectral_stats(batches, bases, stats.spectral_keep, data.num_classes)
