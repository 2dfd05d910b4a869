"""What a fit keeps in its run folder to resume after a kill: the model and optimizer
state, the epoch counter, the early-stopping state and the best weights (run/ckpt)."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from src.history import read_rows, write_rows
from src.runstore import Run, atomic_write


def seed_states(*sources) -> list:
    """The state variables of every Keras random-seed generator in `sources`: seed
    generators themselves, layers and models (dropout, random augmentation layers, at any
    depth), and objects that list theirs as `random_sources` (an augmentation). What a
    checkpoint keeps so that a resumed run draws the random numbers an uninterrupted one would."""
    return [generator.state for generator in dict.fromkeys(_seed_generators(sources))]


def _seed_generators(sources) -> list:
    found = []
    for source in sources:
        if isinstance(source, keras.random.SeedGenerator):
            found.append(source)
        elif isinstance(source, keras.layers.Layer):
            found += [g for layer in source._flatten_layers() for g in getattr(layer, "_seed_generators", [])]
        else:
            found += _seed_generators(getattr(source, "random_sources", ()))
    return found


class TrainingState:
    """Epoch counter, early-stopping state and checkpoints of one fit, kept in run/ckpt:
    with `random` (seed_states), the random streams too."""

    def __init__(self, model: keras.Model, optimizer, run: Run | None, random: list | tuple = ()):
        self.model = model
        self.run = run
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._best = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
        self._best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self._epoch,
                                              best=self._best, best_epoch=self._best_epoch, wait=self._wait,
                                              random=list(random))
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

    def observe(self, value: float, epoch: int, keep_best: bool) -> None:
        """An epoch's validation value, lower is better: the best epoch and its weights,
        and the epochs waited since."""
        if value < float(self._best.numpy()):
            self._best.assign(value)
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
