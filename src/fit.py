"""Training on arrays in memory: the Fitter every training procedure uses, and the evaluator.

A procedure hands over a model, a loss function and named arrays; the Fitter shuffles,
batches and runs the compiled steps, and hands each chunk of steps to the engine's epoch
loop (src/loop.py: progress bar, history.csv, TensorBoard, checkpoints and resume, NaN/Inf
detection); it keeps early stopping on the validation split.

Why not `Model.fit`: a data set that fits in memory is kept as tensors, and each batch is
gathered by index inside one compiled function that runs many steps per call. That
removes the per-step Python, callback and iterator overhead that dominates small models
on a CPU (bench/train_throughput.py measures it against plain Keras fit). A streamed
split (memory-mapped, dataset.stream) feeds the same compiled function one block of
batches at a time, gathered from the maps (src/streamed.py; bench/stream_throughput.py).

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
its replica's share, so the schema refuses `distribute` for the methods that have one.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from src.checkpoint import TrainingState, seed_states
from src.errors import ConfigError
from src.loop import EpochLoop
from src.optim import steps_per_epoch
from src.runstore import Run
from src.streamed import ChunkStream, epoch_order, is_streamed, upcast

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
EVAL_BATCH = 1024
EVAL_BYTES = 16 << 20  # an evaluation batch of large images is cut to this many bytes of inputs


def eval_rows(arrays: dict, batch_size: int = EVAL_BATCH) -> int:
    """Examples per evaluation batch: batch_size, fewer for large examples (memory stays
    flat whatever the image size)."""
    row = sum(int(np.prod(value.shape[1:])) * np.dtype(value.dtype).itemsize for value in arrays.values())
    return int(max(1, min(batch_size, EVAL_BYTES // max(row, 1))))


def to_tensors(arrays: dict[str, np.ndarray]) -> dict[str, tf.Tensor]:
    return {name: tf.convert_to_tensor(upcast(value) if isinstance(value, np.ndarray) else value)
            for name, value in arrays.items()}


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """A model's float32 outputs on x in inference mode (dropout off), [len(x), outputs];
    a memory-mapped x is read one batch at a time."""
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), "float32")
    if is_streamed(x):
        return batched(model.predict_on_batch, x, eval_rows({"x": x}, batch_size)).astype("float32")
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float32")


def batched(fn: Callable, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """fn over x in batches of batch_size, the outputs concatenated: inference on a whole
    split without holding every intermediate activation at once."""
    parts = [np.asarray(fn(x[start:start + batch_size])) for start in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0,), "float32")


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    best_epoch: int | None = None
    stopped_early: bool = False
    resumed_from: int = 0
    seconds: float = 0.0  # wall time of this call (the epochs it ran, not the resumed ones)
    streamed_rows: int | None = None  # streamed: training examples this process read (a worker: its share)

    @property
    def final(self) -> dict:
        """The last epoch's row, as final_<metric> entries for metrics.json."""
        last = self.history[-1] if self.history else {}
        return {f"final_{k}": v for k, v in last.items() if k != "epoch"}


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
            probe = to_tensors({name: value[:2] for name, value in data.items()})
            self.metric_names = sorted(self.loss_fn(probe, False))

    def evaluate(self, arrays: dict[str, np.ndarray], batch_size: int = EVAL_BATCH) -> dict[str, float]:
        """Mean of every metric over all examples (no dropout, no example dropped), one
        batch taken from the arrays at a time (a memory-mapped split stays on disk)."""
        n = int(next(iter(arrays.values())).shape[0])
        batch_size = eval_rows(arrays, batch_size)
        self._discover_metrics(to_tensors({name: value[:2] for name, value in arrays.items()}))
        totals = dict.fromkeys(self.metric_names, 0.0)
        for start in range(0, n, batch_size):
            batch = to_tensors({name: value[start:start + batch_size] for name, value in arrays.items()})
            size = int(next(iter(batch.values())).shape[0])
            out = self._compiled_for(batch)(batch)
            for name in totals:
                totals[name] += float(out[name]) * size
        return {name: total / max(n, 1) for name, total in totals.items()}


