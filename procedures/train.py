"""train: fit one classifier (`model`) on `dataset` with the shared fit loop.

    python main.py procedure=train model=lenet dataset=fashion_mnist train.epochs=10

Artifact: <runs>/<dataset>/train/<model>-<hash>/model.keras with history.csv,
metrics.json (test accuracy of the final model, or of the best-on-validation one with
train.early_stopping) and TensorBoard events.

A teacher is a train run: `trained_model` and `model_identity` are how every other
procedure finds the model it builds on.
"""
from __future__ import annotations

import logging
import time

from omegaconf import DictConfig

from procedures._upstream import build_model, load_data, optimizer_for, upstream_config, upstream_run
from src import runtime
from src.artifacts import check_fits, load_model, resolve_model_file
from src.augment import augment_for, augment_key
from src.fit import Fitter
from src.losses import classifier_loss
from src.runstore import Run, atomic_write, file_digest, locate

log = logging.getLogger(__name__)


def artifact(cfg: DictConfig) -> Run:
    """Where the train run for cfg lives; the key is everything that changes the weights."""
    key = {"procedure": "train", "model": cfg.model, "dataset": cfg.dataset, "train": cfg.train,
           "seed": cfg.seed, "precision": cfg.precision, "augment": augment_key(cfg)}
    return locate(cfg.paths.runs, cfg.dataset.name, "train", cfg.model.name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _train(cfg, run_), f"train {cfg.model.name} on {cfg.dataset.name}")
    log.info("train %s on %s: test accuracy %.4f (%d epochs, %.1f s) -> %s", cfg.model.name, cfg.dataset.name,
             metrics["test_accuracy"], metrics["epochs"], metrics["train_seconds"], run_.dir)
    return metrics


def _train(cfg: DictConfig, run_: Run) -> dict:
    data = load_data(cfg)
    return fit_classifier(cfg, run_, build_model(cfg.model, data, cfg.seed), data)


def fit_classifier(cfg: DictConfig, run_: Run, model, data) -> dict:
    """Train `model` on cfg's data with cross-entropy, save it as run_'s model.keras, and
    finish the run with its test metrics."""
    fitter = Fitter(model, classifier_loss(model, augment_for(cfg)),
                    optimizer_for(cfg, len(data.x_train)), jit_compile=runtime.use_xla(cfg),
                    weight_decay=cfg.train.weight_decay)
    started = time.perf_counter()
    result = fitter.fit({"x": data.x_train, "y": data.y_train}, epochs=cfg.train.epochs,
                        batch_size=cfg.train.batch_size, seed=cfg.seed, run=run_,
                        val={"x": data.x_val, "y": data.y_val}, early_stopping=cfg.train.early_stopping,
                        max_steps=cfg.train.max_steps)
    seconds = time.perf_counter() - started
    val = fitter.evaluate({"x": data.x_val, "y": data.y_val}) if len(data.x_val) else {}
    test = fitter.evaluate({"x": data.x_test, "y": data.y_test})
    atomic_write(run_.file("model.keras"), lambda tmp: model.save(tmp))
    metrics = {
        "val_accuracy": val.get("accuracy"), "val_loss": val.get("loss"),
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "epochs": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "train_seconds": seconds, "resumed_from_epoch": result.resumed_from,
        "params": int(model.count_params()), "train_examples": len(data.x_train),
    }
    if result.history:
        metrics.update({f"final_{k}": v for k, v in result.history[-1].items() if k != "epoch"})
    run_.finish(metrics, ["model.keras", "history.csv"])
    return metrics


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


def trained_model(cfg: DictConfig, data, path: str | None, what: str):
    """A trained `cfg.model`: from `path` (run folder or .keras) when given, else the
    store's train run for cfg (trained first if needed). Returns (model, source)."""
    if path:
        source = str(path)
    else:
        source = str(upstream_run("train", model_train_config(cfg, what), why=f"this {what}").dir)
    model = load_model(source, what)
    check_fits(model, data.input_shape, data.num_classes, data.name, what)
    return model, source


def model_identity(cfg: DictConfig, path: str | None, what: str = "teacher") -> str:
    """What identifies a model in an artifact key without loading it: the content hash of
    a user-given file, else the hash of the train run that makes it."""
    if path:
        return file_digest(resolve_model_file(path))
    return artifact(model_train_config(cfg, what)).hash
