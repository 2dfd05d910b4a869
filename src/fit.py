"""The one fit loop every training procedure uses.

A procedure hands over a model, a loss function and named arrays; the loop owns the
rest: shuffling, batching, the compiled step, metrics, progress bar, history.csv,
TensorBoard, checkpoints and resume, early stopping on the validation split, and
NaN/Inf detection.

Why not `Model.fit`: the data sets here fit in memory, so the loop keeps them as tensors
and gathers each batch by index inside one compiled function that runs many steps per
call. That removes the per-step Python, callback and iterator overhead that dominates
small models on a CPU (bench/train_throughput.py measures it against plain Keras fit).

Loss function contract: `loss_fn(batch: dict[str, Tensor], training: bool) -> dict`
of scalar tensors with at least "loss" (the mean over the batch, the value that is
differentiated); every other entry is a batch mean reported as a metric. An Evaluator
takes any such function of batch means, with or without a "loss".
Training batches are full: the incomplete last batch of an epoch is dropped (the data
are reshuffled each epoch, so every example is seen).

Under a tf.distribute strategy (runtime.setup sets it from `distribute=`), each step's
batch is split evenly over the replicas, every replica's loss is divided by the number of
replicas (so the all-reduced SUM of gradients is the gradient of the global-batch mean,
the same step as on one device), and the metrics are averaged over replicas. That holds
for losses that are means over examples; a loss built on batch statistics would see only
its replica's share, so the schema refuses `distribute` for those (tree_distill, and
hns_train with the adaptive alpha or REINFORCE).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from src.errors import ConfigError, TrainingDiverged
from src.history import read_rows, write_rows
from src.runstore import Run, atomic_write
from src.tracking import writes_tensorboard

log = logging.getLogger(__name__)


class _TracingPerInstance(logging.Filter):
    """TensorFlow counts retracing per method, across every instance: each new Evaluator or
    Fitter (a new model, a new loss) traces its own step once, which it reports as
    excessive retracing of one function. The report is dropped for these steps only; a
    step that really retraces shows in Evaluator.tracing_count()."""

    STEPS = ("Evaluator._eval_batch_py", "Fitter._train_chunk_py", "Fitter._train_chunk_distributed")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and any(step in message for step in self.STEPS))


logging.getLogger("tensorflow").addFilter(_TracingPerInstance())

LossFn = Callable[[dict, bool], dict]
STEPS_PER_CALL = 25  # steps run inside one compiled call between progress-bar updates
EVAL_BATCH = 1024


def steps_per_epoch(examples: int, batch_size: int, max_steps: int | None = None) -> int:
    """Full batches per epoch, as the fit loop runs them."""
    steps = max(examples // min(batch_size, examples), 1)
    return min(steps, max_steps) if max_steps else steps


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
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
        "rmsprop": keras.optimizers.RMSprop,
    }
    optimizer = classes[name](learning_rate=lr)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    return {name: tf.convert_to_tensor(value) for name, value in arrays.items()}


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """A model's float32 outputs on x in inference mode (dropout off), [len(x), outputs]."""
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), "float32")
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float32")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from: int = 0


