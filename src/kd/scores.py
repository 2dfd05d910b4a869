"""How a distilled student is judged: accuracy on true labels at T = 1, top-1 agreement
with its teacher, and the share of the teacher's lead it recovers; on the validation
split (what choices are made on) and on the test split (the reported figure)."""
from __future__ import annotations

from src.fit import Evaluator, predict_logits
from src.losses import accuracy, agreement


def with_teacher_logits(teacher, arrays: dict) -> dict:
    """arrays plus the teacher's logits ("teacher_logits"), computed once in inference
    mode (kept when they are there already)."""
    return arrays if "teacher_logits" in arrays else {**arrays, "teacher_logits": predict_logits(teacher, arrays["x"])}


def split_metrics(model, arrays: dict, prefix: str) -> dict:
    """On one split ({"x", "y", "teacher_logits"}): the model's
    accuracy (T=1), the teacher's, and their top-1 agreement, as {prefix}_accuracy,
    teacher_{prefix}_accuracy, {prefix}_agreement."""

    def measures(batch: dict, training: bool) -> dict:
        logits = model(batch["x"], training=False)
        return {"accuracy": accuracy(batch["y"], logits), "teacher": accuracy(batch["y"], batch["teacher_logits"]),
                "agreement": agreement(logits, batch["teacher_logits"])}

    out = Evaluator(measures).evaluate(arrays)
    return {f"{prefix}_accuracy": out["accuracy"], f"teacher_{prefix}_accuracy": out["teacher"],
            f"{prefix}_agreement": out["agreement"]}


def gap_recovered(distilled: float, scratch: float, teacher: float) -> float | None:
    """(distilled - scratch) / (teacher - scratch): the share of the teacher's lead that
    distillation recovered. Undefined (None) when the teacher is no better than the
    student trained from scratch: there is no lead to recover."""
    gap = teacher - scratch
    return (distilled - scratch) / gap if gap > 1e-9 else None
