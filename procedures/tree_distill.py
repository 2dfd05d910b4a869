"""tree_distill: distil a trained network (`model`, convnet by default) into a soft binary
decision tree (Frosst & Hinton 2017), with the baselines and pictures that judge it.

    python main.py procedure=tree_distill                            # convnet -> depth-4 tree, mnist_sample
    python main.py procedure=tree_distill dataset=fashion_mnist tree.depth=8
    python main.py procedure=tree_distill tree.explain.index=17      # decision path of test image 17

Targets: tree.labels=hard (one-hot), soft (the teacher's softmax at tree.temperature) or
mixed. Baselines: the same tree on hard labels (itself a tree_distill run, labels=hard,
reused across temperatures and teachers) and a scikit-learn tree with as many leaves.
Artifacts: model.keras, history.csv, tree.png, learning.gif (+ frames/), and, for
tree.explain.index, path-<i>.png and tree-path-<i>.png (drawn on every call, also when the
run itself is reused). The method: src/tree and docs/tree_distill.md.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

import datasets
from models.soft_tree import build_tree, tree_layer
from procedures._inputs import data_key, load_data, optimizer_for
from procedures._upstream import (Teacher, baseline_run, model_identity, model_label, paired_gain, teacher_row,
                                  upstream_teacher)
from src import runtime
from src.artifacts import load_model
from src.errors import ConfigError
from src.fit import Fitter, predict_logits
from src.runstore import Run, locate
from src.tree import plots
from src.tree.evaluate import evaluate_tree, explain, sklearn_accuracy
from src.tree.loss import targets, tree_loss
from src.tables import print_summary
from src.tree.memory import check_fits_memory

log = logging.getLogger(__name__)
TREE_KEYS = ("depth", "beta", "beta_mode", "predict", "penalty_strength", "penalty_decay", "penalty_window",
             "labels", "sklearn", "gif")
FIT_KEYS = ("epochs", "batch_size", "lr", "early_stopping", "optimizer", "lr_schedule", "lr_milestones", "lr_decay",
            "max_steps")
REPORT = {"tree_distill": {
    "settings": ["model.name", "tree.depth", "tree.labels", "tree.temperature"],
    "metrics": ["val_accuracy", "val_distill_gain", "test_accuracy", "hard_test_accuracy", "sklearn_test_accuracy",
                "teacher_test_accuracy", "distill_gain", "agreement", "seconds_per_epoch"]}}


def uses_teacher(cfg: DictConfig) -> bool:
    return cfg.tree.labels != "hard"


def artifact(cfg: DictConfig) -> Run:
    """Key: the tree's settings, its training settings, data, seed and (unless labels=hard)
    the teacher and the target settings. Pictures of explain.index are not in it."""
    tree = {k: cfg.tree[k] for k in TREE_KEYS}
    key = {"procedure": "tree_distill", "tree": tree, "fit": {k: cfg.tree[k] for k in FIT_KEYS},
           "val_split": cfg.train.val_split, "dataset": data_key(cfg), "seed": cfg.seed, "precision": cfg.precision}
    name = f"depth{cfg.tree.depth}-{cfg.tree.labels}"
    if uses_teacher(cfg):
        tree.update(temperature=cfg.tree.temperature, baseline=cfg.tree.baseline)
        if cfg.tree.labels == "mixed":
            tree["soft_weight"] = cfg.tree.soft_weight
        key["teacher"] = model_identity(cfg, cfg.teacher.path)
        name += f"-from-{model_label(cfg, cfg.teacher.path)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "tree_distill", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    _check_inputs(cfg, data)
    teacher = upstream_teacher(cfg, data) if uses_teacher(cfg) else None
    hard = baseline_run(cfg, "tree_distill", {"tree.labels": "hard", "tree.explain.index": None},
                        "the hard-label tree baseline") if uses_teacher(cfg) and cfg.tree.baseline else None
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _distill_tree(cfg, out, data, teacher, hard),
                          f"tree_distill depth {cfg.tree.depth} ({cfg.tree.labels} labels)")
    index = cfg.tree.explain.index
    if index is not None:
        paths = explain(load_model(out.dir, "tree"), data.x_test[index], data.class_names[int(data.y_test[index])],
                        index, data.class_names, out.dir, correlation=cfg.tree.explain.correlation)
        log.info("decision path of test image %d: %s", index, ", ".join(str(p) for p in paths))
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """The teacher, the scikit-learn tree, the hard-label tree and this one; the paired gain."""
    m, rows = metrics, []
    if "teacher_test_accuracy" in m:
        rows.append(teacher_row(cfg, **{"test acc": m["teacher_test_accuracy"]}))
    if m.get("sklearn_test_accuracy") is not None:
        rows.append({"model": f"sklearn tree, {m['leaves']} leaves", "test acc": m["sklearn_test_accuracy"]})
    if "hard_test_accuracy" in m:
        rows.append({"model": "soft tree, hard labels", "test acc": m["hard_test_accuracy"]})
    distilled = " (distilled)" if cfg.tree.labels != "hard" else ""
    rows.append({"model": f"soft tree, {cfg.tree.labels} labels{distilled}", "test acc": m["test_accuracy"]})
    notes = []
    if m.get("distill_gain") is not None:
        notes.append(f"distill_gain {m['distill_gain']:+.4f} (depth {cfg.tree.depth}, {cfg.tree.predict} prediction)")
    return rows, notes


def _check_inputs(cfg: DictConfig, data: datasets.Dataset) -> None:
    """Fail before any training: explain index outside the test split, a tree too big."""
    index = cfg.tree.explain.index
    if index is not None and index >= len(data.x_test):
        raise ConfigError(f"tree.explain.index={index} is outside the test split of {data.name} "
                          f"({len(data.x_test)} images, 0..{len(data.x_test) - 1}): pick an index in that range")
    check_fits_memory(cfg.tree.depth, int(np.prod(data.input_shape)), data.num_classes, cfg.tree.batch_size)


def _with_targets(cfg: DictConfig, split: dict, teacher: Teacher | None, num_classes: int) -> dict:
    """One split's arrays for the fit loop: inputs, labels and the tree's target distributions."""
    logits = predict_logits(teacher.model, split["x"]) if teacher is not None else None
    t = cfg.tree
    return {**split, "targets": targets(split["y"], num_classes, logits, t.labels, t.temperature, t.soft_weight)}


def _fit(cfg, out: Run, model, data, train: dict, val: dict):
    """Fit with the shared loop and the one optimizer factory (tree.* training settings);
    with tree.gif, a frame of the tree after every epoch (assembled into learning.gif)."""
    t = cfg.tree
    loss = tree_loss(model, penalty_strength=t.penalty_strength, penalty_decay=t.penalty_decay,
                     penalty_window=t.penalty_window)
    fitter = Fitter(model, loss, optimizer_for(cfg, len(train["x"]), t), jit_compile=runtime.use_xla(cfg))
    frames = out.file("frames")

    def draw_frame(epoch: int, row: dict) -> None:
        label = f"epoch {epoch}: val accuracy {row['val_accuracy']:.3f}" if "val_accuracy" in row else f"epoch {epoch}"
        _frame(model, data, frames / f"epoch-{epoch:04d}.png", label)

    if t.gif and not (frames / "epoch-0000.png").exists():
        _frame(model, data, frames / "epoch-0000.png", "initial tree")
    result = fitter.fit(train, epochs=t.epochs, batch_size=min(t.batch_size, len(train["x"])), seed=cfg.seed,
                        run=out, val=val, early_stopping=t.early_stopping, max_steps=t.max_steps,
                        on_epoch_end=draw_frame if t.gif else None)
    if t.gif:
        plots.gif(sorted(frames.glob("epoch-*.png")), out.file("learning.gif"))
    return result


def _frame(model, data, path: Path, title: str) -> None:
    plots.tree_png(tree_layer(model).snapshot(), data.input_shape, path, title=title, max_width=3000)


def _distill_tree(cfg, out: Run, data: datasets.Dataset, teacher: Teacher | None, hard: dict | None) -> dict:
    t = cfg.tree
    train = _with_targets(cfg, data.train, teacher, data.num_classes)
    val = _with_targets(cfg, data.val, teacher, data.num_classes)
    log.info("tree_distill: depth-%d tree (%d leaves) on %s targets of %s%s; %d epochs, batch %d, lr %g",
             t.depth, 2 ** t.depth, t.labels, data.name,
             f" (teacher {teacher.label} at T={t.temperature})" if teacher is not None else "",
             t.epochs, t.batch_size, t.lr)
    runtime.seed_everything(cfg.seed)
    model = build_tree(data.input_shape, data.num_classes, t.depth, t.beta, t.beta_mode, t.predict)
    result = _fit(cfg, out, model, data, train, val)
    out.save_model(model)
    plots.tree_png(tree_layer(model).snapshot(), data.input_shape, out.file("tree.png"),
                   title=f"depth-{t.depth} soft decision tree, {t.labels} labels, {data.name}")
    teacher_test = predict_logits(teacher.model, data.x_test) if teacher is not None else None
    val_accuracy = evaluate_tree(model, data.x_val, data.y_val, None, "val")["val_accuracy"] if len(data.x_val) else None
    metrics = {**evaluate_tree(model, data.x_test, data.y_test, teacher_test), "val_accuracy": val_accuracy,
               "labels": t.labels, "depth": t.depth, "leaves": 2 ** t.depth, "params": int(model.count_params()),
               "epochs": result.epochs_run, "best_epoch": result.best_epoch, "train_seconds": result.seconds,
               "seconds_per_epoch": result.seconds / max(result.epochs_run, 1), "train_examples": len(data.x_train),
               "mean_beta": float(np.mean(tree_layer(model).snapshot()["beta"])), **result.final}
    if teacher is not None:
        metrics.update(teacher_test_accuracy=float(np.mean(np.argmax(teacher_test, -1) == data.y_test)),
                       teacher_source=teacher.source, teacher_params=int(teacher.model.count_params()))
    if hard is not None:
        metrics.update(hard_test_accuracy=hard["test_accuracy"], hard_run=hard["dir"],
                       hard_val_accuracy=hard.get("val_accuracy"))
        paired_gain(metrics, hard, "distill")
    if t.sklearn:
        reused = hard.get("sklearn_test_accuracy") if hard else None
        metrics["sklearn_test_accuracy"] = reused if reused is not None else sklearn_accuracy(
            t.depth, cfg.seed, data.x_train, data.y_train, data.x_test, data.y_test)
    out.finish(metrics)
    return metrics
