"""train: fit one classifier (`model`) on `dataset` with the shared fit loop.

    python main.py procedure=train model=lenet dataset=fashion_mnist train.epochs=10

Artifact: <runs>/<dataset>/train/<model>-<hash>/model.keras with history.csv,
metrics.json (test accuracy of the final model, or of the best-on-validation one with
train.early_stopping) and TensorBoard events. A teacher is a train run: every other
procedure finds it through procedures/_upstream.py (`upstream_teacher`).
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from procedures._inputs import build_model, data_key, load_data, network_key, network_name, optimizer_for
from src import runtime
from src.augment import augment_for, augment_key
from src.fit import Fitter
from src.losses import classifier_loss
from src.runstore import Run, locate
from src.tables import print_summary

log = logging.getLogger(__name__)
REPORT = {"train": {"settings": ["model.name", "train.epochs", "train.lr", "train.batch_size"],
                    "metrics": ["val_accuracy", "test_accuracy", "epochs", "train_seconds"]}}


def artifact(cfg: DictConfig) -> Run:
    """Where the train run for cfg lives; the key is everything that changes the weights."""
    key = {"procedure": "train", "model": network_key(cfg.model), "dataset": data_key(cfg), "train": cfg.train,
           "seed": cfg.seed, "precision": cfg.precision, "augment": augment_key(cfg)}
    return locate(cfg.paths.runs, cfg.dataset.name, "train", network_name(cfg.model), key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    out = artifact(cfg)
    # built before the run's folder is made, so that a network that cannot be built leaves none
    model = None if out.is_done() and not cfg.force else build_model(cfg.model, load_data(cfg), cfg.seed)
    metrics = out.produce(cfg, lambda: fit_classifier(cfg, out, model, load_data(cfg)),
                          f"train {network_name(cfg.model)} on {cfg.dataset.name}")
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    rows = [{"model": network_name(cfg.model), "epochs": metrics["epochs"], "val acc": metrics.get("val_accuracy"),
             "test acc": metrics["test_accuracy"], "seconds": metrics["train_seconds"]}]
    return rows, []


def fit_classifier(cfg: DictConfig, out: Run, model, data) -> dict:
    """Train `model` on cfg's data with cross-entropy, save it as the run's model.keras,
    and finish the run with its test metrics."""
    augment = augment_for(cfg)
    fitter = Fitter(model, classifier_loss(model, augment), optimizer_for(cfg, len(data.x_train)),
                    jit_compile=runtime.use_xla(cfg), weight_decay=cfg.train.weight_decay, random_sources=(augment,))
    result = fitter.fit(data.train, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, seed=cfg.seed, run=out,
                        val=data.val, early_stopping=cfg.train.early_stopping, max_steps=cfg.train.max_steps)
    val = fitter.evaluate(data.val) if len(data.x_val) else {}
    test = fitter.evaluate(data.test)
    out.save_model(model)
    metrics = {
        "val_accuracy": val.get("accuracy"), "val_loss": val.get("loss"),
        "test_accuracy": test["accuracy"], "test_loss": test["loss"],
        "epochs": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "train_seconds": result.seconds, "resumed_from_epoch": result.resumed_from,
        "params": int(model.count_params()), "train_examples": len(data.x_train),
        "streamed": result.streamed_rows is not None, **result.final,
    }
    out.finish(metrics)
    return metrics
