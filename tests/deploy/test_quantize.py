"""Quantisation-aware distillation: the fake-quantised clone computes with int8-rounded
weights and activations while training the student's own weights; distill.quantize and
distill.deploy run end to end on a small run."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from src.deploy.quantize import fake_quant_kernel, quantization_aware
from src.errors import ConfigError
from src.schema import validate
from tests.conftest import compose_config


def test_a_kernel_is_rounded_to_127_steps_of_its_largest_weight_per_output_channel():
    kernel = np.array([[1.0, 0.5], [-0.3, 0.25], [0.004, -0.1]], "float32")  # 3 inputs, 2 output channels
    steps = np.abs(kernel).max(axis=0) / 127
    np.testing.assert_allclose(np.asarray(fake_quant_kernel(kernel)), np.round(kernel / steps) * steps, atol=1e-6)


def test_the_clone_shares_the_student_s_weights_and_tracks_activation_ranges():
    inputs = keras.Input((4,))
    x = keras.layers.ReLU(name="fc_relu")(keras.layers.Dense(3, name="fc")(inputs))
    student = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    clone = quantization_aware(student)
    assert {id(v) for v in clone.trainable_variables} == {id(v) for v in student.trainable_variables}
    x = np.random.default_rng(0).random((16, 4)).astype("float32")
    clone(x, training=True)
    ranges = {layer.name: (float(layer.low), float(layer.high)) for layer in clone.layers if hasattr(layer, "low")}
    assert set(ranges) == {"fc_relu_qat", "logits_qat"} and ranges["fc_relu_qat"][0] == 0.0
    out = np.asarray(clone(x))  # 8-bit outputs: at most 256 distinct logits
    assert len(np.unique(out)) <= 256 and np.max(np.abs(out - np.asarray(student(x)))) < 0.1


def test_feature_methods_are_refused_with_quantize():
    with pytest.raises(ConfigError, match="distill.quantize=int8 .* distill.method=fitnet"):
        validate(compose_config("distill.quantize=int8", "distill.method=fitnet",
                                "distill.features.teacher_layers=[pool1]", "distill.features.student_layers=[pool1]"))
