"""Quantisation-aware training for Keras 3 (distill.quantize=int8), which has no QAT API
of its own (keras.quantizers offers the fake-quant op; tensorflow-model-optimization is
Keras 2 only).

`quantization_aware(student)` is a clone of the student that shares its layers and
weights but computes what the integer-only LiteRT model computes, in float:

- the kernel of every Dense and Conv2D layer fake-quantised per output channel,
  symmetric, narrow range [-127, 127] (LiteRT's int8 weights);
- the activations fake-quantised per tensor, asymmetric, 8 bits, where LiteRT quantises
  them: the output of each ReLU and of a Dense/Conv2D not followed by an activation (the
  logits), over a range tracked as an exponential moving average of the batch's min and
  max (momentum 0.99) while training, and used as it stands in inference.

Gradients pass straight through the rounding (tf.quantization.fake_quant_*, the ops the
LiteRT converter reads). Training updates the student's own weights; the student is
saved as a plain float model, and the deploy step converts it to int8 with the same
calibration as post-training int8, so the two are compared on equal terms
(docs/deploy.md#quantisation-aware-distillation).
"""
from __future__ import annotations

import keras
from keras import ops

from src.errors import ConfigError

QUANTIZED_KERNELS = (keras.layers.Dense, keras.layers.Conv2D)
ACTIVATIONS = (keras.layers.ReLU, keras.layers.Activation)
MOMENTUM = 0.99


def fake_quant_kernel(kernel):
    """Per-output-channel symmetric int8 (narrow range) fake quantisation of a kernel whose
    last axis is the output channel."""
    axes = tuple(range(len(kernel.shape) - 1))
    bound = ops.maximum(ops.max(ops.abs(kernel), axis=axes), 1e-8)
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=8, narrow_range=True,
                                                         axis=len(kernel.shape) - 1)


class QuantizedKernel(keras.layers.Layer):
    """A Dense or Conv2D layer of the student, called with its kernel fake-quantised."""

    def __init__(self, layer, **kwargs):
        super().__init__(name=f"{layer.name}_qat", **kwargs)
        self.inner = layer

    def call(self, x):
        layer = self.inner
        kernel = fake_quant_kernel(layer.kernel)
        if isinstance(layer, keras.layers.Dense):
            y = ops.matmul(x, kernel)
        else:
            y = ops.conv(x, kernel, strides=layer.strides, padding=layer.padding, data_format=layer.data_format,
                         dilation_rate=layer.dilation_rate)
        if layer.use_bias:
            y = y + layer.bias
        return layer.activation(y)


class QuantizedOutput(keras.layers.Layer):
    """A layer whose output is fake-quantised over its moving-average range."""

    def __init__(self, layer, **kwargs):
        super().__init__(name=layer.name if layer.name.endswith("_qat") else f"{layer.name}_qat", **kwargs)
        self.inner = layer

    def build(self, input_shape):
        self.low = self.add_weight(shape=(), initializer="zeros", trainable=False, name="low")
        self.high = self.add_weight(shape=(), initializer="zeros", trainable=False, name="high")
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")

    def call(self, x, training=False):
        y = self.inner(x)
        if training:
            first = ops.equal(self.seen, 0.0)
            low, high = ops.min(y), ops.max(y)
            self.low.assign(ops.where(first, low, MOMENTUM * self.low + (1 - MOMENTUM) * low))
            self.high.assign(ops.where(first, high, MOMENTUM * self.high + (1 - MOMENTUM) * high))
            self.seen.assign(1.0)
        low, high = ops.minimum(self.low, 0.0), ops.maximum(self.high, 0.0)  # 0 must be exact
        quantized = keras.quantizers.fake_quant_with_min_max_vars(y, low, ops.maximum(high, low + 1e-6), num_bits=8)
        return ops.where(ops.equal(self.seen, 0.0), y, quantized)


def quantization_aware(student: keras.Model) -> keras.Model:
    """The fake-quantised clone of a functional student (its layers and weights shared)."""
    if not isinstance(student, keras.Model) or not hasattr(student, "_nodes_by_depth"):
        raise ConfigError(f"distill.quantize=int8 needs a functional student; {student.name} is not one")
    feeds_activation = set()
    for layer in student.layers:
        if isinstance(layer, ACTIVATIONS + (keras.layers.BatchNormalization,)):
            inbound = layer.input._keras_history.operation
            feeds_activation.add(inbound.name)

    def clone(layer):
        if isinstance(layer, QUANTIZED_KERNELS):
            quantized = QuantizedKernel(layer)
            return quantized if layer.name in feeds_activation else QuantizedOutput(quantized)
        if isinstance(layer, ACTIVATIONS):
            return QuantizedOutput(layer)
        return layer
    return keras.models.clone_model(student, clone_function=clone)
