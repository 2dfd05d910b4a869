"""Training-time augmentation (`augment=`), applied inside the compiled train step.

Random shifts (up to 10% of the image size, zero fill), random crops (`crop`: pad 4 pixels
of zeros on every side and cut a window of the original size, the CIFAR recipe) and
horizontal flips, drawn per example (Keras' preprocessing layers and random ops), then,
with `mixup`, each image blended with another image of the batch (Zhang et al. 2018): a
weight and a random partner per example, or (`mixup_per=batch`, Beyer et al. 2022) one
weight for the batch and the batch rolled by one as the partners.
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
    """The run's augmentation: `augment`, seeded by `seed`, mixup at `mixup_alpha` drawn
    per `mixup_per`."""
    return make_augment(cfg.augment, cfg.seed, cfg.mixup_alpha, cfg.mixup_per)


def augment_key(cfg):
    """What of the augmentation settings shapes a trained model (for the run store's key).
    Mixup's draw enters only when it is per batch: per example is what every mixup key
    meant before the setting existed, so those stored runs keep their keys."""
    if not cfg.augment.endswith("mixup"):
        return cfg.augment
    key = {"kind": cfg.augment, "mixup_alpha": cfg.mixup_alpha}
    return key if cfg.mixup_per == "example" else {**key, "mixup_per": cfg.mixup_per}


def make_augment(kind: str, seed: int, mixup_alpha: float = 1.0,
                 mixup_per: str = "example") -> Callable[[dict], dict] | None:
    """batch -> an augmented copy of the batch (its "x" images, channels last; with mixup
    also its labels, see Mixup); None for "none"."""
    if kind == "none":
        return None
    geometric = _geometric(kind.removesuffix("mixup").rstrip("_"), seed)
    mixup = Mixup(mixup_alpha, seed + 3, mixup_per) if kind.endswith("mixup") else None

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
    """Blend each example with a partner of the same batch: x = w x + (1 - w) x_partner,
    w ~ Beta(alpha, alpha) folded to w >= 0.5 so that "y" stays the larger share.

    `per="example"` (Zhang et al.) draws a weight and a random partner for every example;
    the fold leaves the mixture's distribution unchanged, since the partner is random.
    `per="batch"` (Beyer et al. 2022, the big_vision code) draws one weight for the whole
    batch and takes the batch rolled by one as the partners (example i blends with i - 1):
    cheaper, and every image of the batch is blended to the same degree.

    Adds "y_mix" (the partner's labels) and "mix_weight" (w, one per example);
    src.losses.cross_entropy takes them to mix the hard-label loss. A distilled student
    needs neither: the live teacher labels the blended image itself."""

    def __init__(self, alpha: float, seed: int, per: str = "example"):
        self.alpha = float(alpha)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.random_sources = [self.seed_generator]
        self._draw = {"example": self._per_example, "batch": self._per_batch}[per]

    def __call__(self, batch: dict) -> dict:
        x = batch["x"]
        size = tf.shape(x)[0]
        weight, partner = self._draw(size)
        weight = tf.maximum(weight, 1.0 - weight)
        w = tf.reshape(tf.cast(weight, x.dtype), tf.concat([[size], tf.ones([tf.rank(x) - 1], tf.int32)], 0))
        out = {**batch, "x": w * x + (1.0 - w) * tf.gather(x, partner)}
        if "y" in batch:
            out.update(y_mix=tf.gather(batch["y"], partner), mix_weight=weight)
        return out

    def _per_example(self, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """A weight per example and a random permutation of the batch as the partners."""
        weight = keras.random.beta((size,), self.alpha, self.alpha, seed=self.seed_generator)
        partner = tf.argsort(keras.random.uniform((size,), seed=self.seed_generator))
        return weight, partner

    def _per_batch(self, size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One weight for every example, and partner i - 1 for example i (a roll by one)."""
        weight = keras.random.beta((), self.alpha, self.alpha, seed=self.seed_generator)
        partner = tf.roll(tf.range(size), shift=1, axis=0)
        return tf.fill([size], weight), partner


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
