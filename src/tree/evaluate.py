"""Judging a trained soft decision tree: test accuracy by both prediction rules, agreement
with its teacher, the leaves it uses, the scikit-learn tree of the same size, and the
decision path of one input."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.soft_tree import route, tree_layer
from src.fit import Evaluator, batched
from src.losses import accuracy, agreement
from src.tree import plots


def evaluate_tree(model, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray | None,
                  split: str = "test") -> dict:
    """On one split: accuracy by the tree's own rule and by both rules
    ({split}_accuracy, {split}_accuracy_max_path, {split}_accuracy_mixture), agreement with
    the teacher, and how many leaves the split's examples actually land in."""
    layer = tree_layer(model)
    arrays = {"x": x, "y": y}
    if teacher_logits is not None:
        arrays["teacher_logits"] = teacher_logits

    def measures(batch: dict, training: bool) -> dict:
        routed = route(model, batch["x"])
        out = {}
        for rule in ("max_path", "mixture"):
            logits = layer.logits(routed, rule)
            out[rule] = accuracy(batch["y"], logits)
            if "teacher_logits" in batch:
                out[f"{rule}_agreement"] = agreement(logits, batch["teacher_logits"])
        return out

    out = Evaluator(measures).evaluate(arrays)
    leaves = batched(lambda part: np.argmax(np.asarray(route(model, part)["log_leaf"]), -1), x)
    metrics = {f"{split}_accuracy": out[layer.predict], f"{split}_accuracy_max_path": out["max_path"],
               f"{split}_accuracy_mixture": out["mixture"], "leaves_used": int(len(np.unique(leaves)))}
    if teacher_logits is not None:
        metrics["agreement"] = out[f"{layer.predict}_agreement"]
    return metrics


def sklearn_accuracy(depth: int, seed: int, x_train, y_train, x_test, y_test) -> float:
    """Test accuracy of a scikit-learn DecisionTreeClassifier with 2^depth leaves (best-first)."""
    from sklearn.tree import DecisionTreeClassifier
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    clf = DecisionTreeClassifier(max_leaf_nodes=2 ** depth, random_state=seed)
    clf.fit(flat(x_train), y_train)
    return float(np.mean(clf.predict(flat(x_test)) == y_test))


def explain(model, image: np.ndarray, label: str, index: int, class_names, folder: Path,
            correlation: bool = True) -> list[Path]:
    """Decision path of one test image: path-<index>.png and tree-path-<index>.png in folder."""
    routed = {k: np.asarray(v) for k, v in route(model, image[None]).items()}
    decision = plots.decision_path(routed)
    snapshot = tree_layer(model).snapshot()
    title = f"test image {index} (label {label}): argmax path, leaf {decision['leaf']}"
    return [plots.path_png(snapshot, image, decision, class_names, folder / f"path-{index}.png",
                           title=title, correlation=correlation),
            plots.tree_png(snapshot, image.shape, folder / f"tree-path-{index}.png", title=title,
                           decision=decision)]
