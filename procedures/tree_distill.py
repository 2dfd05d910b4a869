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
run itself is reused). The math and the differences from the seed: docs/tree_distill.md.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

import datasets
from models.soft_tree import build_tree, route, training_bytes, tree_layer
from procedures._common import derive, ensure, load_data, model_identity, trained_model
from src import runtime, tree_plots
from src.artifacts import load_model
from src.errors import ArtifactError, ConfigError
from src.fit import Evaluator, Fitter, make_optimizer, steps_per_epoch
from src.losses import accuracy, agreement
from src.runstore import Run, atomic_write, locate
from src.tree_loss import targets, tree_loss

log = logging.getLogger(__name__)
TREE_KEYS = ("depth", "beta", "beta_mode", "predict", "penalty_strength", "penalty_decay", "penalty_window",
             "labels", "sklearn", "gif")


def fit_settings(cfg: DictConfig) -> dict:
    """The tree's training settings: tree.* where set, else train.*."""
    t, tr = cfg.tree, cfg.train
    pick = lambda own, shared: shared if own is None else own  # noqa: E731
    return {"epochs": pick(t.epochs, tr.epochs), "batch_size": pick(t.batch_size, tr.batch_size),
            "lr": pick(t.lr, tr.lr), "early_stopping": pick(t.early_stopping, tr.early_stopping),
            "optimizer": tr.optimizer, "lr_schedule": tr.lr_schedule, "val_split": tr.val_split,
            "max_steps": tr.max_steps}


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
        key["teacher"] = model_identity(cfg, cfg.teacher.path)
        name += f"-from-{'file' if cfg.teacher.path else cfg.model.name}"
    return locate(cfg.paths.runs, cfg.dataset.name, "tree_distill", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    check_inputs(cfg, data)
    teacher = teacher_source = None
    if uses_teacher(cfg):
        teacher, teacher_source = _teacher(cfg, data)
    hard = _hard_baseline(cfg) if uses_teacher(cfg) and cfg.tree.baseline else None
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _make(cfg, run_, data, teacher, teacher_source, hard),
                           f"tree_distill depth {cfg.tree.depth} ({cfg.tree.labels} labels)")
    if cfg.tree.explain.index is not None:
        explain(cfg, run_, data, cfg.tree.explain.index)
    _print_summary(cfg, metrics, run_)
    return metrics


