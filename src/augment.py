"""Training-time augmentation (`augment=`), applied inside the compiled train step.

Random shifts (up to 10% of the image size, zero fill), random crops (`crop`: pad 4 pixels
of zeros on every side and cut a window of the original size, the CIFAR recipe) and
horizontal flips, drawn per example (Keras' preprocessing layers and random ops). With augmentation, distillation runs the
teacher on every augmented batch (its logits cannot be cached), so teacher and student
always see the same view: the teacher labels images it never saw, which is where its
soft targets carry the most information.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

SHIFT = 0.1  # fraction of height and width
CROP_PAD = 4  # pixels of zero padding around the image before a random crop


def make_augment(kind: str, seed: int) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """x -> an augmented copy of the batch x (images, channels last); None for "none"."""
    if kind == "none":
        return None
    layers = []
    if "crop" in kind:
        layers.append(PaddedRandomCrop(CROP_PAD, seed=seed + 2))
    if "shift" in kind:
        layers.append(keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed))
    if "flip" in kind:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    pipeline = keras.Sequential(layers, name=f"augment_{kind}")

    def augment(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(pipeline(x, training=True), x.dtype)
    return augment


class PaddedRandomCrop(keras.layers.Layer):
    """Zero-pad `pad` pixels on every side, then cut a window of the input's size at a
    random offset per example: a shift by up to `pad` pixels with zero fill."""

    def __init__(self, pad: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.pad = int(pad)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=True):
        if not training:
            return x
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        padded = tf.pad(x, [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]])
        offsets = keras.random.randint((tf.shape(x)[0], 2), 0, 2 * self.pad + 1, seed=self.seed_generator)
        rows = offsets[:, :1] + tf.range(height)[None, :]  # [batch, height] source rows
        cols = offsets[:, 1:] + tf.range(width)[None, :]
        picked = tf.gather(padded, rows, axis=1, batch_dims=1)  # [batch, height, padded width, channels]
        return tf.gather(picked, cols, axis=2, batch_dims=1)
