"""Alpha, the weight of classification against mask size, as state of the compiled step.

Constant (hns.alpha) or adaptive: start at 1 and lower by `step` whenever the monitored
loss has not improved for `patience` training steps, down to `minimum`. Everything is a
tf.Variable read and updated inside the compiled training step (a Python float would be
baked into the traced graph), and lives in the checkpoint, so a resumed run continues
where it stopped.

Stagnation is judged on an exponential moving average of the per-step loss (`smoothing`;
0 = raw values), because single-batch losses are noisy: an improvement is an EMA more
than `min_delta` below the best EMA seen at the current alpha (a training loss creeping
down by overfitting would otherwise never count as stagnant). After a drop the EMA and
the best restart, since the total loss changes scale with alpha.
"""
from __future__ import annotations

import math

import tensorflow as tf


def alpha_levels(step: float, minimum: float) -> list[float]:
    """Every alpha the adaptive schedule can reach: 1, 1 - step, ..., minimum. An integer
    level counter avoids float drift (repeated subtraction of 0.05 never reaches 0.05 exactly)."""
    count = math.ceil(round((1.0 - minimum) / step, 9))
    return [round(max(1.0 - i * step, minimum), 10) for i in range(count + 1)]


class AlphaController(tf.Module):
    def __init__(self, alpha: float | None = None, step: float = 0.05, minimum: float = 0.05,
                 patience: int = 100, smoothing: float = 0.9, min_delta: float = 0.0):
        super().__init__(name="alpha_controller")
        self.adaptive = alpha is None
        self.levels = alpha_levels(step, minimum) if self.adaptive else [float(alpha)]
        self.patience = int(patience)
        self.smoothing = float(smoothing)
        self.min_delta = float(min_delta)
        self._table = tf.constant(self.levels, tf.float32)
        self.alpha = tf.Variable(self.levels[0], trainable=False, dtype=tf.float32, name="alpha")
        self.level = tf.Variable(0, trainable=False, dtype=tf.int32, name="alpha_level")
        self.ema = tf.Variable(math.nan, trainable=False, dtype=tf.float32, name="monitor_ema")
        self.best = tf.Variable(math.inf, trainable=False, dtype=tf.float32, name="monitor_best")
        self.wait = tf.Variable(0, trainable=False, dtype=tf.int32, name="monitor_wait")

    def update(self, monitored: tf.Tensor) -> tf.Tensor:
        """Observe one training step's monitored loss; return True when alpha was lowered
        by this step (the weights reached so far are the ones trained at the old alpha)."""
        if not self.adaptive:
            return tf.constant(False)
        value = tf.cast(monitored, tf.float32)
        previous = self.ema.read_value()
        ema = tf.where(tf.math.is_nan(previous), value, self.smoothing * previous + (1.0 - self.smoothing) * value)
        improved = ema < self.best - self.min_delta
        best = tf.where(improved, ema, self.best)
        wait = tf.where(improved, 0, self.wait + 1)
        lower = tf.logical_and(wait >= self.patience, self.level < len(self.levels) - 1)
        level = tf.where(lower, self.level + 1, self.level)
        self.level.assign(level)
        self.alpha.assign(tf.gather(self._table, level))
        self.ema.assign(tf.where(lower, math.nan, ema))
        self.best.assign(tf.where(lower, math.inf, best))
        self.wait.assign(tf.where(lower, 0, wait))
        return lower
