"""The shared fit loop: learns, resumes from checkpoints, stops on NaN, stops early."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from src.errors import TrainingDiverged
from src.fit import Fitter
from src.optim import make_optimizer, steps_per_epoch
from src.history import read_rows
from src.losses import classifier_loss
from src.runstore import locate


def _data(n=512, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(99).random((4, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 4, n)
    x = np.clip(prototypes[y] + noise * rng.standard_normal((n, 8, 8, 1)), 0, 1).astype("float32")
    return {"x": x, "y": y.astype("int64")}


def _fitter(lr=1e-2, seed=0, schedule="constant", total_steps=0):
    keras.utils.set_random_seed(seed)
    model = models.build("hinton800", (8, 8, 1), 4)
    return Fitter(model, classifier_loss(model), make_optimizer("adam", lr, schedule, total_steps))


def test_fit_learns_and_reports_history():
    fitter = _fitter()
    result = fitter.fit(_data(), epochs=3, batch_size=64, seed=0, val=_data(128, seed=1), verbose=0)
    assert result.epochs_run == 3 and len(result.history) == 3
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert fitter.evaluate(_data(256, seed=2))["accuracy"] > 0.9


def test_drops_only_the_incomplete_last_batch():
    calls = []
    fitter = _fitter()
    base = fitter.loss_fn

    def counting(batch, training):
        if training:
            tf.py_function(lambda: calls.append(1), [], [])
        return base(batch, training)

    fitter.loss_fn = counting
    fitter.fit(_data(300), epochs=1, batch_size=64, seed=0, verbose=0)
    assert len(calls) == 300 // 64


def test_evaluate_covers_every_example():
    fitter = _fitter()
    data = _data(1030)
    full = fitter.evaluate(data, batch_size=1024)
    small = fitter.evaluate(data, batch_size=7)
    assert full["loss"] == pytest.approx(small["loss"], rel=1e-5)


def test_resume_continues_from_last_checkpoint(tmp_path):
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    run.start({"seed": 0})
    first = _fitter().fit(_data(), epochs=2, batch_size=64, seed=0, run=run, verbose=0)
    assert first.epochs_run == 2 and (run.dir / "ckpt" / "checkpoint").exists()
    resumed = _fitter(seed=5).fit(_data(), epochs=4, batch_size=64, seed=0, run=run, verbose=0)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 4
    assert [row["epoch"] for row in read_rows(run.file("history.csv"))] == [1, 2, 3, 4]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resumed_run_matches_uninterrupted_run(tmp_path, schedule):
    """Same seed: 2 epochs + resume to 4 gives the weights of 4 straight epochs (the
    cosine schedule continues from the restored step count)."""
    total = 4 * (512 // 64)
    straight = _fitter(schedule=schedule, total_steps=total)
    straight.fit(_data(), epochs=4, batch_size=64, seed=0, verbose=0)
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    run.start({"seed": 0})
    _fitter(schedule=schedule, total_steps=total).fit(_data(), epochs=2, batch_size=64, seed=0, run=run, verbose=0)
    resumed = _fitter(seed=7, schedule=schedule, total_steps=total)
    resumed.fit(_data(), epochs=4, batch_size=64, seed=0, run=run, verbose=0)
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path):
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    run.start({"seed": 0})
    fitter = _fitter()
    fitter.fit(_data(), epochs=1, batch_size=64, seed=0, run=run, verbose=0)
    base = fitter.loss_fn
    fitter.loss_fn = lambda batch, training: {**base(batch, training), "loss": base(batch, training)["loss"] * np.nan}
    fitter._train_chunk = tf.function(fitter._train_chunk_py)  # retrace with the poisoned loss
    with pytest.raises(TrainingDiverged, match="epoch 2.*last good checkpoint \\(epoch 1\\)"):
        fitter.fit(_data(), epochs=3, batch_size=64, seed=0, run=run, verbose=0)
    assert [row["epoch"] for row in read_rows(run.file("history.csv"))] == [1]


def test_early_stopping_stops_and_restores_best(tmp_path):
    train = _data(256)
    noisy_val = {"x": _data(128, seed=3)["x"], "y": np.random.default_rng(0).integers(0, 4, 128)}
    fitter = _fitter(lr=3e-2)
    result = fitter.fit(train, epochs=40, batch_size=32, seed=0, val=noisy_val, early_stopping=2, verbose=0)
    assert result.stopped_early and result.epochs_run < 40
    best = min(result.history, key=lambda row: row["val_loss"])
    assert result.best_epoch == best["epoch"]
    assert fitter.evaluate(noisy_val)["loss"] == pytest.approx(best["val_loss"], rel=1e-4)


def test_cosine_schedule_decays_to_zero_over_the_run():
    optimizer = make_optimizer("adam", 0.01, "cosine", 100)
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.005, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(steps_per_epoch(300, 64)) == 4 and steps_per_epoch(300, 64, max_steps=2) == 2


def test_step_schedule_decays_after_each_milestone_epoch():
    """[2, 3] with 10 steps per epoch: epochs 1-2 (steps 0-19) at lr, epoch 3 at lr/10,
    epoch 4 on at lr/100 (the reference's 1-indexed milestone rule)."""
    optimizer = make_optimizer("sgd", 0.05, "step", epoch_steps=10, milestones=(3, 2), decay=0.1)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 19, 20, 29, 30, 100)]
    assert rates == pytest.approx([0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005])