class Evaluator:
    """Compiled evaluation of a function of batch means over arrays, in large batches."""

    def __init__(self, loss_fn: LossFn, *, jit_compile: bool = False):
        self.loss_fn = loss_fn  # (batch, training) -> dict of batch means
        self.jit_compile = jit_compile
        self._compiled: dict[tuple, Callable] = {}
        self.metric_names: list[str] | None = None

    def _eval_batch_py(self, batch: dict) -> dict:
        out = self.loss_fn(batch, False)
        return {name: tf.cast(out[name], tf.float32) for name in self.metric_names}

    def _compiled_for(self, data: dict) -> Callable:
        """The evaluation step for inputs shaped like `data`, traced once for any batch size
        (its signature leaves the batch dimension open), so the last, smaller batch and
        every later call reuse it."""
        spec = {name: tf.TensorSpec([None, *value.shape[1:]], value.dtype) for name, value in data.items()}
        key = tuple(sorted((name, tuple(s.shape[1:]), s.dtype.name) for name, s in spec.items()))
        if key not in self._compiled:
            self._compiled[key] = tf.function(self._eval_batch_py, input_signature=[spec], jit_compile=self.jit_compile)
        return self._compiled[key]

    def tracing_count(self) -> int:
        """How often evaluation was traced: once per input structure, whatever the batch sizes."""
        return sum(step.experimental_get_tracing_count() for step in self._compiled.values())

    def _discover_metrics(self, data: dict) -> None:
        """One eager call on two examples: learns the metric names and fails early, with
        the model's own message, when shapes do not fit."""
        if self.metric_names is None:
            probe = {name: value[:2] for name, value in data.items()}
            self.metric_names = sorted(self.loss_fn(probe, False))

    def evaluate(self, arrays: dict[str, np.ndarray], batch_size: int = EVAL_BATCH) -> dict[str, float]:
        """Mean of every metric over all examples (no dropout, no example dropped)."""
        data = to_tensors(arrays)
        self._discover_metrics(data)
        step = self._compiled_for(data)
        n = int(next(iter(data.values())).shape[0])
        totals = dict.fromkeys(self.metric_names, 0.0)
        for start in range(0, n, batch_size):
            batch = {name: value[start:start + batch_size] for name, value in data.items()}
            size = int(next(iter(batch.values())).shape[0])
            out = step(batch)
            for name in totals:
                totals[name] += float(out[name]) * size
        return {name: total / max(n, 1) for name, total in totals.items()}


