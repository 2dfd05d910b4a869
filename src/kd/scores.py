"""How a distilled student is judged: test accuracy on true labels at T = 1, top-1
agreement with its teacher, and the share of the teacher's lead it recovers."""
from __future__ import annotations

from src.fit import Evaluator, predict_logits
from src.losses import accuracy, agreement


def with_teacher_logits(teacher, arrays: dict) -> dict:
    """arrays plus the teacher's logits ("t"), computed once in inference mode."""
    return {**arrays, "t": predict_logits(teacher, arrays["x"])}


def test_metrics(model, teacher, x, y, prefix: str) -> dict:
    """Accuracy on the test split (true labels, T=1) and top-1 agreement with the teacher."""
    arrays = with_teacher_logits(teacher, {"x": x, "y": y})

    def measures(batch: dict, training: bool) -> dict:
        logits = model(batch["x"], training=False)
        return {"accuracy": accuracy(batch["y"], logits), "teacher": accuracy(batch["y"], batch["t"]),
                "agreement": agreement(logits, batch["t"])}

    out = Evaluator(measures).evaluate(arrays)
    return {f"{prefix}_accuracy": out["accuracy"], "teacher_test_accuracy": out["teacher"],
            f"{prefix}_agreement": out["agreement"]}


def gap_recovered(distilled: float, scratch: float, teacher: float) -> float | None:
    """(distilled - scratch) / (teacher - scratch): the share of the teacher's lead that
    distillation recovered. Undefined (None) when the teacher is no better than the
    student trained from scratch: there is no lead to recover."""
    gap = teacher - scratch
    return (distilled - scratch) / gap if gap > 1e-9 else None
