"""Training-time augmentation (`augment=`), applied inside the compiled train step.

Random shifts (up to 10% of the image size, zero fill) and horizontal flips, drawn per
example with Keras' preprocessing layers. With augmentation, distillation runs the
teacher on every augmented batch (its logits cannot be cached), so teacher and student
always see the same view: the teacher labels images it never saw, which is where its
soft targets carry the most information.
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

SHIFT = 0.1  # fraction of height and width


def make_augment(kind: str, seed: int) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """x -> an augmented copy of the batch x (images, channels last); None for "none"."""
    if kind == "none":
        return None
    layers = []
    if "shift" in kind:
        layers.append(keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed))
    if "flip" in kind:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    pipeline = keras.Sequential(layers, name=f"augment_{kind}")

    def augment(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(pipeline(x, training=True), x.dtype)
    return augment
