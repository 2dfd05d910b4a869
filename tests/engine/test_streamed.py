"""src/streamed.py: a memory-mapped split trains exactly as in memory (the same batches in
the same order), a fresh permutation per epoch and seed, and a sharded worker reads only
its replicas' share of every batch."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from src.fit import Evaluator, Fitter
from src.losses import classifier_loss
from src.optim import make_optimizer
from src import streamed
from src.streamed import ChunkStream, epoch_order, is_streamed


@pytest.fixture
def mapped(tmp_path):
    """(x, y) in memory and the same arrays memory-mapped from .npy files."""
    rng = np.random.default_rng(0)
    x = rng.random((320, 12, 12, 1), dtype=np.float32)
    y = rng.integers(0, 10, 320)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return (x, y), (np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", mmap_mode="r"))


def _train(x, y):
    keras.utils.set_random_seed(0)
    model = models.build("hinton800", (12, 12, 1), 10)
    fitter = Fitter(model, classifier_loss(model), make_optimizer("adam", 1e-3))
    result = fitter.fit({"x": x, "y": y}, epochs=2, batch_size=32, seed=5, verbose=0, val={"x": x[:64], "y": y[:64]})
    return model.get_weights(), result


def test_a_streamed_fit_is_the_in_memory_fit(mapped):
    (x, y), (xm, ym) = mapped
    assert is_streamed(xm) and not is_streamed(x)
    held, held_result = _train(x, y)
    streamed, streamed_result = _train(xm, ym)
    assert all(np.array_equal(a, b) for a, b in zip(held, streamed))  # bit for bit: the same batches, in order
    assert held_result.history == streamed_result.history
    assert held_result.streamed_rows is None and streamed_result.streamed_rows == 2 * 10 * 32


def test_large_rows_are_read_in_smaller_blocks_and_train_the_same(mapped, monkeypatch):
    """A chunk whose rows exceed BLOCK_BYTES is cut into blocks of fewer steps (memory stays
    flat for large images): the same steps, so the same weights."""
    (x, y), (xm, ym) = mapped
    monkeypatch.setattr(streamed, "BLOCK_BYTES", 3 * 32 * (12 * 12 * 4 + 8))  # three steps of rows
    stream = ChunkStream({"x": xm, "y": ym}, 32, seed=5)
    assert stream.block_steps == 3 and [len(index) for _, index in stream.chunk(1, 0, 10, 10)] == [3, 3, 3, 1]
    held, held_result = _train(x, y)
    blocked, blocked_result = _train(xm, ym)
    assert all(np.array_equal(a, b) for a, b in zip(held, blocked))
    assert blocked_result.history[-1]["loss"] == pytest.approx(held_result.history[-1]["loss"], rel=1e-6)


def test_each_epoch_is_a_fresh_permutation_per_seed():
    first, second = epoch_order(100, 3, 32, seed=0, epoch=1), epoch_order(100, 3, 32, seed=0, epoch=2)
    assert first.shape == (3, 32) and len(np.unique(first)) == 96
    assert not np.array_equal(first, second) and not np.array_equal(first, epoch_order(100, 3, 32, seed=1, epoch=1))


def test_two_workers_each_read_half_of_every_batch(mapped):
    _, (xm, ym) = mapped
    arrays = {"x": xm, "y": ym}
    whole = ChunkStream(arrays, 32, seed=0)
    halves = [ChunkStream(arrays, 32, seed=0, shard=(worker, 2)) for worker in (0, 1)]
    [(data, index)], parts = whole.chunk(1, 0, 10, 10), [half.chunk(1, 0, 10, 10)[0] for half in halves]
    batches = np.asarray(data["y"])[np.asarray(index)]  # every batch's labels, as the replicas gather them
    for worker, (part, local) in enumerate(parts):
        mine = slice(16 * worker, 16 * (worker + 1))  # worker w's replicas read columns 16w..16w+15
        assert np.array_equal(np.asarray(part["y"])[np.asarray(local)[:, mine]], batches[:, mine])
    assert [half.rows_read for half in halves] == [160, 160] and whole.rows_read == 320


def test_evaluation_reads_a_memory_map_a_batch_at_a_time(mapped):
    (x, y), (xm, ym) = mapped
    model = models.build("lenet_half", (12, 12, 1), 10)
    evaluator = Evaluator(classifier_loss(model))
    assert evaluator.evaluate({"x": xm, "y": ym}, batch_size=100) == pytest.approx(
        evaluator.evaluate({"x": x, "y": y}, batch_size=100), rel=1e-6)
    assert evaluator.tracing_count() == 1
