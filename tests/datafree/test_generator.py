"""procedure=datafree_distill: DAFL's and DFAD's losses by hand, the generator, the
separation of the two updates, both methods end to end, resume, and no real data."""
from __future__ import annotations

import csv
import dataclasses
import math
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from procedures import datafree_distill, train
from src.datafree.generator import GeneratorDistiller, build_generator, dafl_losses, discrepancy
from src.errors import ConfigError

FAST = ["generator.epochs=2", "generator.steps_per_epoch=3", "generator.batch_size=16", "generator.width=8",
        "generator.pool=32"]


def test_dafl_losses_by_hand():
    """Logits (ln 3, 0) and (0, 0): softmax (3/4, 1/4) and (1/2, 1/2), both argmax 0, so the
    one-hot CE is the mean of -ln 3/4 and -ln 1/2; the batch mean is (5/8, 3/8); features
    (1, -2), (3, 0) have mean |f| 3/2."""
    out = dafl_losses(tf.constant([[math.log(3.0), 0.0], [0.0, 0.0]]), tf.constant([[1.0, -2.0], [3.0, 0.0]]),
                      oh=1.0, a=0.1, ie=5.0)
    one_hot = (-math.log(0.75) - math.log(0.5)) / 2
    info = 0.625 * math.log10(0.625) + 0.375 * math.log10(0.375)
    assert float(out["one_hot"]) == pytest.approx(one_hot, rel=1e-6)
    assert float(out["activation"]) == pytest.approx(-1.5)
    assert float(out["info_entropy"]) == pytest.approx(info, rel=1e-6)
    assert float(out["generator_loss"]) == pytest.approx(one_hot - 0.15 + 5 * info, rel=1e-6)


def test_discrepancy_by_hand():
    assert float(discrepancy(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[0.0, 0.0], [1.0, 1.0]]))) == 2.0


def test_the_generator_makes_images_in_the_unit_range_and_refuses_odd_sizes():
    generator = build_generator(10, (28, 28, 1), width=8, bn_epsilon=0.8)
    images = generator(tf.random.normal([5, 10]), training=True).numpy()
    assert images.shape == (5, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    assert generator.get_layer("conv1_bn").epsilon == pytest.approx(0.8)
    with pytest.raises(ConfigError, match="not divisible by 4"):
        build_generator(10, (30, 30, 1), width=8, bn_epsilon=0.8)


def _trainer(method: str, **weights) -> GeneratorDistiller:
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(name="flat"),
                                keras.layers.Dense(6, name="hidden"), keras.layers.Dense(3, name="out")])
    student = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    gen = OmegaConf.create({"method": method, "batch_size": 8, "latent_dim": 4, "student_steps": 2, "oh": 1.0,
                            "a": 0.1, "ie": 5.0, "temperature": 1.0, **weights})
    return GeneratorDistiller(build_generator(4, (8, 8, 1), 4, 0.8), student, teacher, gen, feature_layer="hidden",
                              generator_optimizer=keras.optimizers.Adam(0.1),
                              student_optimizer=keras.optimizers.Adam(0.1), seed=0)


def _weights(model) -> list[np.ndarray]:
    return [w.numpy().copy() for w in model.trainable_variables]


def test_the_student_s_distillation_loss_never_reaches_the_generator():
    """With every generator weight 0 the generator has nothing to learn from: its weights
    stay, though the student learns on its images."""
    trainer = _trainer("dafl", oh=0.0, a=0.0, ie=0.0)
    generator, student = _weights(trainer.generator), _weights(trainer.student)
    trainer.steps(2)
    assert all(np.array_equal(a, b) for a, b in zip(generator, _weights(trainer.generator)))
    assert not all(np.array_equal(a, b) for a, b in zip(student, _weights(trainer.student)))


def test_the_adversarial_step_moves_both_and_reports_the_discrepancy():
    trainer = _trainer("adversarial")
    generator, student = _weights(trainer.generator), _weights(trainer.student)
    out = trainer.steps(3)
    assert float(out["generator_discrepancy"]) > 0 and set(out) == {"loss", "generator_discrepancy", "agreement"}
    assert not all(np.array_equal(a, b) for a, b in zip(generator, _weights(trainer.generator)))
    assert not all(np.array_equal(a, b) for a, b in zip(student, _weights(trainer.student)))


