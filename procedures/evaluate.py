"""evaluate: test-split accuracy, per-class accuracy, loss and a confusion matrix for a
model from the store (the train run of `model`, trained first if missing) or any
`.keras` file / run folder given as evaluate.path.

    python main.py procedure=evaluate model=lenet dataset=fashion_mnist
    python main.py procedure=evaluate evaluate.path=/some/where/model.keras dataset=mnist
"""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig
from sklearn.metrics import confusion_matrix

from procedures._inputs import data_key, load_data
from procedures._upstream import model_identity, model_label, trained_model
from src import runtime
from src.fit import Evaluator, predict_logits
from src.losses import classifier_loss
from src.plots import confusion_matrix_png
from src.runstore import Run, locate
from src.tables import print_summary

REPORT = {"evaluate": {"settings": ["model.name", "evaluate.path"], "metrics": ["test_accuracy", "test_loss"]}}


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "evaluate", "model": model_identity(cfg, cfg.evaluate.path, "model"), "dataset": data_key(cfg)}
    return locate(cfg.paths.runs, cfg.dataset.name, "evaluate", model_label(cfg, cfg.evaluate.path), key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    model, source = trained_model(cfg, data, cfg.evaluate.path, "model", key="evaluate.path")
    out = artifact(cfg)
    with out.lock():
        out.start(cfg, force=True)  # evaluation is cheap: always fresh
        test = Evaluator(classifier_loss(model)).evaluate(data.test)
        predicted = np.argmax(predict_logits(model, data.x_test), axis=-1)
        matrix = confusion_matrix(data.y_test, predicted, labels=np.arange(data.num_classes))
        per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
        confusion_matrix_png(matrix, data.class_names, out.file("confusion_matrix.png"),
                             f"{model.name} on {data.name}: accuracy {test['accuracy']:.4f}")
        metrics = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "source": source,
                   "per_class_accuracy": {name: float(a) for name, a in zip(data.class_names, per_class)},
                   "confusion_matrix": matrix.tolist()}
        out.finish(metrics)
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """The model's test accuracy and loss; its three weakest classes."""
    rows = [{"model": metrics["source"], "test acc": metrics["test_accuracy"], "test loss": metrics["test_loss"]}]
    worst = sorted(metrics["per_class_accuracy"].items(), key=lambda kv: kv[1])[:3]
    return rows, ["weakest classes: " + ", ".join(f"{name} {accuracy:.3f}" for name, accuracy in worst)]