class Fitter(Evaluator):
    """Compiled train steps plus the epoch loop for one model and loss."""

    def __init__(self, model: keras.Model, loss_fn: LossFn, optimizer, *, jit_compile: bool = False,
                 variables: list | None = None, weight_decay: float = 0.0):
        """weight_decay adds (weight_decay / 2) * ||w||^2 of every trained variable to the
        loss that is differentiated: the coupled L2 of PyTorch's SGD(weight_decay), which
        Keras' own (decoupled) weight_decay is not under momentum. The reported loss
        stays the data loss."""
        super().__init__(loss_fn, jit_compile=jit_compile)
        self.weight_decay = float(weight_decay)
        self.model = model
        self.optimizer = optimizer
        self.variables = list(variables if variables is not None else model.trainable_variables)
        self.optimizer.build(self.variables)
        self.strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
        chunk = self._train_chunk_py if self.strategy is None else self._train_chunk_distributed
        self._train_chunk = tf.function(chunk, jit_compile=jit_compile and self.strategy is None,
                                        reduce_retracing=True)

    @property
    def train_function(self):
        """The compiled multi-step training function (a tf.function: under jit_compile its
        XLA program is `train_function.experimental_get_compiler_ir(data, indices)()`)."""
        return self._train_chunk

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy is not None else 1

    # ---- compiled parts -------------------------------------------------------------
    def _train_step(self, data: dict, index: tf.Tensor) -> dict:
        batch = {name: tf.gather(value, index) for name, value in data.items()}
        with tf.GradientTape() as tape:
            out = self.loss_fn(batch, True)
            scaled = self.optimizer.scale_loss(out["loss"] + self._l2())
        grads = tape.gradient(scaled, self.variables)
        self.optimizer.apply(grads, self.variables)
        return out

    def _l2(self):
        if not self.weight_decay:
            return 0.0
        return 0.5 * self.weight_decay * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                                                  for v in self.variables])

    def _replica_step(self, data: dict, index: tf.Tensor) -> dict:
        """One replica's share of a global batch: its slice of the batch's indices."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        size = tf.shape(index)[0] // self.replicas
        batch = {name: tf.gather(value, index[replica * size:(replica + 1) * size]) for name, value in data.items()}
        with tf.GradientTape() as tape:
            out = self.loss_fn(batch, True)
            scaled = self.optimizer.scale_loss((out["loss"] + self._l2()) / self.replicas)
        grads = tape.gradient(scaled, self.variables)
        self.optimizer.apply(grads, self.variables)  # all-reduces (sums) the gradients
        return {name: tf.cast(out[name], tf.float32) for name in self.metric_names}

    def _train_chunk_distributed(self, data: dict, indices: tf.Tensor) -> dict:
        totals = {name: tf.constant(0.0, tf.float32) for name in self.metric_names}
        for i in tf.range(tf.shape(indices)[0]):
            out = self.strategy.run(self._replica_step, args=(data, indices[i]))
            totals = {name: totals[name] + self.strategy.reduce(tf.distribute.ReduceOp.MEAN, out[name], axis=None)
                      for name in totals}
        return totals

    def _train_chunk_py(self, data: dict, indices: tf.Tensor) -> dict:
        """Run len(indices) steps; return the sum of every metric over them."""
        totals = {name: tf.constant(0.0, tf.float32) for name in self.metric_names}
        for i in tf.range(tf.shape(indices)[0]):
            out = self._train_step(data, indices[i])
            totals = {name: totals[name] + tf.cast(out[name], tf.float32) for name in totals}
        return totals

    # ---- the loop -------------------------------------------------------------------
    def fit(self, train: dict[str, np.ndarray], *, epochs: int, batch_size: int, seed: int,
            run: Run | None = None, val: dict[str, np.ndarray] | None = None,
            early_stopping: int = 0, max_steps: int | None = None, verbose: int = 1,
            on_epoch_end: Callable[[int, dict], dict | None] | None = None) -> FitResult:
        """Train for `epochs` epochs, resuming from run's checkpoint when there is one.

        on_epoch_end(epoch, row) runs after each epoch's metrics and before its checkpoint
        (a procedure's own per-epoch measurements or pictures); a dict it returns joins the
        epoch's row in history.csv. Resumed epochs are not replayed.
        """
        data = to_tensors(train)
        self._discover_metrics(data)
        if "loss" not in self.metric_names:
            raise ValueError("a Fitter's loss_fn must return a dict with a 'loss' entry (the value it differentiates)")
        n = int(next(iter(data.values())).shape[0])
        batch_size = min(batch_size, n)
        if batch_size % self.replicas:
            raise ConfigError(f"batch size {batch_size} does not split evenly over {self.replicas} replicas: "
                              f"use a multiple of {self.replicas} (e.g. train.batch_size="
                              f"{batch_size - batch_size % self.replicas or self.replicas})")
        steps = min(n // batch_size, max_steps) if max_steps else n // batch_size
        has_val = bool(val) and len(next(iter(val.values()))) > 0
        state = TrainingState(self.model, self.optimizer, run)
        result = FitResult(history=state.restore(), resumed_from=state.epoch)
        if result.resumed_from:
            log.info("resuming from the checkpoint of epoch %d in %s", state.epoch, run.dir)
        writer = tf.summary.create_file_writer(str(run.file("tensorboard"))) if run and writes_tensorboard() else None

        while state.epoch < epochs and not (early_stopping and state.wait >= early_stopping):
            epoch = state.epoch + 1
            if verbose:
                print(f"Epoch {epoch}/{epochs}", flush=True)
            order = np.random.default_rng([seed, epoch]).permutation(n)[: steps * batch_size]
            row = {"epoch": epoch, **self._run_epoch(data, order.reshape(steps, batch_size).astype(np.int32),
                                                     verbose, f"epoch {epoch}", state.epoch, run)}
            if has_val:
                row.update({f"val_{k}": v for k, v in self.evaluate(val).items()})
                state.observe(row["val_loss"], epoch, keep_best=bool(early_stopping))
            if on_epoch_end is not None:
                row.update(on_epoch_end(epoch, row) or {})
            result.history.append(row)
            state.epoch = epoch
            report_epoch(row, verbose, writer)
            state.save(result.history)

        result.epochs_run = state.epoch
        result.stopped_early = bool(early_stopping) and state.epoch < epochs
        if early_stopping and has_val:
            result.best_epoch = state.restore_best()
        return result

    def _run_epoch(self, data: dict, indices: np.ndarray, verbose: int, where: str, last_good: int,
                   run: Run | None) -> dict[str, float]:
        """One epoch of training steps over `indices` ([steps, batch]); the mean of every metric."""
        steps = len(indices)
        bar = keras.utils.Progbar(steps, verbose=verbose, stateful_metrics=self.metric_names)
        totals = dict.fromkeys(self.metric_names, 0.0)
        for start in range(0, steps, STEPS_PER_CALL):
            chunk = indices[start:start + STEPS_PER_CALL]
            out = self._train_chunk(data, tf.constant(chunk))
            for name in totals:
                totals[name] += float(out[name])
            done = start + len(chunk)
            if not math.isfinite(totals["loss"]):
                raise TrainingDiverged(
                    f"the loss became {totals['loss']} in {where} (by step {done}); "
                    f"the last good checkpoint (epoch {last_good}) is kept"
                    f"{' in ' + str(run.dir) if run else ''}. Lower train.lr or check the data.")
            bar.update(done, [(k, v / done) for k, v in totals.items()])
        return {k: v / steps for k, v in totals.items()}


def report_epoch(row: dict, verbose: int, writer) -> None:
    """An epoch's numbers on the console and in TensorBoard (flags and missing values are
    only in history.csv)."""
    numbers = {k: v for k, v in row.items()
               if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if verbose:
        print("  " + "  ".join(f"{k}={v:.4f}" for k, v in numbers.items()), flush=True)
    if writer:
        with writer.as_default(step=row["epoch"]):
            for name, value in numbers.items():
                tf.summary.scalar(name, value)
        writer.flush()


class TrainingState:
    """Epoch counter, early-stopping state and checkpoints of one fit, kept in run/ckpt."""

    def __init__(self, model: keras.Model, optimizer, run: Run | None):
        self.model = model
        self.run = run
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._best = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
        self._best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self._epoch,
                                              best=self._best, best_epoch=self._best_epoch, wait=self._wait)
        self.manager = None
        self._best_in_memory = None
        if run is not None:
            self.manager = tf.train.CheckpointManager(self.checkpoint, str(run.file("ckpt")), max_to_keep=2)

    epoch = property(lambda self: int(self._epoch.numpy()),
                     lambda self, value: self._epoch.assign(value))
    wait = property(lambda self: int(self._wait.numpy()))

    @property
    def best_weights_path(self) -> Path:
        return self.run.file("ckpt") / "best.weights.h5"

    def restore(self) -> list[dict]:
        """Load the latest checkpoint, if any; return the history up to its epoch."""
        if self.manager is None or self.manager.latest_checkpoint is None:
            return []
        self.checkpoint.restore(self.manager.latest_checkpoint).expect_partial()
        return read_rows(self.run.file("history.csv"))[: self.epoch]

    def observe(self, val_loss: float, epoch: int, keep_best: bool) -> None:
        if val_loss < float(self._best.numpy()):
            self._best.assign(val_loss)
            self._best_epoch.assign(epoch)
            self._wait.assign(0)
            if not keep_best:
                return
            if self.run is not None:
                atomic_write(self.best_weights_path, lambda tmp: self.model.save_weights(str(tmp)))
            else:
                self._best_in_memory = [w.copy() for w in self.model.get_weights()]
        else:
            self._wait.assign_add(1)

    def restore_best(self) -> int | None:
        """Put the best-on-validation weights back into the model; return that epoch."""
        if self.run is not None and self.best_weights_path.exists():
            self.model.load_weights(str(self.best_weights_path))
        elif self._best_in_memory is not None:
            self.model.set_weights(self._best_in_memory)
        else:
            return None
        return int(self._best_epoch.numpy())

    def save(self, history: list[dict]) -> None:
        """History first, then the checkpoint that points at it: a kill in between only
        repeats one epoch."""
        if self.run is None:
            return
        write_rows(self.run.file("history.csv"), history)
        self.manager.save(checkpoint_number=self.epoch)
