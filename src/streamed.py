"""Training batches gathered from memory-mapped arrays (dataset.stream, datasets/stream.py),
for the Fitter.

The in-memory path keeps the whole split as tensors and gathers each batch inside the
compiled steps. Streamed, each chunk of steps (the loop's STEPS_PER_CALL) is gathered
from the maps instead: the same epoch permutation (seeded by seed and epoch), so the
same batches, in the same order; the chunk's rows become the compiled function's data
and its batches index into them. A chunk whose rows would take more than BLOCK_BYTES is
cut into blocks of fewer steps, each one compiled call, so the process holds one block,
not the split, whatever the image size.

Each block is read in the training thread, just before its steps. Reading ahead measured
slower on the 2-core CPU, where training already uses both cores: tf.data (a parallel map
and prefetch) ran at 0.69 of the in-memory epochs and one reader thread at 0.86, against
0.94 for reading in place (docs/data.md#data-bigger-than-memory).

Sharded (several workers of one multi-worker run), a worker gathers only the rows of its
own replicas' slices of every batch; the other slices point at row 0, which its replicas
never read.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from src.loop import STEPS_PER_CALL

PREFETCH = 2  # blocks read ahead of the one training
READERS = 1  # blocks gathered at once
BLOCK_BYTES = 16 << 20  # the most one block of gathered rows takes, so memory stays flat for any image size


def is_streamed(array) -> bool:
    """True for an array that lives on disk (a memory map), which is read a chunk at a time."""
    return isinstance(array, np.memmap)


def upcast(array: np.ndarray) -> np.ndarray:
    """float16 (stored teacher outputs) as float32, the dtype every loss computes in."""
    return array.astype(np.float32) if array.dtype == np.float16 else np.asarray(array)


def epoch_order(n: int, steps: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """This epoch's batches as [steps, batch] example positions: a fresh permutation per
    epoch and seed, the incomplete last batch dropped (the in-memory path's order too)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)[: steps * batch_size]
    return order.reshape(steps, batch_size).astype(np.int32)


class ChunkStream:
    """One epoch's blocks of batches, each gathered from the arrays when its steps come."""

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int, shard: tuple[int, int] = (0, 1)):
        """shard = (this worker, workers): the worker reads the rows of its replicas'
        slices of every batch only (the workers have equal numbers of replicas)."""
        self.arrays, self.batch_size, self.seed = arrays, batch_size, seed
        self.worker, self.workers = shard
        self.rows_read = 0  # examples gathered by this process (a sharded worker reads its share)
        self._epoch: int | None = None
        self._chunks: Iterator | None = None
        self._names = list(arrays)
        row_bytes = sum(upcast(array[:1]).nbytes for array in arrays.values())
        self.block_steps = int(max(1, min(STEPS_PER_CALL, BLOCK_BYTES // max(row_bytes * batch_size, 1))))

    def columns(self) -> np.ndarray:
        """Which positions of a batch this worker reads: its replicas' contiguous slices."""
        per_worker = self.batch_size // self.workers
        mine = np.zeros(self.batch_size, bool)
        mine[self.worker * per_worker:(self.worker + 1) * per_worker] = True
        return mine

    def _gather(self, batches: np.ndarray) -> tuple:
        """The rows of a [count, batch] block of positions (this worker's share), in the
        order read from the maps (sorted: near rows lie near on disk), and the block
        rewritten to index them."""
        mine = self.columns()
        wanted = batches[:, mine].ravel()
        unique, inverse = np.unique(wanted, return_inverse=True)
        rows = {name: upcast(np.asarray(array[unique])) for name, array in self.arrays.items()}
        local = np.zeros_like(batches)
        local[:, mine] = inverse.reshape(len(batches), -1)
        self.rows_read += len(wanted)
        return (*(rows[name] for name in self.arrays), local)

    def _start(self, epoch: int, steps: int) -> None:
        n = len(next(iter(self.arrays.values())))
        order = epoch_order(n, steps, self.batch_size, self.seed, epoch)
        blocks = [(begin, min(begin + self.block_steps, call + STEPS_PER_CALL, steps))
                  for call in range(0, steps, STEPS_PER_CALL)
                  for begin in range(call, min(call + STEPS_PER_CALL, steps), self.block_steps)]
        self._epoch = epoch
        self._chunks = (tuple(tf.convert_to_tensor(part) for part in self._gather(order[begin:end]))
                        for begin, end in blocks)

    def chunk(self, epoch: int, start: int, count: int, steps: int) -> list[tuple[dict, tf.Tensor]]:
        """The blocks of (data, indices) that make the compiled steps start..start+count of
        `epoch`, in order (one block unless the chunk's rows exceed BLOCK_BYTES)."""
        if epoch != self._epoch or start == 0:
            self._start(epoch, steps)
        blocks, done = [], 0
        while done < count:
            *parts, local = next(self._chunks)
            blocks.append((dict(zip(self._names, parts)), local))
            done += int(local.shape[0])
        return blocks
