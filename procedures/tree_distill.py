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
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

import datasets
from models.soft_tree import build_tree, tree_layer
from procedures._upstream import load_data, teacher_name, upstream, upstream_config, upstream_run
from src import runtime
from src.artifacts import load_model
from src.errors import ArtifactError, ConfigError
from src.fit import Fitter, make_optimizer, predict_logits, steps_per_epoch
from src.runstore import Run, atomic_write, locate
from src.tables import format_table
from src.tree import plots
from src.tree.evaluate import evaluate_tree, explain, sklearn_accuracy
from src.tree.loss import targets, tree_loss
from src.tree.memory import check_fits_memory

log = logging.getLogger(__name__)
TREE_KEYS = ("depth", "beta", "beta_mode", "predict", "penalty_strength", "penalty_decay", "penalty_window",
             "labels", "sklearn", "gif")


def fit_settings(cfg: DictConfig) -> dict:
    """The tree's training settings: tree.* where set, else train.*."""
    tree, train = cfg.tree, cfg.train
    pick = lambda own, shared: shared if own is None else own  # noqa: E731
    return {"epochs": pick(tree.epochs, train.epochs), "batch_size": pick(tree.batch_size, train.batch_size),
            "lr": pick(tree.lr, train.lr), "early_stopping": pick(tree.early_stopping, train.early_stopping),
            "optimizer": train.optimizer, "lr_schedule": train.lr_schedule, "val_split": train.val_split,
            "max_steps": train.max_steps}


def uses_teacher(cfg: DictConfig) -> bool:
    return cfg.tree.labels != "hard"


def artifact(cfg: DictConfig) -> Run:
    """Key: the tree's settings, its training settings, data, seed and (unless labels=hard)
    the teacher and the target settings. Pictures of explain.index are not in it."""
    tree = {k: cfg.tree[k] for k in TREE_KEYS}
    key = {"procedure": "tree_distill", "tree": tree, "fit": fit_settings(cfg), "dataset": cfg.dataset,
           "seed": cfg.seed, "precision": cfg.precision}
    name = f"depth{cfg.tree.depth}-{cfg.tree.labels}"
    if uses_teacher(cfg):
        tree.update(temperature=cfg.tree.temperature, baseline=cfg.tree.baseline)
        if cfg.tree.labels == "mixed":
            tree["soft_weight"] = cfg.tree.soft_weight
        key["teacher"] = upstream("train").model_identity(cfg, cfg.teacher.path)
        name += f"-from-{teacher_name(cfg, cfg.teacher.path)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "tree_distill", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    _check_inputs(cfg, data)
    teacher = teacher_source = None
    if uses_teacher(cfg):
        teacher, teacher_source = _teacher(cfg, data)
    hard = _hard_baseline(cfg) if uses_teacher(cfg) and cfg.tree.baseline else None
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _distill_tree(cfg, run_, data, teacher, teacher_source, hard),
                           f"tree_distill depth {cfg.tree.depth} ({cfg.tree.labels} labels)")
    index = cfg.tree.explain.index
    if index is not None:
        paths = explain(load_model(run_.dir, "tree"), data.x_test[index], data.class_names[int(data.y_test[index])],
                        index, data.class_names, run_.dir, correlation=cfg.tree.explain.correlation)
        log.info("decision path of test image %d: %s", index, ", ".join(str(p) for p in paths))
    _print_summary(cfg, metrics, run_)
    return metrics


def _check_inputs(cfg: DictConfig, data: datasets.Dataset) -> None:
    """Fail before any training: explain index outside the test split, a tree too big."""
    index = cfg.tree.explain.index
    if index is not None and index >= len(data.x_test):
        raise ConfigError(f"tree.explain.index={index} is outside the test split of {data.name} "
                          f"({len(data.x_test)} images, 0..{len(data.x_test) - 1}): pick an index in that range")
    check_fits_memory(cfg.tree.depth, int(np.prod(data.input_shape)), data.num_classes,
                      fit_settings(cfg)["batch_size"])


