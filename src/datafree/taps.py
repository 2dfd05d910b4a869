"""Reading a model's inner activations by layer name, flattened per example."""
from __future__ import annotations

import keras
import tensorflow as tf

from models import output_layer
from src.artifacts import check_layers, layer_tap


class ActivationTap:
    """f(x) -> list of [batch, units] float32 activations of the named layers (their
    outputs, i.e. pre-activations for this project's models), with the logits (the output
    layer's, whatever its name) divided by `temperature`. Inference mode: dropout off."""

    def __init__(self, model: keras.Model, layers: list[str], temperature: float = 1.0, key: str = "stats.layers"):
        check_layers(model, layers, "the teacher", key)
        self.layers = list(layers)
        self.output = output_layer(model)
        self.temperature = float(temperature)
        self.model = layer_tap(model, layers)
        self.dims = [int(tf.reduce_prod(shape[1:])) for shape in
                     [model.get_layer(name).output.shape for name in layers]]
        self.shapes = [tuple(int(d) for d in model.get_layer(name).output.shape[1:]) for name in layers]

    def __call__(self, x: tf.Tensor) -> list[tf.Tensor]:
        outputs = self.model(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        flat = [tf.reshape(tf.cast(out, tf.float32), [tf.shape(out)[0], -1]) for out in outputs]
        return [a / self.temperature if name == self.output else a for name, a in zip(self.layers, flat)]
