"""The teacher's outputs kept in the store: computed once per teacher and data, reused by
every student, float16 within its rounding of the live logits, and live again whenever
augmentation changes the inputs."""
from __future__ import annotations

import numpy as np
import pytest

from procedures import _upstream, distill
from procedures._inputs import load_data
from procedures._upstream import TEACHER_PASSES, stored_teacher_outputs, upstream_teacher
from src.fit import predict_logits


def test_a_sweep_of_students_runs_the_teacher_once(make_cfg):
    before = dict(TEACHER_PASSES)
    first = distill.run(make_cfg("procedure=distill", "student=lenet_half"))
    data = load_data(make_cfg("procedure=distill"))
    once = {split: TEACHER_PASSES[split] - before.get(split, 0) for split in ("train", "val", "test")}
    assert once == {"train": len(data.x_train), "val": len(data.x_val), "test": len(data.x_test)}
    second = distill.run(make_cfg("procedure=distill", "student=hinton800", "distill.temperature=2"))
    assert {split: TEACHER_PASSES[split] - before.get(split, 0) for split in once} == once  # read, not recomputed
    assert first["teacher_outputs"] == second["teacher_outputs"] == "stored (float16)"
    assert first["teacher_test_accuracy"] == second["teacher_test_accuracy"]


def test_stored_outputs_are_the_live_logits_to_float16_rounding(make_cfg):
    cfg = make_cfg("procedure=distill")
    data = load_data(cfg)
    teacher = upstream_teacher(cfg, data)
    stored = stored_teacher_outputs(cfg, teacher, data)
    live = predict_logits(teacher.model, data.x_test)
    assert isinstance(stored["test"], np.memmap) and stored["test"].dtype == np.float16
    assert np.allclose(stored["test"], live, rtol=2**-10, atol=2**-14)
    exact = stored_teacher_outputs(make_cfg("procedure=distill", "teacher.outputs=float32"), teacher, data)
    assert np.array_equal(exact["test"], live)


def test_kd_gain_with_float16_outputs_is_the_float32_gain_within_rounding(make_cfg):
    """The students differ by the logits' rounding only: their gains by at most two test images."""
    half = distill.run(make_cfg("procedure=distill", "train.epochs=2"))
    full = distill.run(make_cfg("procedure=distill", "train.epochs=2", "teacher.outputs=float32"))
    assert half["kd_gain"] == pytest.approx(full["kd_gain"], abs=2 / len(load_data(make_cfg()).x_test))


def test_augmentation_keeps_the_teacher_live(make_cfg, monkeypatch):
    def not_stored(*args):
        raise AssertionError("stored outputs read under augmentation")
    monkeypatch.setattr(_upstream, "stored_teacher_outputs", not_stored)
    monkeypatch.setattr(distill, "stored_teacher_outputs", not_stored)
    metrics = distill.run(make_cfg("procedure=distill", "augment=shift"))
    assert metrics["teacher_outputs"] == "computed per step (augment=shift)"
    assert "teacher_outputs" not in distill.artifact(make_cfg("procedure=distill", "augment=shift")).key


def test_logits_beyond_float16_are_refused_with_the_fix(make_cfg):
    import keras

    from src.errors import ArtifactError
    cfg = make_cfg("procedure=distill")
    data = load_data(cfg)
    inputs = keras.Input(data.input_shape)
    huge = keras.layers.Lambda(lambda x: keras.ops.sum(x, axis=[1, 2, 3])[:, None] * 0 + 1e6)(inputs)
    model = keras.Model(inputs, keras.layers.Concatenate()([huge] * data.num_classes))
    teacher = _upstream.Teacher(model, "test", "huge-logits", "huge")
    with pytest.raises(ArtifactError, match="do not fit float16.*fix: teacher.outputs=float32"):
        stored_teacher_outputs(cfg, teacher, data)
    assert stored_teacher_outputs(make_cfg("procedure=distill", "teacher.outputs=float32"), teacher, data)["test"].max() == 1e6