@pytest.mark.parametrize("method", ["dafl", "adversarial"])
def test_both_methods_run_and_store_their_artifacts(make_cfg, method):
    cfg = make_cfg("procedure=datafree_distill", f"generator={method}", *FAST)
    metrics = datafree_distill.run(cfg)
    run = datafree_distill.artifact(cfg)
    assert run.is_done() and metrics["epochs"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert (run.dir / "samples" / "epoch-002.png").stat().st_size > 1000
    assert run.key["generator"]["lr"] == (0.2 if method == "dafl" else 1e-3)  # the method's published value
    assert run.key["generator"]["feature_layer"] == ("fc1_relu" if method == "dafl" else None)  # lenet's, for DAFL
    assert metrics["selection"].startswith("none")
    covered = int(list(csv.DictReader((run.dir / "history.csv").open()))[-1]["generated_classes"])
    assert metrics["generated_classes"] == covered and metrics["missing_classes"] == 10 - covered
    generated = 2 * 3 * 16 * (1 if method == "dafl" else 6)  # an adversarial iteration draws 5 student batches + 1
    assert metrics["generated_per_second"] * metrics["train_seconds"] == pytest.approx(generated)


def _teacher_network(cfg):
    from procedures._inputs import build_model, load_data
    return build_model(cfg.model, load_data(cfg), 0)


def test_dafl_reads_the_120_features_of_lenet_as_dafl_s_code_does(make_cfg):
    cfg = make_cfg("procedure=datafree_distill", "model=lenet")
    teacher = _teacher_network(cfg)
    layer = datafree_distill.feature_layer(cfg, teacher)
    assert layer == "fc1_relu" and teacher.get_layer(layer).output.shape[-1] == 120


def test_a_network_that_declares_no_features_gives_its_output_layer_s_input(make_cfg):
    cfg = make_cfg("procedure=datafree_distill", "model=hinton1200")
    assert datafree_distill.feature_layer(cfg, _teacher_network(cfg)) == "fc2_dropout"
    assert datafree_distill.named_feature_layer(cfg) is None  # so the key of these runs did not change


def test_a_teacher_file_gives_its_output_layer_s_input_and_a_given_layer_wins(make_cfg, tmp_path):
    cfg = make_cfg("procedure=datafree_distill", "model=lenet")
    file = tmp_path / "teacher.keras"
    _teacher_network(cfg).save(file)
    by_path = make_cfg("procedure=datafree_distill", f"teacher.path={file}")
    assert datafree_distill.feature_layer(by_path, _teacher_network(cfg)) == "fc2_relu"
    given = make_cfg("procedure=datafree_distill", "generator.feature_layer=conv2_relu")
    assert datafree_distill.feature_layer(given, _teacher_network(cfg)) == "conv2_relu"
    assert datafree_distill.artifact(given).dir != datafree_distill.artifact(cfg).dir


def test_the_summary_warns_when_the_generator_misses_classes(make_cfg):
    cfg = make_cfg("procedure=datafree_distill", *FAST)
    metrics = {"teacher_test_accuracy": 0.9, "test_accuracy": 0.1, "fraction_of_teacher": 0.11,
               "generated_agreement": 1.0, "generated_classes": 1, "missing_classes": 9}
    _, notes = datafree_distill.summary(cfg, metrics)
    assert any("only 1 of 10 classes" in note for note in notes)
    _, notes = datafree_distill.summary(cfg, {**metrics, "generated_classes": 10, "missing_classes": 0})
    assert not any("warning" in note for note in notes)


def test_a_killed_run_resumes_where_it_stopped(make_cfg, monkeypatch):
    import src.loop as loop
    from procedures._upstream import model_train_config
    cfg = make_cfg("procedure=datafree_distill", *FAST)
    real = loop.report_epoch

    def killed_after_epoch_1(row, writer):
        numbers = real(row, writer)
        if row["epoch"] == 2 and "generated_agreement" in row:
            raise KeyboardInterrupt  # before epoch 2's checkpoint
        return numbers

    monkeypatch.setattr(loop, "report_epoch", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        datafree_distill.run(cfg)
    assert not datafree_distill.artifact(cfg).is_done()
    monkeypatch.setattr(loop, "report_epoch", real)
    resumed = datafree_distill.run(cfg)
    assert resumed["resumed_from_epoch"] == 1
    again = datafree_distill.artifact(cfg).dir.parents[3] / "again"  # a fresh store with the same teacher
    shutil.copytree(train.artifact(model_train_config(cfg, "teacher")).dir.parent, again / "synthetic" / "train")
    whole = datafree_distill.run(make_cfg("procedure=datafree_distill", *FAST, f"paths.runs={again}"))
    assert whole["resumed_from_epoch"] == 0
    assert resumed["test_accuracy"] == pytest.approx(whole["test_accuracy"], abs=1e-6)


def test_no_real_training_image_is_read(make_cfg, monkeypatch):
    """The teacher is trained first; then the training and validation images are NaN."""
    cfg = make_cfg("procedure=datafree_distill", *FAST)
    train.run(make_cfg("procedure=train"))
    real_load = datafree_distill.load_data

    def poisoned(config):
        data = real_load(config)
        return dataclasses.replace(data, x_train=np.full_like(data.x_train, np.nan),
                                   x_val=np.full_like(data.x_val, np.nan))

    monkeypatch.setattr(datafree_distill, "load_data", poisoned)
    metrics = datafree_distill.run(cfg)
    assert math.isfinite(metrics["test_accuracy"]) and metrics["generated_agreement"] >= 0