def test_weight_decay_is_the_coupled_l2_gradient():
    """A loss that is 0 everywhere: one SGD step (momentum starts at 0) moves every weight,
    biases included, by -lr * wd * w; the reported loss stays 0."""
    keras.utils.set_random_seed(0)
    model = models.build("hinton800", (4, 4, 1), 3)
    before = [w.copy() for w in model.get_weights()]
    zero = lambda batch, training: {"loss": 0.0 * tf.reduce_sum(model(batch["x"], training=False))}  # noqa: E731
    fitter = Fitter(model, zero, make_optimizer("sgd", 0.1), weight_decay=0.01)
    result = fitter.fit({"x": np.ones((8, 4, 4, 1), "float32")}, epochs=1, batch_size=8, seed=0, verbose=0)
    assert result.history[0]["loss"] == 0.0
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_allclose(new, old * (1 - 0.1 * 0.01), rtol=1e-5, atol=1e-7)


def test_on_epoch_end_runs_after_each_new_epoch_and_joins_history(tmp_path):
    """A procedure's per-epoch hook (pictures, test-split scores): called once per epoch
    with that epoch's row, its dict lands in history.csv, resumed epochs are not replayed."""
    run = locate(tmp_path, "d", "train", "m", {"seed": 0})
    run.start({"seed": 0})
    seen = []

    def hook(epoch, row):
        seen.append((epoch, round(row["loss"], 6)))
        return {"extra": 10.0 * epoch}

    first = _fitter().fit(_data(), epochs=2, batch_size=64, seed=0, run=run, verbose=0, on_epoch_end=hook)
    assert [e for e, _ in seen] == [1, 2] and [r["extra"] for r in first.history] == [10.0, 20.0]
    assert all(loss == round(r["loss"], 6) for (_, loss), r in zip(seen, first.history))
    _fitter().fit(_data(), epochs=3, batch_size=64, seed=0, run=run, verbose=0, on_epoch_end=hook)
    assert [e for e, _ in seen] == [1, 2, 3]
    assert [row["extra"] for row in read_rows(run.file("history.csv"))] == [10.0, 20.0, 30.0]


def test_evaluation_traces_once_for_any_batch_size():
    """Full batches, a smaller last batch and later calls of other sizes share one trace,
    and the result is the exact mean over every example."""
    from src.fit import Evaluator
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    evaluator = Evaluator(classifier_loss(model))
    rng = np.random.default_rng(0)
    for n in (2500, 7, 1024):
        x, y = rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)
        out = evaluator.evaluate({"x": x, "y": y})
        expected = np.mean(np.argmax(model(x).numpy(), -1) == y)
        assert out["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert evaluator.tracing_count() == 1


def test_batched_covers_every_example_in_order_and_an_empty_split():
    from src.fit import batched
    x = np.arange(10, dtype="float32")[:, None]
    seen = []
    out = batched(lambda part: seen.append(len(part)) or part[:, 0] * 2, x, batch_size=4)
    assert seen == [4, 4, 2] and out.tolist() == [2 * i for i in range(10)]
    assert batched(lambda part: part, x[:0]).shape == (0,)


def test_early_stopping_can_watch_validation_accuracy_instead_of_a_growing_loss():
    """A loss that grows every epoch (a warm-up) while accuracy rises: watching the loss
    stops after `patience` epochs at the first one; watching accuracy trains on and keeps
    the last."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    grows = tf.Variable(0.0)

    def loss_fn(batch, training):
        if training:
            grows.assign_add(1.0)
        logits = model(batch["x"])
        return {"loss": tf.reduce_mean(logits) * 0 + grows, "accuracy": grows / 100.0}

    data = {"x": np.zeros((8, 2), "float32"), "y": np.zeros(8, "int64")}
    by_loss = Fitter(model, loss_fn, make_optimizer("sgd", 0.0)).fit(
        data, epochs=6, batch_size=4, seed=0, val=data, early_stopping=2, verbose=0)
    assert (by_loss.best_epoch, by_loss.epochs_run, by_loss.stopped_early) == (1, 3, True)
    grows.assign(0.0)
    by_accuracy = Fitter(model, loss_fn, make_optimizer("sgd", 0.0)).fit(
        data, epochs=6, batch_size=4, seed=0, val=data, early_stopping=2, verbose=0, monitor="accuracy")
    assert (by_accuracy.best_epoch, by_accuracy.epochs_run, by_accuracy.stopped_early) == (6, 6, False)


@pytest.mark.parametrize("mixup_per", ["example", "batch"])
def test_a_resumed_fit_draws_the_same_dropout_and_augmentation_as_an_uninterrupted_one(tmp_path, mixup_per):
    """Two epochs straight, against one epoch, a new process's objects, and a resume to two:
    the same weights, because the checkpoint keeps the random streams of the model's
    dropout and of the augmentation (a shift and mixup, either draw)."""
    from src.augment import make_augment
    from src.losses import classifier_loss
    from src.runstore import locate

    def fit(epochs: int, folder):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 1))
        hidden = keras.layers.Dropout(0.5)(keras.layers.Flatten()(inputs))
        model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
        augment = make_augment("shift_mixup", seed=0, mixup_per=mixup_per)
        run = locate(folder, "d", "train", "m", {})
        run.start({})
        fitter = Fitter(model, classifier_loss(model, augment), make_optimizer("adam", 0.01), random_sources=(augment,))
        data = {"x": np.random.default_rng(1).random((64, 8, 8, 1)).astype("float32"),
                "y": np.random.default_rng(2).integers(0, 3, 64)}
        fitter.fit(data, epochs=epochs, batch_size=16, seed=0, run=run, verbose=0)
        return [w.copy() for w in model.get_weights()]

    straight = fit(2, tmp_path / "straight")
    fit(1, tmp_path / "killed")
    resumed = fit(2, tmp_path / "killed")
    for a, b in zip(straight, resumed):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
