"""src/datafree/batchnorm.py: every BatchNorm batch of a reconstruction mixes the classes,
as DeepInversion's, since the running statistics it matches describe all classes together."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from procedures import optimize_dataset
from src.datafree.batchnorm import BatchNormObjective, interleaved
from src.datafree.reconstruct import InputOptimizer, reconstruct_classes
from src.errors import ConfigError


def _settings(**changes):
    return OmegaConf.create({"batch_size": 4, "bn_weight": 1.0, "init": [0.15, 0.1], **changes})


def _bn_teacher() -> keras.Model:
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.BatchNormalization()(inputs)))


def test_dealing_out_three_batches_of_four():
    assert interleaved(3, 4).tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]


def test_every_batch_of_a_chunk_holds_every_class():
    objective = BatchNormObjective(_settings(), seed=0, teacher=_bn_teacher())
    chunk = [(c, b) for b in range(2) for c in range(3)]  # round-robin, as reconstruct_classes orders it
    x, labels, targets = objective.prepare(chunk, (3,))
    assert x.shape == (24, 3) and sorted(labels.tolist()) == sorted([c for c, _ in chunk for _ in range(4)])
    for batch in labels.reshape(-1, 4):
        assert len(set(batch.tolist())) == 3  # a batch of one class fails here
    np.testing.assert_array_equal(targets[0].numpy(), labels)


def test_a_reconstruction_comes_back_in_class_order_with_its_labels():
    objective = BatchNormObjective(_settings(), seed=0, teacher=_bn_teacher())
    optimizer = InputOptimizer(objective.loss, lr=0.01, batch_size=4, clip=False)
    seen = []
    real = objective.prepare
    objective.prepare = lambda chunk, shape: seen.append(chunk) or real(chunk, shape)
    x, y, loss = reconstruct_classes(objective, optimizer, [0, 1, 2], per_class=6, batch_size=4, chunk_examples=24,
                                     steps=2, input_shape=(3,))
    assert seen[0] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert y.tolist() == [0] * 6 + [1] * 6 + [2] * 6 and x.shape == (18, 3) and np.isfinite(loss).all()
    logits = objective.tap(tf.constant(x))[-1]
    assert logits.shape == (18, 3)


def test_a_chunk_too_small_to_hold_every_class_is_refused_before_any_work(make_cfg, tmp_path):
    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.BatchNormalization()(keras.layers.Flatten()(inputs))
    teacher = tmp_path / "bn_teacher.keras"
    keras.Model(inputs, keras.layers.Dense(10)(hidden)).save(teacher)
    cfg = make_cfg("procedure=optimize_dataset", "optimize.objective=batchnorm", "optimize.batch_size=8",
                   "optimize.chunk_examples=16", f"teacher.path={teacher}")
    with pytest.raises(ConfigError, match="holds only 2 batches of 8: set optimize.chunk_examples>=80"):
        optimize_dataset.run(cfg)
    assert not list((tmp_path / "runs").rglob("DONE"))
