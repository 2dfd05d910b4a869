"""optimize_dataset: reconstruct a training set from a teacher and its activation
statistics alone (Lopes, Fenu & Starner 2017): inputs, started from noise, are optimised
until the frozen teacher's activations match targets sampled from the per-class stats.

    python main.py procedure=optimize_dataset model=lenet dataset=mnist_conv optimize.objective=top_layer
    python main.py procedure=optimize_dataset optimize.objective=all_layers optimize.classes=[0,1,2]

The stats come from the store (compute_stats, produced first when missing). Output:
data.npz (x, intended labels y, class_names) and samples.png, one row per class.
See docs/optimize_dataset.md for the objectives and how they differ from the seed.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig

from procedures import compute_stats
from procedures._common import derive, ensure, load_data, trained_model
from src import runtime
from src.activations import ActivationTap
from src.errors import ArtifactError, ConfigError
from src.gaussian import cholesky_with_jitter, sample
from src.plots import sample_grid_png
from src.reconstruct import InputOptimizer, relu_mse
from src.runstore import Run, atomic_write, is_done, locate, read_json

log = logging.getLogger(__name__)
LAYERWISE = ("top_layer", "all_layers", "all_layers_dropout")


def default_lr(teacher: keras.Model) -> float:
    """The paper's learning rates: 0.07 for fully connected teachers, 0.09 for LeNet."""
    convolutional = any(isinstance(layer, keras.layers.Conv2D) for layer in teacher.layers)
    return 0.09 if convolutional else 0.07


def _settings(cfg: DictConfig) -> dict:
    """What determines the reconstruction (chunk size does not: examples are independent)."""
    op = cfg.optimize
    keys = ("objective", "per_class", "batch_size", "steps", "lr", "init", "clip", "jitter")
    settings = {k: op[k] for k in keys}
    settings["classes"] = sorted(op.classes) if op.classes is not None else None
    return settings


SPECTRAL_GRAPHS = {"spectral_all_layers": "all_layers", "spectral_layer_pairs": "layer_pairs"}


def stats_config(cfg: DictConfig) -> DictConfig:
    """The compute_stats run this reconstruction reads: with the graph-Fourier statistics
    of a spectral objective, without them otherwise (they cost minutes for LeNet)."""
    return derive(cfg, "compute_stats", **{"stats.spectral": SPECTRAL_GRAPHS.get(cfg.optimize.objective)})


def artifact(cfg: DictConfig) -> Run:
    stats_run = compute_stats.artifact(stats_config(cfg))
    key = {"procedure": "optimize_dataset", "stats": stats_run.hash, "optimize": _settings(cfg), "seed": cfg.seed}
    name = f"{'file' if cfg.teacher.path else cfg.model.name}-{cfg.optimize.objective}"
    if cfg.optimize.classes is not None:
        name += "-classes" + "-".join(str(c) for c in sorted(cfg.optimize.classes))
    return locate(cfg.paths.runs, cfg.dataset.name, "optimize_dataset", name, key)


def reconstruction_files(cfg: DictConfig) -> list[Path] | None:
    """data.npz files that together cover every class: the full run, or finished shards
    (optimize.classes) of the same reconstruction. None when neither exists."""
    full = artifact(derive(cfg, "optimize_dataset", **{"optimize.classes": None}))
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
    stats_file = compute_stats.artifact(stats_config(cfg)).file("stats.npz")
    if not shards or not stats_file.exists():
        return None
    with np.load(stats_file, allow_pickle=False) as stats:
        num_classes = len(stats["count"])
    return shards if covered == set(range(num_classes)) else None


def ensure_stats_file(cfg: DictConfig) -> Path:
    return ensure("compute_stats", stats_config(cfg), why="optimize_dataset").file("stats.npz")


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    teacher, _ = trained_model(cfg, data, cfg.teacher.path, "teacher")
    stats_file = ensure_stats_file(cfg)
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _optimize(cfg, run_, teacher, _load_stats(stats_file), data.input_shape),
                           "optimize_dataset")
    log.info("optimize_dataset %s (%s): %d inputs, teacher agrees with the intended class on %.1f%%, %.1f s -> %s",
             teacher.name, cfg.optimize.objective, metrics["examples"], 100 * metrics["teacher_agreement"], metrics["seconds"],
             run_.dir)
    return metrics


