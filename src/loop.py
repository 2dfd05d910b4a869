"""The one epoch loop: every training procedure runs its epochs here, whatever a step is.

A caller hands over a chunk runner, `run_chunk(epoch, start, count) -> dict` of the sums
of its metrics over `count` compiled steps (Fitter gathers batches of its arrays; the
data-free generator draws fresh inputs). The loop owns the rest: the progress bar (on a
terminal; one plain line per epoch in a file, src/progress.py), steps in chunks of
STEPS_PER_CALL, the NaN/Inf check, the per-epoch row (history.csv, the console,
TensorBoard), the checkpoint after every epoch and the resume after a kill.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

import tensorflow as tf

from src import progress
from src.checkpoint import TrainingState
from src.errors import TrainingDiverged
from src.tracking import writes_tensorboard

log = logging.getLogger(__name__)
STEPS_PER_CALL = 25  # steps run inside one compiled call between progress-bar updates
ChunkRunner = Callable[[int, int, int], dict]


class EpochLoop:
    """Epochs of one training run over a TrainingState (what is checkpointed)."""

    def __init__(self, state: TrainingState, metric_names: list[str], *, verbose: int = 1,
                 fix: str = "Lower train.lr or check the data."):
        """fix: the advice the NaN/Inf error ends with (the setting that usually causes it)."""
        self.state = state
        self.metric_names = list(metric_names)
        self.verbose = verbose
        self.fix = fix
        self.watched = ["loss"] if "loss" in self.metric_names else self.metric_names

    def restore(self) -> list[dict]:
        """The history of the epochs a checkpoint holds (empty for a fresh run)."""
        history = self.state.restore()
        if self.state.epoch:
            log.info("resuming from the checkpoint of epoch %d in %s", self.state.epoch, self.state.run.dir)
        return history

    def run(self, history: list[dict], epochs: int, steps: int, run_chunk: ChunkRunner, *,
            end_epoch: Callable[[int, dict], dict | None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> list[dict]:
        """Run epochs after the restored ones until `epochs` or should_stop(). end_epoch(epoch,
        row) runs after the steps and before the checkpoint; a dict it returns joins the row."""
        run = self.state.run
        writer = tf.summary.create_file_writer(str(run.file("tensorboard"))) if run and writes_tensorboard() else None
        live = bool(self.verbose) and progress.live()
        while self.state.epoch < epochs and not should_stop():
            epoch, started = self.state.epoch + 1, time.perf_counter()
            if live:
                print(f"Epoch {epoch}/{epochs}", flush=True)
            row = {"epoch": epoch, **self._epoch(epoch, steps, run_chunk, live)}
            if end_epoch is not None:
                row.update(end_epoch(epoch, row) or {})
            history.append(row)
            self.state.epoch = epoch
            numbers = report_epoch(row, writer)
            if live:
                print("  " + "  ".join(f"{k}={v:.4f}" for k, v in numbers.items()), flush=True)
            elif self.verbose:
                print(progress.epoch_line(epoch, epochs, numbers, time.perf_counter() - started), flush=True)
            self.state.save(history)
        return history

    def _epoch(self, epoch: int, steps: int, run_chunk: ChunkRunner, live: bool) -> dict[str, float]:
        """One epoch's steps in compiled chunks, under a bar when live; the mean of every metric."""
        bar = progress.bar(steps, stateful_metrics=self.metric_names) if live else None
        totals = dict.fromkeys(self.metric_names, 0.0)
        for start in range(0, steps, STEPS_PER_CALL):
            count = min(STEPS_PER_CALL, steps - start)
            for name, value in run_chunk(epoch, start, count).items():
                totals[name] += float(value)
            done = start + count
            bad = next((name for name in self.watched if not math.isfinite(totals[name])), None)
            if bad is not None:
                where = f" in {self.state.run.dir}" if self.state.run else ""
                raise TrainingDiverged(
                    f"the {bad} became {totals[bad]} in epoch {epoch} (by step {done}); the last good checkpoint "
                    f"(epoch {self.state.epoch}) is kept{where}. {self.fix}")
            if bar is not None:
                bar.update(done, [(k, v / done) for k, v in totals.items()])
        return {k: v / steps for k, v in totals.items()}


def report_epoch(row: dict, writer) -> dict[str, float]:
    """An epoch's numbers, written to TensorBoard and returned for the console (flags and
    missing values are only in history.csv)."""
    numbers = {k: v for k, v in row.items()
               if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if writer:
        with writer.as_default(step=row["epoch"]):
            for name, value in numbers.items():
                tf.summary.scalar(name, value)
        writer.flush()
    return numbers

