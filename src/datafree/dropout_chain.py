"""The teacher run layer by layer with fixed dropout masks: the forward pass of the
all_layers_dropout objective."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from models import output_layer
from src.errors import ArtifactError


class DropoutChain:
    """The teacher run layer by layer with fixed dropout masks (for all_layers_dropout).

    Masks are drawn once per batch and kept for all steps; they use inverted-dropout
    scaling (mask / keep), exactly what the teacher saw in training, so the activations
    matched have the scale the statistics were taken at. Needs a teacher whose layers form
    one chain (all of this project's models do).
    """

    def __init__(self, teacher, layers: list[str], temperature: float):
        self.layers = teacher.layers[1:] if isinstance(teacher.layers[0], keras.layers.InputLayer) else teacher.layers
        for previous, layer in zip(self.layers, self.layers[1:]):
            if layer.input is not previous.output:
                raise ArtifactError(f"all_layers_dropout needs a teacher whose layers form one chain; "
                                    f"'{layer.name}' does not follow '{previous.name}'")
        self.dropouts = [layer for layer in self.layers if isinstance(layer, keras.layers.Dropout)]
        if not self.dropouts:
            raise ArtifactError(f"teacher '{teacher.name}' has no Dropout layers: all_layers_dropout is for "
                                "teachers trained with dropout (e.g. hinton1200); use all_layers")
        self.tapped = list(layers)
        self.temperature = temperature
        self.output = output_layer(teacher)

    def draw_masks(self, size: int, rng: np.random.Generator) -> list[np.ndarray]:
        masks = []
        for layer in self.dropouts:
            units = int(np.prod(layer.input.shape[1:]))
            keep = 1.0 - layer.rate
            masks.append(((rng.random((size, units)) < keep) / keep).astype(np.float32))
        return masks

    def __call__(self, x: tf.Tensor, masks: list[tf.Tensor]) -> list[tf.Tensor]:
        outputs, next_mask = {}, iter(masks)
        for layer in self.layers:
            if isinstance(layer, keras.layers.Dropout):
                x = tf.reshape(tf.reshape(x, [tf.shape(x)[0], -1]) * next(next_mask), tf.shape(x))
            else:
                x = layer(x, training=False)
            if layer.name in self.tapped:
                flat = tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])
                outputs[layer.name] = flat / self.temperature if layer.name == self.output else flat
        return [outputs[name] for name in self.tapped]