def _load_stats(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _optimize(cfg: DictConfig, run_: Run, teacher, stats: dict, input_shape: tuple) -> dict:
    op = cfg.optimize
    num_classes = len(stats["count"])
    classes = sorted(op.classes) if op.classes is not None else list(range(num_classes))
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ConfigError(f"optimize.classes={list(op.classes)}: classes {bad} do not exist (0..{num_classes - 1})")
    objective = _objective(cfg, teacher, stats)
    lr = op.lr if op.lr is not None else default_lr(teacher)
    optimizer = InputOptimizer(objective.loss, lr=lr, batch_size=op.batch_size, clip=op.clip,
                               jit_compile=runtime.use_xla(cfg))
    batches_per_class = -(-op.per_class // op.batch_size)
    batch_list = [(c, b) for c in classes for b in range(batches_per_class)]
    per_chunk = max(1, op.chunk_examples // op.batch_size)
    xs, ys, losses = [], [], []
    started = time.perf_counter()
    progress = keras.utils.Progbar(len(batch_list), unit_name="batch")
    for start in range(0, len(batch_list), per_chunk):
        chunk = batch_list[start:start + per_chunk]
        x0, labels, targets = objective.prepare(chunk, input_shape)
        where = f" (classes {sorted(set(c for c, _ in chunk))})"
        x, loss = optimizer.run(tf.constant(x0), targets, op.steps, where)
        xs.append(x.numpy())
        ys.append(labels)
        losses.append(loss.numpy())
        progress.update(start + len(chunk))
    seconds = time.perf_counter() - started
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    keep = _first_per_class(y, op.per_class)  # the last batch of a class may overshoot per_class
    x, y, loss = x[keep], y[keep], np.concatenate(losses)[keep]
    predicted = np.argmax(teacher.predict(x, batch_size=1024, verbose=0), axis=-1)
    class_names = stats["class_names"]
    atomic_write(run_.file("data.npz"), lambda tmp: np.savez(tmp, x=x.astype(np.float32), y=y, class_names=class_names))
    sample_grid_png(x, y, [str(n) for n in class_names], run_.file("samples.png"),
                    f"{teacher.name}: {op.objective}, {op.steps} steps")
    metrics = {"examples": int(len(x)), "classes": classes, "objective": op.objective, "lr": lr,
               "seconds": seconds, "sample_steps_per_second": len(batch_list) * op.batch_size * op.steps / seconds,
               "final_loss": float(loss.mean()),
               "final_loss_per_class": {int(c): float(loss[y == c].mean()) for c in classes},
               "teacher_agreement": float(np.mean(predicted == y)),
               "input_range": [float(x.min()), float(x.max())]}
    run_.finish(metrics, ["data.npz", "samples.png"])
    return metrics


def _first_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    order = np.argsort(y, kind="stable")
    rank = np.empty_like(order)
    counts = np.bincount(y)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(y)) - np.repeat(starts, counts)
    return np.sort(np.nonzero(rank < per_class)[0])


def _objective(cfg: DictConfig, teacher, stats: dict):
    objective = cfg.optimize.objective
    if objective in LAYERWISE:
        return LayerwiseObjective(cfg, teacher, stats)
    if "spectral/graphs" not in stats:
        raise ArtifactError(f"optimize.objective={objective} needs spectral statistics and these stats have "
                            f"none: recompute them with stats.spectral={SPECTRAL_GRAPHS[objective]}")
    return SpectralObjective(cfg, teacher, stats)


class _StartPoints:
    """Start inputs and intended labels of a chunk of (class, batch) pairs. Every batch
    draws from its own generator, seeded by (seed, class, batch), so the result does not
    depend on how batches are grouped into chunks."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.op = cfg.optimize

    def start(self, c: int, b: int, input_shape: tuple) -> tuple[np.random.Generator, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.cfg.seed, c, b])
        x0 = rng.normal(self.op.init[0], self.op.init[1], (self.op.batch_size, *input_shape)).astype(np.float32)
        return rng, x0, np.full(self.op.batch_size, c, np.int64)


class SpectralObjective(_StartPoints):
    """spectral_all_layers / spectral_layer_pairs: the teacher's activations, projected on
    each class's kept graph-Fourier coefficients, against samples of their per-class
    Gaussian (src/spectral.py, docs/spectral.md). The labels travel as the first target
    so that each example is projected on its own class's coefficients."""

    def __init__(self, cfg: DictConfig, teacher, stats: dict):
        from src import spectral
        super().__init__(cfg)
        self.spectral = spectral
        self.stats = stats
        self.loss_terms = spectral.SpectralLoss(stats)
        self.tap = ActivationTap(teacher, self.loss_terms.layers, float(stats["temperature"]))
        self.factors = {g: spectral.spectral_cholesky(stats, g, self.op.jitter)[0] for g in self.loss_terms.graphs}
        self.loss = lambda x, targets: self.loss_terms.per_example(self.tap(x), targets[0], targets[1:])

    def prepare(self, chunk: list[tuple[int, int]], input_shape: tuple) -> tuple[np.ndarray, np.ndarray, list]:
        x0, labels, targets = [], [], [[] for _ in self.loss_terms.graphs]
        for c, b in chunk:
            rng, start, label = self.start(c, b, input_shape)
            x0.append(start)
            labels.append(label)
            for i, g in enumerate(self.loss_terms.graphs):
                targets[i].append(self.spectral.sample_spectral_targets(self.stats, g, label, rng,
                                                                        chol=self.factors[g]))
        labels = np.concatenate(labels)
        tensors = [tf.constant(labels)] + [tf.constant(np.concatenate(t), tf.float32) for t in targets]
        return np.concatenate(x0), labels, tensors


class LayerwiseObjective(_StartPoints):
    """top_layer / all_layers / all_layers_dropout: per-example relu-MSE between the
    teacher's activations and Gaussian samples of the class's stats."""

    def __init__(self, cfg: DictConfig, teacher, stats: dict):
        super().__init__(cfg)
        all_layers = [str(n) for n in stats["layers"]]
        self.layers = ["logits"] if self.op.objective == "top_layer" else all_layers
        if "logits" not in all_layers:
            raise ArtifactError(f"the stats have no 'logits' layer (they have {all_layers}); "
                                "recompute them with stats.layers=null")
        self.temperature = float(stats["temperature"])
        self.factors = {}
        for name in self.layers:
            if f"cov/{name}" in stats:
                self.factors[name] = [cholesky_with_jitter(cov, self.op.jitter, f"class {c} covariance of {name}")[0]
                                      for c, cov in enumerate(stats[f"cov/{name}"])]
            else:
                self.factors[name] = list(stats[f"std/{name}"].astype(np.float64))
        self.means = {name: stats[f"mean/{name}"].astype(np.float64) for name in self.layers}
        self.dropout = self.op.objective == "all_layers_dropout"
        if self.dropout:
            self.forward = DropoutChain(teacher, self.layers, self.temperature)
            self.loss = lambda x, targets: relu_mse(self.forward(x, targets[len(self.layers):]),
                                                    targets[: len(self.layers)])
        else:
            self.tap = ActivationTap(teacher, self.layers, self.temperature)
            self.loss = lambda x, targets: relu_mse(self.tap(x), targets)

    def prepare(self, chunk: list[tuple[int, int]], input_shape: tuple) -> tuple[np.ndarray, np.ndarray, list]:
        """Start points, intended labels and targets of a chunk of (class, batch) pairs."""
        size = self.op.batch_size
        x0, labels, targets = [], [], [[] for _ in self.layers]
        masks = []
        for c, b in chunk:
            rng, start, label = self.start(c, b, input_shape)
            x0.append(start)
            labels.append(label)
            for i, name in enumerate(self.layers):
                targets[i].append(sample(self.means[name][c], np.asarray(self.factors[name][c]), size, rng))
            if self.dropout:
                masks.append(self.forward.draw_masks(size, rng))
        tensors = [tf.constant(np.concatenate(t)) for t in targets]
        if self.dropout:
            tensors += [tf.constant(np.concatenate([m[i] for m in masks])) for i in range(len(masks[0]))]
        return np.concatenate(x0), np.concatenate(labels), tensors


class DropoutChain:
    """The teacher run layer by layer with fixed dropout masks (for all_layers_dropout).

    Masks are drawn once per batch and kept for all steps; they use inverted-dropout
    scaling (mask / keep), exactly what the teacher saw in training. The seed multiplied
    without 1/keep (anchors/datafree.md §7.4), shrinking the activations it matched.
    Needs a teacher whose layers form one chain (all of this project's models do).
    """

    def __init__(self, teacher, layers: list[str], temperature: float):
        self.layers = teacher.layers[1:] if isinstance(teacher.layers[0], keras.layers.InputLayer) else teacher.layers
        for previous, layer in zip(self.layers, self.layers[1:]):
            if layer.input is not previous.output:
                raise ArtifactError(f"all_layers_dropout needs a teacher whose layers form one chain; "
                                    f"'{layer.name}' does not follow '{previous.name}'")
        self.dropouts = [layer for layer in self.layers if isinstance(layer, keras.layers.Dropout)]
        if not self.dropouts:
            raise ArtifactError(f"teacher '{teacher.name}' has no Dropout layers: all_layers_dropout is for "
                                "teachers trained with dropout (e.g. hinton1200); use all_layers")
        self.tapped = list(layers)
        self.temperature = temperature

    def draw_masks(self, size: int, rng: np.random.Generator) -> list[np.ndarray]:
        masks = []
        for layer in self.dropouts:
            units = int(np.prod(layer.input.shape[1:]))
            keep = 1.0 - layer.rate
            masks.append(((rng.random((size, units)) < keep) / keep).astype(np.float32))
        return masks

    def __call__(self, x: tf.Tensor, masks: list[tf.Tensor]) -> list[tf.Tensor]:
        outputs, next_mask = {}, iter(masks)
        for layer in self.layers:
            if isinstance(layer, keras.layers.Dropout):
                x = tf.reshape(tf.reshape(x, [tf.shape(x)[0], -1]) * next(next_mask), tf.shape(x))
            else:
                x = layer(x, training=False)
            if layer.name in self.tapped:
                flat = tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])
                outputs[layer.name] = flat / self.temperature if layer.name == "logits" else flat
        return [outputs[name] for name in self.tapped]