def _teacher(cfg: DictConfig, data: datasets.Dataset):
    """The teacher model (store or teacher.path); refuses one trained on another data set."""
    path = cfg.teacher.path
    folder = Path(path).expanduser() if path else None
    if folder is not None and folder.is_dir() and (folder / "config.yaml").exists():
        trained_on = OmegaConf.select(OmegaConf.load(folder / "config.yaml"), "dataset.name")
        if trained_on and trained_on != data.name:
            raise ArtifactError(
                f"teacher {path} was trained on {trained_on}, but this run distils on {data.name}: use a teacher "
                f"trained on {data.name} (or give its .keras file, teacher.path=<folder>/model.keras, to use it anyway)")
    return upstream("train").trained_model(cfg, data, path, "teacher")


def _hard_baseline(cfg: DictConfig) -> dict:
    """The same tree trained on hard labels: a tree_distill run of its own, reused."""
    baseline = upstream_config(cfg, "tree_distill", {"tree.labels": "hard", "tree.explain.index": None})
    run_ = upstream_run("tree_distill", baseline, why="the hard-label tree baseline")
    return {"dir": str(run_.dir), **run_.metrics()}


def _split(cfg: DictConfig, x, y, teacher, num_classes: int) -> dict:
    """Arrays of one split for the fit loop: inputs, labels and the tree's targets."""
    logits = predict_logits(teacher, x) if teacher is not None else None
    t = cfg.tree
    return {"x": x, "y": y, "t": targets(y, num_classes, logits, t.labels, t.temperature, t.soft_weight)}


def _fit(cfg, run_: Run, model, data, train: dict, val: dict):
    """Fit with the shared loop; with tree.gif, a frame of the tree after every epoch
    (assembled into learning.gif). Returns (fit result, seconds)."""
    s = fit_settings(cfg)
    batch = min(s["batch_size"], len(train["x"]))
    total = steps_per_epoch(len(train["x"]), batch, s["max_steps"]) * s["epochs"]
    loss = tree_loss(model, penalty_strength=cfg.tree.penalty_strength, penalty_decay=cfg.tree.penalty_decay,
                     penalty_window=cfg.tree.penalty_window)
    fitter = Fitter(model, loss, make_optimizer(s["optimizer"], s["lr"], s["lr_schedule"], total),
                    jit_compile=runtime.use_xla(cfg))
    frames = run_.file("frames")

    def draw_frame(epoch: int, row: dict) -> None:
        label = f"epoch {epoch}: val accuracy {row['val_accuracy']:.3f}" if "val_accuracy" in row else f"epoch {epoch}"
        _frame(model, data, frames / f"epoch-{epoch:04d}.png", label)

    if cfg.tree.gif:
        frames.mkdir(exist_ok=True)
        if not (frames / "epoch-0000.png").exists():
            _frame(model, data, frames / "epoch-0000.png", "initial tree")
    started = time.perf_counter()
    result = fitter.fit(train, epochs=s["epochs"], batch_size=batch, seed=cfg.seed, run=run_, val=val,
                        early_stopping=s["early_stopping"], max_steps=s["max_steps"],
                        on_epoch_end=draw_frame if cfg.tree.gif else None)
    seconds = time.perf_counter() - started
    if cfg.tree.gif:
        plots.gif(sorted(frames.glob("epoch-*.png")), run_.file("learning.gif"))
    return result, seconds


def _frame(model, data, path: Path, title: str) -> None:
    plots.tree_png(tree_layer(model).snapshot(), data.input_shape, path, title=title, max_width=3000)


