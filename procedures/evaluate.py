"""evaluate: test-split accuracy, per-class accuracy, loss and a confusion matrix for a
model from the store (the train run of `model`, trained first if missing) or any
`.keras` file / run folder given as evaluate.path.

    python main.py procedure=evaluate model=lenet dataset=fashion_mnist
    python main.py procedure=evaluate evaluate.path=/some/where/model.keras dataset=mnist
"""
from __future__ import annotations

import logging

import numpy as np
from omegaconf import DictConfig
from sklearn.metrics import confusion_matrix

from procedures._upstream import load_data, upstream
from src import runtime
from src.fit import Evaluator, predict_logits
from src.losses import classifier_loss
from src.plots import confusion_matrix_png
from src.runstore import Run, locate

log = logging.getLogger(__name__)


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "evaluate", "model": upstream("train").model_identity(cfg, cfg.evaluate.path, "model"),
           "dataset": cfg.dataset}
    name = cfg.model.name if not cfg.evaluate.path else "file"
    return locate(cfg.paths.runs, cfg.dataset.name, "evaluate", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    model, source = upstream("train").trained_model(cfg, data, cfg.evaluate.path, "model")
    run_ = artifact(cfg)
    with run_.lock():
        run_.start(cfg, force=True)  # evaluation is cheap: always fresh
        test = Evaluator(classifier_loss(model)).evaluate({"x": data.x_test, "y": data.y_test})
        logits = predict_logits(model, data.x_test)
        predicted = np.argmax(logits, axis=-1)
        matrix = confusion_matrix(data.y_test, predicted, labels=np.arange(data.num_classes))
        per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
        confusion_matrix_png(matrix, data.class_names, run_.file("confusion_matrix.png"),
                             f"{model.name} on {data.name}: accuracy {test['accuracy']:.4f}")
        metrics = {"test_accuracy": test["accuracy"], "test_loss": test["loss"], "source": source,
                   "per_class_accuracy": {name: float(a) for name, a in zip(data.class_names, per_class)},
                   "confusion_matrix": matrix.tolist()}
        run_.finish(metrics, ["confusion_matrix.png"])
    log.info("evaluate %s on %s: test accuracy %.4f, loss %.4f -> %s", model.name, data.name,
             test["accuracy"], test["loss"], run_.dir)
    worst = sorted(metrics["per_class_accuracy"].items(), key=lambda kv: kv[1])[:3]
    log.info("weakest classes: %s", ", ".join(f"{n} {a:.3f}" for n, a in worst))
    return metrics
