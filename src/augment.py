"""Training-time augmentation (`augment=`), applied inside the compiled train step.

Random shifts (up to 10% of the image size, zero fill), random crops (`crop`: pad 4 pixels
of zeros on every side and cut a window of the original size, the CIFAR recipe) and
horizontal flips, drawn per example (Keras' preprocessing layers and random ops), then,
with `mixup`, each image blended with another image of the batch (Zhang et al. 2018).
With augmentation, distillation runs the teacher on every augmented batch (its logits
cannot be cached), so teacher and student always see the same view: the teacher labels
images it never saw, which is where its soft targets carry the most information
(Beyer et al. 2022, "consistent teaching").
"""
from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

SHIFT = 0.1  # fraction of height and width
CROP_PAD = 4  # pixels of zero padding around the image before a random crop


def augment_for(cfg) -> Callable[[dict], dict] | None:
    """The run's augmentation: `augment`, seeded by `seed`, mixup at `mixup_alpha`."""
    return make_augment(cfg.augment, cfg.seed, cfg.mixup_alpha)


def augment_key(cfg):
    """What of the augmentation settings shapes a trained model (for the run store's key)."""
    return {"kind": cfg.augment, "mixup_alpha": cfg.mixup_alpha} if cfg.augment.endswith("mixup") else cfg.augment


def make_augment(kind: str, seed: int, mixup_alpha: float = 1.0) -> Callable[[dict], dict] | None:
    """batch -> an augmented copy of the batch (its "x" images, channels last; with mixup
    also its labels, see Mixup); None for "none"."""
    if kind == "none":
        return None
    geometric = _geometric(kind.removesuffix("mixup").rstrip("_"), seed)
    mixup = Mixup(mixup_alpha, seed + 3) if kind.endswith("mixup") else None

    def augment(batch: dict) -> dict:
        if geometric is not None:
            batch = {**batch, "x": geometric(batch["x"])}
        return mixup(batch) if mixup is not None else batch
    augment.random_sources = [part for part in (geometric, mixup) if part is not None]  # kept by checkpoints
    return augment


def _geometric(kind: str, seed: int) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """x -> x moved, cropped or flipped per example; None when `kind` has none of these."""
    if not kind:
        return None
    layers = []
    if "crop" in kind:
        layers.append(PaddedRandomCrop(CROP_PAD, seed=seed + 2))
    if "shift" in kind:
        layers.append(keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed))
    if "flip" in kind:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 1))
    pipeline = keras.Sequential(layers, name=f"augment_{kind}")

    def geometric(x: tf.Tensor) -> tf.Tensor:
        return tf.cast(pipeline(x, training=True), x.dtype)
    geometric.random_sources = [pipeline]
    return geometric


class Mixup:
    """Blend each example with a random partner of the same batch: x = w x + (1 - w) x_partner,
    w ~ Beta(alpha, alpha) per example, folded to w >= 0.5 so that "y" stays the larger
    share (the fold leaves the mixture's distribution unchanged: the partner is random).
    Adds "y_mix" (the partner's labels) and "mix_weight" (w); src.losses.cross_entropy
    takes them to mix the hard-label loss. A distilled student needs neither: the live
    teacher labels the blended image itself."""

    def __init__(self, alpha: float, seed: int):
        self.alpha = float(alpha)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.random_sources = [self.seed_generator]

    def __call__(self, batch: dict) -> dict:
        x = batch["x"]
        size = tf.shape(x)[0]
        weight = keras.random.beta((size,), self.alpha, self.alpha, seed=self.seed_generator)
        weight = tf.maximum(weight, 1.0 - weight)
        partner = tf.argsort(keras.random.uniform((size,), seed=self.seed_generator))
        w = tf.reshape(tf.cast(weight, x.dtype), tf.concat([[size], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        out = {**batch, "x": w * x + (1.0 - w) * tf.gather(x, partner)}
        if "y" in batch:
            out.update(y_mix=tf.gather(batch["y"], partner), mix_weight=weight)
        return out


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
