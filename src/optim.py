"""The one optimizer factory and the step count every fit and schedule agrees on."""
from __future__ import annotations

import keras

from src.schema.core import OPTIMIZERS


def steps_per_epoch(examples: int, batch_size: int, max_steps: int | None = None) -> int:
    """Full batches per epoch, as the fit loop runs them."""
    steps = max(examples // min(batch_size, examples), 1)
    return min(steps, max_steps) if max_steps else steps


def _sgd(learning_rate):
    return keras.optimizers.SGD(learning_rate, momentum=0.9)


_CLASSES = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "sgd": _sgd,
            "rmsprop": keras.optimizers.RMSprop}
assert tuple(_CLASSES) == OPTIMIZERS, "every optimizer the schema accepts has a class here"


def make_optimizer(name: str, lr: float, schedule: str = "constant", total_steps: int = 0, *,
                   epoch_steps: int = 0, milestones=(), decay: float = 0.1) -> keras.optimizers.Optimizer:
    """Keras optimizer by config name; float16 precision wraps it in loss scaling.

    schedule=cosine decays the rate from lr to 0 over total_steps (cosine annealing
    without restarts); schedule=step multiplies it by `decay` after each epoch in
    `milestones` (1-indexed: with [150], epochs 1-150 run at lr and 151 on at lr * decay,
    epoch_steps steps per epoch). Schedules read optimizer.iterations, which checkpoints
    keep, so a resumed run continues on the same curve.
    """
    if schedule == "cosine" and total_steps > 0:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total_steps)
    elif schedule == "step" and milestones:
        boundaries = [int(m) * epoch_steps - 1 for m in sorted(milestones)]  # the last step of epoch m
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, [lr * decay ** i for i in range(len(boundaries) + 1)])
    optimizer = _CLASSES[name](learning_rate=lr)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
