"""src/loop.py: the one epoch loop, driven by a chunk runner that is not a Fitter."""
from __future__ import annotations

import math

import pytest
import tensorflow as tf

from src import progress
from src.checkpoint import TrainingState
from src.errors import TrainingDiverged
from src.history import read_rows
from src.loop import STEPS_PER_CALL, EpochLoop
from src.runstore import locate


def _loop(tmp_path, counter: tf.Variable, verbose: int = 0) -> EpochLoop:
    run = locate(tmp_path, "d", "p", "n", {})
    run.start({})
    state = TrainingState(tf.train.Checkpoint(counter=counter), tf.train.Checkpoint(), run)
    return EpochLoop(state, ["loss", "steps"], verbose=verbose, fix="Lower some.lr.")


def _counting(counter: tf.Variable, calls: list):
    def run_chunk(epoch: int, start: int, count: int) -> dict:
        calls.append((epoch, start, count))
        counter.assign_add(count)
        return {"loss": float(epoch) * count, "steps": float(count)}
    return run_chunk


def test_epochs_run_in_chunks_and_their_rows_are_means(tmp_path):
    counter, calls = tf.Variable(0), []
    loop = _loop(tmp_path, counter)
    steps = STEPS_PER_CALL + 5
    history = loop.run(loop.restore(), 2, steps, _counting(counter, calls),
                       end_epoch=lambda epoch, row: {"checked": row["loss"] * 10})
    assert calls == [(1, 0, STEPS_PER_CALL), (1, STEPS_PER_CALL, 5), (2, 0, STEPS_PER_CALL), (2, STEPS_PER_CALL, 5)]
    assert [(r["epoch"], r["loss"], r["steps"], r["checked"]) for r in history] == [(1, 1.0, 1.0, 10.0),
                                                                                  (2, 2.0, 1.0, 20.0)]
    assert [r["epoch"] for r in read_rows(loop.state.run.file("history.csv"))] == [1, 2]


def test_a_new_loop_resumes_after_the_last_checkpoint(tmp_path):
    counter, calls = tf.Variable(0), []
    first = _loop(tmp_path, counter)
    first.run(first.restore(), 2, 3, _counting(counter, calls))
    counter.assign(-1)  # the restored checkpoint puts the counter back
    again = _loop(tmp_path, counter)
    history = again.restore()
    assert again.state.epoch == 2 and len(history) == 2 and int(counter.numpy()) == 6
    calls.clear()
    again.run(history, 3, 3, _counting(counter, calls))
    assert calls == [(3, 0, 3)] and [r["epoch"] for r in history] == [1, 2, 3]


def test_a_nan_names_the_metric_the_epoch_and_the_fix(tmp_path):
    loop = _loop(tmp_path, tf.Variable(0))
    with pytest.raises(TrainingDiverged, match=r"the loss became nan in epoch 1 \(by step 3\).*epoch 0.*Lower some.lr."):
        loop.run([], 1, 3, lambda epoch, start, count: {"loss": math.nan, "steps": 1.0})
    assert loop.state.epoch == 0


def test_should_stop_ends_before_the_next_epoch(tmp_path):
    counter, calls = tf.Variable(0), []
    loop = _loop(tmp_path, counter)
    history = loop.run([], 5, 2, _counting(counter, calls), should_stop=lambda: len(calls) >= 2)
    assert len(history) == 2


def test_off_a_terminal_each_epoch_is_one_plain_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "live", lambda: False)
    counter = tf.Variable(0)
    loop = _loop(tmp_path, counter, verbose=1)
    loop.run([], 2, STEPS_PER_CALL + 5, _counting(counter, []))
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 2 and "\r" not in out and "\x1b" not in out
    assert lines[0].startswith("Epoch 1/2  loss=1.0000  steps=1.0000  (") and lines[1].startswith("Epoch 2/2  loss=2.0000")


def test_on_a_terminal_the_progress_bar_stays(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress, "live", lambda: True)
    counter = tf.Variable(0)
    loop = _loop(tmp_path, counter, verbose=1)
    loop.run([], 1, 3, _counting(counter, []))
    out = capsys.readouterr().out
    assert out.startswith("Epoch 1/1\n") and "3/3" in out and "\r" in out and "  loss=1.0000  steps=1.0000" in out


def test_other_progress_off_a_terminal_is_one_line_when_done(capsys, monkeypatch):
    monkeypatch.setattr(progress, "live", lambda: False)
    bar = progress.bar(4, unit_name="batch")
    for done in range(1, 5):
        bar.update(done)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("batch 4/4 done (")
