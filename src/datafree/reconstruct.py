"""The data-free reconstruction kernel: optimise inputs so that a frozen teacher's
activations match targets.

The method optimises batches of 64, 1,000 steps each, with a fresh Adam per batch; here
every example of a chunk is optimised at once in one compiled loop instead of one batch
after another. That is the same computation: the teacher is
frozen and in inference mode, so an example's activations depend only on its own input;
Adam is element-wise; and the loss is the sum over batches of each batch's mean, so
every example gets exactly the gradient (1/B) dl_i/dx_i it had in its own batch.

Adam is written out (a few lines) so that its state is plain tensors reset per call,
rather than a Keras optimizer re-created inside a traced function.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import tensorflow as tf

from src.errors import TrainingDiverged

# per-example loss: (inputs [N, ...], targets list) -> [N]
PerExampleLoss = Callable[[tf.Tensor, list], tf.Tensor]
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8  # tf.train.AdamOptimizer's defaults, the method's optimizer


def relu_mse(activations: list[tf.Tensor], targets: list[tf.Tensor], weights: list[float] | None = None) -> tf.Tensor:
    """Per example: sum over layers of weight_l * the mean over units of (relu(a) - relu(t))^2
    (every weight 1 unless given).

    ReLU on both sides is the paper's "replace the top non-linearity by a ReLU"; the
    targets are pre-activations sampled from Gaussians, the ReLU keeps only what the
    teacher's next layer can see.
    """
    weights = [1.0] * len(activations) if weights is None else weights
    terms = [w * tf.reduce_mean(tf.square(tf.nn.relu(a) - tf.nn.relu(t)), axis=-1)
             for a, t, w in zip(activations, targets, weights)]
    return tf.add_n(terms)


def start_point(optimize, seed: int, c: int, b: int, input_shape: tuple):
    """(generator, start inputs, intended labels) of batch b of class c. Every batch draws
    from its own generator, seeded by (seed, class, batch), so the result does not depend
    on how batches are grouped into chunks."""
    rng = np.random.default_rng([seed, c, b])
    x0 = rng.normal(optimize.init[0], optimize.init[1], (optimize.batch_size, *input_shape)).astype(np.float32)
    return rng, x0, np.full(optimize.batch_size, c, np.int64)


class InputOptimizer:
    """Runs Adam on a chunk of inputs for a number of steps, in one compiled call per
    `check_every` steps (between calls the loss is checked for NaN/Inf). With `view`
    ((x, step) -> x) the objective sees a random view of the inputs at each step, and
    `prior` (x -> [N]) adds penalties on the inputs themselves (src/datafree/priors.py)."""

    def __init__(self, per_example_loss: PerExampleLoss, *, lr: float, batch_size: int, clip: bool,
                 check_every: int = 100, jit_compile: bool = False, view=None, prior=None):
        self.objective_loss, self.view, self.prior = per_example_loss, view, prior
        self.lr = float(lr)
        self.batch_size = float(batch_size)
        self.clip = clip
        self.check_every = check_every
        self._steps = tf.function(self._steps_py, jit_compile=jit_compile, reduce_retracing=True)

    def per_example_loss(self, x, targets, step=None):
        """[N]: the objective on the step's view of x, plus the priors on x itself."""
        loss = self.objective_loss(self.view(x, step) if self.view is not None and step is not None else x, targets)
        return loss + self.prior(x) if self.prior is not None else loss

    def _steps_py(self, x, m, v, step0, count, targets):
        def body(i, x, m, v):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(self.per_example_loss(x, targets, step0 + i)) / self.batch_size
            g = tape.gradient(loss, x)
            t = tf.cast(step0 + i + 1, tf.float32)
            m = BETA1 * m + (1 - BETA1) * g
            v = BETA2 * v + (1 - BETA2) * tf.square(g)
            step = self.lr * tf.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)
            x = x - step * m / (tf.sqrt(v) + EPSILON)
            if self.clip:
                x = tf.clip_by_value(x, 0.0, 1.0)
            return i + 1, x, m, v

        _, x, m, v = tf.while_loop(lambda i, *_: i < count, body, (tf.constant(0), x, m, v))
        return x, m, v, self.per_example_loss(x, targets)

    def run(self, x0: tf.Tensor, targets: list, steps: int, where: str = "") -> tuple[tf.Tensor, tf.Tensor]:
        """Optimise x0 for `steps` Adam steps from a fresh state; return (x, per-example loss)."""
        x, m, v = x0, tf.zeros_like(x0), tf.zeros_like(x0)
        done = 0
        while done < steps:
            count = min(self.check_every, steps - done)
            x, m, v, loss = self._steps(x, m, v, tf.constant(done), tf.constant(count), targets)
            done += count
            worst = float(tf.reduce_max(loss))
            if not math.isfinite(worst) or not bool(tf.reduce_all(tf.math.is_finite(x))):
                raise TrainingDiverged(f"the optimised inputs became NaN/Inf{where} by step {done}: "
                                       f"lower optimize.lr or set optimize.clip=true")
        return x, loss


def reconstruct_classes(objective, optimizer: InputOptimizer, classes: list[int], per_class: int, batch_size: int,
                        chunk_examples: int, steps: int, input_shape: tuple, progress=None):
    """Inputs, intended labels and final per-example losses for `per_class` examples of
    every class, in class order: batches of `batch_size` (each with its own targets)
    optimised `chunk_examples` at a time, in one compiled call per chunk. An objective
    whose batches must mix the classes (MIXES_CLASSES) gets them round-robin over the
    classes, so that every chunk holds every class."""
    batches_per_class = -(-per_class // batch_size)
    mixed = getattr(objective, "MIXES_CLASSES", False)
    batch_list = [(c, b) for b in range(batches_per_class) for c in classes] if mixed else \
        [(c, b) for c in classes for b in range(batches_per_class)]
    per_chunk = max(1, chunk_examples // batch_size)
    xs, ys, losses = [], [], []
    for start in range(0, len(batch_list), per_chunk):
        chunk = batch_list[start:start + per_chunk]
        x0, labels, targets = objective.prepare(chunk, input_shape)
        where = f" (classes {sorted(set(c for c, _ in chunk))})"
        x, loss = optimizer.run(tf.constant(x0), targets, steps, where)
        xs.append(x.numpy())
        ys.append(labels)
        losses.append(loss.numpy())
        if progress is not None:
            progress.update(start + len(chunk))
    x, y, loss = np.concatenate(xs), np.concatenate(ys), np.concatenate(losses)
    keep = first_per_class(y, per_class)  # the last batch of a class may overshoot per_class
    keep = keep[np.argsort(y[keep], kind="stable")]
    return x[keep], y[keep], loss[keep]


def first_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` examples of every class, in their original order."""
    order = np.argsort(y, kind="stable")
    rank = np.empty_like(order)
    counts = np.bincount(y)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(len(y)) - np.repeat(starts, counts)
    return np.sort(np.nonzero(rank < per_class)[0])