def _distill_tree(cfg, run_: Run, data: datasets.Dataset, teacher, teacher_source, hard: dict | None) -> dict:
    s, t = fit_settings(cfg), cfg.tree
    train = _split(cfg, data.x_train, data.y_train, teacher, data.num_classes)
    val = _split(cfg, data.x_val, data.y_val, teacher, data.num_classes)
    log.info("tree_distill: depth-%d tree (%d leaves) on %s targets of %s%s; %d epochs, batch %d, lr %g",
             t.depth, 2 ** t.depth, t.labels, data.name,
             f" (teacher {teacher.name} at T={t.temperature})" if teacher is not None else "",
             s["epochs"], s["batch_size"], s["lr"])
    runtime.seed_everything(cfg.seed)
    model = build_tree(data.input_shape, data.num_classes, t.depth, t.beta, t.beta_mode, t.predict)
    result, seconds = _fit(cfg, run_, model, data, train, val)
    atomic_write(run_.file("model.keras"), lambda tmp: model.save(tmp))
    plots.tree_png(tree_layer(model).snapshot(), data.input_shape, run_.file("tree.png"),
                   title=f"depth-{t.depth} soft decision tree, {t.labels} labels, {data.name}")
    teacher_test = predict_logits(teacher, data.x_test) if teacher is not None else None
    val_accuracy = evaluate_tree(model, data.x_val, data.y_val, None, "val")["val_accuracy"] if len(data.x_val) else None
    metrics = {**evaluate_tree(model, data.x_test, data.y_test, teacher_test), "val_accuracy": val_accuracy,
               "labels": t.labels,
               "depth": t.depth, "leaves": 2 ** t.depth, "params": int(model.count_params()),
               "epochs": result.epochs_run, "best_epoch": result.best_epoch, "train_seconds": seconds,
               "seconds_per_epoch": seconds / max(result.epochs_run, 1), "train_examples": len(data.x_train),
               "mean_beta": float(np.mean(tree_layer(model).snapshot()["beta"]))}
    if result.history:
        metrics.update({f"final_{k}": v for k, v in result.history[-1].items() if k != "epoch"})
    if teacher is not None:
        metrics.update(teacher_test_accuracy=float(np.mean(np.argmax(teacher_test, -1) == data.y_test)),
                       teacher_source=teacher_source, teacher_params=int(teacher.count_params()))
    if hard is not None:
        metrics.update(hard_test_accuracy=hard["test_accuracy"], hard_run=hard["dir"],
                       distill_gain=metrics["test_accuracy"] - hard["test_accuracy"],
                       hard_val_accuracy=hard.get("val_accuracy"))
        if val_accuracy is not None and hard.get("val_accuracy") is not None:
            metrics["val_distill_gain"] = val_accuracy - hard["val_accuracy"]
    if t.sklearn:
        reused = hard.get("sklearn_test_accuracy") if hard else None
        metrics["sklearn_test_accuracy"] = reused if reused is not None else sklearn_accuracy(
            t.depth, cfg.seed, data.x_train, data.y_train, data.x_test, data.y_test)
    run_.finish(metrics, ["model.keras", "history.csv", "tree.png"] + (["learning.gif"] if t.gif else []))
    return metrics


def _print_summary(cfg: DictConfig, m: dict, run_: Run) -> None:
    rows = []
    if "teacher_test_accuracy" in m:
        rows.append({"model": f"teacher {teacher_name(cfg, cfg.teacher.path)}", "test acc": m["teacher_test_accuracy"]})
    if m.get("sklearn_test_accuracy") is not None:
        rows.append({"model": f"sklearn tree, {m['leaves']} leaves", "test acc": m["sklearn_test_accuracy"]})
    if "hard_test_accuracy" in m:
        rows.append({"model": "soft tree, hard labels", "test acc": m["hard_test_accuracy"]})
    distilled = " (distilled)" if cfg.tree.labels != "hard" else ""
    rows.append({"model": f"soft tree, {cfg.tree.labels} labels{distilled}", "test acc": m["test_accuracy"]})
    lines = [format_table(rows).rstrip()]
    if m.get("distill_gain") is not None:
        lines.append(f"distill_gain {m['distill_gain']:+.4f} (depth {cfg.tree.depth}, {cfg.tree.predict} prediction)")
    lines.append(f"artifacts: {run_.dir}")
    print("\n".join(lines), flush=True)