def available_bytes() -> int:
    """Memory this process can still get (MemAvailable), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_inputs(cfg: DictConfig, data: datasets.Dataset) -> None:
    """Fail before any training: explain index outside the test split, a tree too big."""
    index = cfg.tree.explain.index
    if index is not None and index >= len(data.x_test):
        raise ConfigError(f"tree.explain.index={index} is outside the test split of {data.name} "
                          f"({len(data.x_test)} images, 0..{len(data.x_test) - 1}): pick an index in that range")
    features, batch = int(np.prod(data.input_shape)), fit_settings(cfg)["batch_size"]
    need, have = training_bytes(cfg.tree.depth, features, data.num_classes, batch), available_bytes()
    if need > have:
        fits = max((d for d in range(1, cfg.tree.depth) if training_bytes(d, features, data.num_classes, batch) <= have),
                   default=None)
        raise ConfigError(
            f"tree.depth={cfg.tree.depth}: {2 ** cfg.tree.depth - 1} inner nodes on {features} input features need "
            f"about {need / 2 ** 30:,.1f} GiB to train (batch {batch}), but {have / 2 ** 30:.1f} GiB are available: "
            + (f"use tree.depth<={fits}" if fits else "use a smaller tree.depth or batch size"))


def _teacher(cfg: DictConfig, data: datasets.Dataset):
    """The teacher model (store or teacher.path); refuses one trained on another data set."""
    path = cfg.teacher.path
    if path and Path(path).expanduser().is_dir() and (Path(path).expanduser() / "config.yaml").exists():
        from omegaconf import OmegaConf
        trained_on = OmegaConf.select(OmegaConf.load(Path(path).expanduser() / "config.yaml"), "dataset.name")
        if trained_on and trained_on != data.name:
            raise ArtifactError(
                f"teacher {path} was trained on {trained_on}, but this run distils on {data.name}: use a teacher "
                f"trained on {data.name} (or give its .keras file, teacher.path=<folder>/model.keras, to use it anyway)")
    return trained_model(cfg, data, path, "teacher")


def _hard_baseline(cfg: DictConfig) -> dict:
    """The same tree trained on hard labels: a tree_distill run of its own, reused."""
    upstream = derive(cfg, "tree_distill", **{"tree.labels": "hard", "tree.explain.index": None})
    run_ = ensure("tree_distill", upstream, why="the hard-label tree baseline")
    return {"dir": str(run_.dir), **run_.metrics()}


def _arrays(cfg, x, y, teacher_logits, num_classes) -> dict:
    t = cfg.tree
    return {"x": x, "y": y, "t": targets(y, num_classes, teacher_logits, t.labels, t.temperature, t.soft_weight)}


def _logits(teacher, x) -> np.ndarray | None:
    if teacher is None:
        return None
    if len(x) == 0:
        return np.zeros((0, teacher.output_shape[-1]), "float32")
    return np.asarray(teacher.predict(x, batch_size=1024, verbose=0), "float32")


def _train(cfg, run_: Run, model, data, train: dict, val: dict) -> tuple[list[dict], int, int | None, float]:
    """Fit with the shared loop; with tree.gif, a frame of the tree after every epoch
    (assembled into learning.gif): (history, epochs, best, seconds)."""
    s = fit_settings(cfg)
    batch = min(s["batch_size"], len(train["x"]))
    total = steps_per_epoch(len(train["x"]), batch, s["max_steps"]) * s["epochs"]
    fitter = Fitter(model, tree_loss(model, penalty_strength=cfg.tree.penalty_strength,
                                     penalty_decay=cfg.tree.penalty_decay, penalty_window=cfg.tree.penalty_window),
                    make_optimizer(s["optimizer"], s["lr"], s["lr_schedule"], total), jit_compile=runtime.use_xla(cfg))
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
        tree_plots.gif(sorted(frames.glob("epoch-*.png")), run_.file("learning.gif"))
    return result.history, result.epochs_run, result.best_epoch, seconds


def _frame(model, data, path: Path, title: str) -> None:
    tree_plots.tree_png(tree_layer(model).snapshot(), data.input_shape, path, title=title, max_width=3000)


def _make(cfg, run_: Run, data: datasets.Dataset, teacher, teacher_source, hard: dict | None) -> dict:
    s = fit_settings(cfg)
    train = _arrays(cfg, data.x_train, data.y_train, _logits(teacher, data.x_train), data.num_classes)
    val = _arrays(cfg, data.x_val, data.y_val, _logits(teacher, data.x_val), data.num_classes)
    log.info("tree_distill: depth-%d tree (%d leaves) on %s targets of %s%s; %d epochs, batch %d, lr %g",
             cfg.tree.depth, 2 ** cfg.tree.depth, cfg.tree.labels, data.name,
             f" (teacher {teacher.name} at T={cfg.tree.temperature})" if teacher is not None else "",
             s["epochs"], s["batch_size"], s["lr"])
    runtime.seed_everything(cfg.seed)
    model = build_tree(data.input_shape, data.num_classes, cfg.tree.depth, cfg.tree.beta, cfg.tree.beta_mode,
                       cfg.tree.predict)
    history, epochs, best, seconds = _train(cfg, run_, model, data, train, val)
    atomic_write(run_.file("model.keras"), lambda tmp: model.save(tmp))
    tree_plots.tree_png(tree_layer(model).snapshot(), data.input_shape, run_.file("tree.png"),
                        title=f"depth-{cfg.tree.depth} soft decision tree, {cfg.tree.labels} labels, {data.name}")
    teacher_test = _logits(teacher, data.x_test)
    metrics = {**evaluate_tree(model, data.x_test, data.y_test, teacher_test), "labels": cfg.tree.labels,
               "depth": cfg.tree.depth, "leaves": 2 ** cfg.tree.depth, "params": int(model.count_params()),
               "epochs": epochs, "best_epoch": best, "train_seconds": seconds,
               "seconds_per_epoch": seconds / max(epochs, 1), "train_examples": len(data.x_train),
               "mean_beta": float(np.mean(tree_layer(model).snapshot()["beta"]))}
    if history:
        metrics.update({f"final_{k}": v for k, v in history[-1].items() if k != "epoch"})
    if teacher is not None:
        metrics.update(teacher_test_accuracy=float(np.mean(np.argmax(teacher_test, -1) == data.y_test)),
                       teacher_source=teacher_source, teacher_params=int(teacher.count_params()))
    if hard is not None:
        metrics.update(hard_test_accuracy=hard["test_accuracy"], hard_run=hard["dir"],
                       distill_gain=metrics["test_accuracy"] - hard["test_accuracy"])
    if cfg.tree.sklearn:
        reused = hard.get("sklearn_test_accuracy") if hard else None
        metrics["sklearn_test_accuracy"] = reused if reused is not None else sklearn_accuracy(cfg, data)
    files = ["model.keras", "history.csv", "tree.png"] + (["learning.gif"] if cfg.tree.gif else [])
    run_.finish(metrics, files)
    return metrics


def evaluate_tree(model, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray | None) -> dict:
    """Test accuracy by the tree's own rule and by both rules, agreement with the teacher,
    and how many leaves the test set actually lands in."""
    layer = tree_layer(model)
    arrays = {"x": x, "y": y}
    if teacher_logits is not None:
        arrays["t"] = teacher_logits

    def measures(batch: dict, training: bool) -> dict:
        routed = route(model, batch["x"])
        out = {}
        for rule in ("max_path", "mixture"):
            logits = layer.logits(routed, rule)
            out[rule] = accuracy(batch["y"], logits)
            if "t" in batch:
                out[f"{rule}_agreement"] = agreement(logits, batch["t"])
        out["loss"] = out[layer.predict]
        return out

    out = Evaluator(measures).evaluate(arrays)
    leaves = np.concatenate([np.argmax(np.asarray(route(model, x[i:i + 1024])["log_leaf"]), -1)
                             for i in range(0, len(x), 1024)]) if len(x) else np.zeros(0)
    metrics = {"test_accuracy": out["loss"], "test_accuracy_max_path": out["max_path"],
               "test_accuracy_mixture": out["mixture"], "leaves_used": int(len(np.unique(leaves)))}
    if teacher_logits is not None:
        metrics["agreement"] = out[f"{layer.predict}_agreement"]
    return metrics


def sklearn_accuracy(cfg: DictConfig, data: datasets.Dataset) -> float:
    """Test accuracy of a scikit-learn DecisionTreeClassifier with 2^depth leaves (best-first)."""
    from sklearn.tree import DecisionTreeClassifier
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    clf = DecisionTreeClassifier(max_leaf_nodes=2 ** cfg.tree.depth, random_state=cfg.seed)
    clf.fit(flat(data.x_train), data.y_train)
    return float(np.mean(clf.predict(flat(data.x_test)) == data.y_test))


def explain(cfg: DictConfig, run_: Run, data: datasets.Dataset, index: int) -> list[Path]:
    """Decision path of test image `index` from the saved model: path-<i>.png, tree-path-<i>.png."""
    model = load_model(run_.dir, "tree")
    image = data.x_test[index]
    routed = {k: np.asarray(v) for k, v in route(model, image[None]).items()}
    decision = tree_plots.decision_path(routed)
    snapshot = tree_layer(model).snapshot()
    label = data.class_names[int(data.y_test[index])]
    title = f"test image {index} (label {label}): argmax path, leaf {decision['leaf']}"
    paths = [tree_plots.path_png(snapshot, image, decision, data.class_names, run_.file(f"path-{index}.png"),
                                 title=title, correlation=cfg.tree.explain.correlation),
             tree_plots.tree_png(snapshot, data.input_shape, run_.file(f"tree-path-{index}.png"), title=title,
                                 decision=decision)]
    log.info("decision path of test image %d: %s", index, ", ".join(str(p) for p in paths))
    return paths


def _print_summary(cfg: DictConfig, m: dict, run_: Run) -> None:
    rows = []
    if "teacher_test_accuracy" in m:
        rows.append((f"teacher {'(file)' if cfg.teacher.path else cfg.model.name}", m["teacher_test_accuracy"]))
    if m.get("sklearn_test_accuracy") is not None:
        rows.append((f"sklearn tree, {m['leaves']} leaves", m["sklearn_test_accuracy"]))
    if "hard_test_accuracy" in m:
        rows.append(("soft tree, hard labels", m["hard_test_accuracy"]))
    rows.append((f"soft tree, {cfg.tree.labels} labels" + (" (distilled)" if cfg.tree.labels != "hard" else ""),
                 m["test_accuracy"]))
    width = max(len(r[0]) for r in rows)
    lines = [f"{'model'.ljust(width)}  test acc"] + [f"{n.ljust(width)}  {a:8.4f}" for n, a in rows]
    if m.get("distill_gain") is not None:
        lines.append(f"distill_gain {m['distill_gain']:+.4f} (depth {cfg.tree.depth}, {cfg.tree.predict} prediction)")
    lines.append(f"artifacts: {run_.dir}")
    print("\n".join(lines), flush=True)