class Fitter(Evaluator):
    """Compiled train steps plus the epoch loop for one model and loss."""

    def __init__(self, model: keras.Model, loss_fn: LossFn, optimizer, *, jit_compile: bool = False,
                 variables: list | None = None, weight_decay: float = 0.0, random_sources: tuple = ()):
        """weight_decay adds (weight_decay / 2) * ||w||^2 of every trained variable to the
        loss that is differentiated: the coupled L2 of PyTorch's SGD(weight_decay), which
        Keras' own (decoupled) weight_decay is not under momentum. The reported loss
        stays the data loss. The random streams of the model (dropout) and of
        `random_sources` (the loss's augmentation) are checkpointed with it."""
        super().__init__(loss_fn, jit_compile=jit_compile)
        self.weight_decay = float(weight_decay)
        self.model = model
        self.optimizer = optimizer
        self.variables = list(variables if variables is not None else model.trainable_variables)
        self.random = seed_states(model, *random_sources)  # a source may be None (no augmentation)
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

    @property
    def shard(self) -> tuple[int, int]:
        """(this worker, workers) of a multi-worker run; (0, 1) on one machine."""
        resolver = getattr(self.strategy, "cluster_resolver", None)
        spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
        chiefs, workers = len(spec.get("chief", [])), len(spec.get("worker", []))
        if chiefs + workers <= 1:
            return 0, 1
        return (0 if resolver.task_type == "chief" else chiefs + resolver.task_id), chiefs + workers

    # ---- compiled parts -------------------------------------------------------------
    def _apply(self, batch: dict, divisor: int = 1) -> dict:
        """One optimizer step on a batch; the loss is divided by `divisor` (the replicas,
        whose gradients are summed)."""
        with tf.GradientTape() as tape:
            out = self.loss_fn(batch, True)
            scaled = self.optimizer.scale_loss((out["loss"] + self._l2()) / divisor)
        grads = tape.gradient(scaled, self.variables)
        self.optimizer.apply(grads, self.variables)  # under a strategy: all-reduces (sums) the gradients
        return out

    def _train_step(self, data: dict, index: tf.Tensor) -> dict:
        return self._apply({name: tf.gather(value, index) for name, value in data.items()})

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
        out = self._apply(batch, self.replicas)
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
            on_epoch_end: Callable[[int, dict], dict | None] | None = None, monitor: str = "loss") -> FitResult:
        """Train for `epochs` epochs in the engine's EpochLoop, resuming from run's
        checkpoint when there is one. Each epoch is a fresh permutation of the examples
        (seeded by seed and epoch), cut into full batches.

        on_epoch_end(epoch, row) runs after each epoch's metrics and before its checkpoint
        (a procedure's own per-epoch measurements or pictures); a dict it returns joins the
        epoch's row in history.csv. Resumed epochs are not replayed. Early stopping and the
        best epoch watch val_<monitor>: "loss" (lower is better) or "accuracy" (higher), for
        a loss whose scale changes over epochs (a warm-up).
        """
        started = time.perf_counter()
        streamed = any(is_streamed(value) for value in train.values())
        data = train if streamed else to_tensors(train)
        self._discover_metrics(data)
        if "loss" not in self.metric_names:
            raise ValueError("a Fitter's loss_fn must return a dict with a 'loss' entry (the value it differentiates)")
        n = int(next(iter(data.values())).shape[0])
        batch_size = min(batch_size, n)
        if batch_size % self.replicas:
            raise ConfigError(f"batch size {batch_size} does not split evenly over {self.replicas} replicas: "
                              f"use a multiple of {self.replicas} (e.g. train.batch_size="
                              f"{batch_size - batch_size % self.replicas or self.replicas})")
        steps = steps_per_epoch(n, batch_size, max_steps)
        has_val = bool(val) and len(next(iter(val.values()))) > 0
        state = TrainingState(self.model, self.optimizer, run, self.random)
        loop = EpochLoop(state, self.metric_names, verbose=verbose)
        result = FitResult(history=loop.restore(), resumed_from=state.epoch)

        orders: dict[int, np.ndarray] = {}
        stream = ChunkStream(train, batch_size, seed, self.shard) if streamed else None

        def run_chunk(epoch: int, start: int, count: int) -> dict:
            if stream is not None:  # this chunk's rows, read from the maps now (in blocks when large)
                sums = [self._train_chunk(rows, index) for rows, index in stream.chunk(epoch, start, count, steps)]
                return {name: tf.add_n([part[name] for part in sums]) for name in self.metric_names}
            if epoch not in orders:  # this epoch's batches, as [steps, batch] indices
                orders.clear()
                orders[epoch] = epoch_order(n, steps, batch_size, seed, epoch)
            return self._train_chunk(data, tf.constant(orders[epoch][start:start + count]))

        def end_epoch(epoch: int, row: dict) -> dict:
            extra = {}
            if has_val:
                extra = {f"val_{k}": v for k, v in self.evaluate(val).items()}
                watched = extra[f"val_{monitor}"]
                state.observe(-watched if monitor == "accuracy" else watched, epoch, keep_best=bool(early_stopping))
            if on_epoch_end is not None:
                extra.update(on_epoch_end(epoch, {**row, **extra}) or {})
            return extra

        loop.run(result.history, epochs, steps, run_chunk, end_epoch=end_epoch,
                 should_stop=lambda: bool(early_stopping) and state.wait >= early_stopping)
        result.epochs_run = state.epoch
        result.stopped_early = bool(early_stopping) and state.epoch < epochs
        if early_stopping and has_val:
            result.best_epoch = state.restore_best()
        result.seconds = time.perf_counter() - started
        if stream is not None:
            result.streamed_rows = stream.rows_read
            log.info("streamed %d training examples from disk (worker %d of %d)", stream.rows_read, *self.shard)
        return result
