"""The joint Hide-and-Seek model: input -> hider -> binary mask -> input * mask -> seeker.

It holds the hider and seeker as the same Keras models that pretraining saves, so
pretrained weights move in by layer name (`transfer_by_name`). Its state that is not
trained (slope, alpha controller, noise generator, the weights kept at every alpha) is
tf.Variables tracked by the model, hence read inside the compiled step and saved in
the fit loop's checkpoints.
"""
from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from src import binary
from src.errors import ArtifactError
from src.hns_alpha import AlphaController
from src.hns_metrics import objective
from src.losses import accuracy

log = logging.getLogger(__name__)
SNAPSHOT_LIMIT_BYTES = 1 << 30  # weights kept at every alpha: skipped (with a warning) above 1 GiB


class KeptWeights(tf.Module):
    """One slot per alpha level for every joint weight (the weights reached at each alpha),
    and which slots are filled.

    A tf.Module, not a list on the model: Keras 3 leaves a plain list of tf.Variables
    set on a Model out of tf.train.Checkpoint, so a resumed run scored (and saved) the
    alphas left before the kill with all-zero weights (tests/test_hns_resume.py)."""

    def __init__(self, weights: list, levels: int):
        super().__init__(name="kept_alpha_weights")
        self.values = [tf.Variable(tf.zeros((levels, *w.shape), tf.float32), trainable=False) for w in weights]
        self.taken = tf.Variable(tf.zeros(levels, tf.bool), trainable=False)


class HideAndSeek(keras.Model):
    def __init__(self, hider: keras.Model, seeker: keras.Model, controller: AlphaController, *,
                 estimator: str | None = None, monitor: str = "classification", slope_factor: float = 1.0, slope_max: float = 1000.0,
                 seed: int = 0, keep_alpha_weights: bool = True, logit_penalty: float = 0.0):
        super().__init__(name="hide_and_seek")
        self.hider, self.seeker, self.controller = hider, seeker, controller
        self.estimator = estimator  # None = deterministic threshold
        self.monitor = monitor  # which loss the adaptive alpha watches: classification | total
        self.slope_factor, self.slope_max = float(slope_factor), float(slope_max)
        self.logit_penalty = float(logit_penalty)  # weight of mean(a^2): keeps the hider's sigmoid out of saturation
        self.slope = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="slope")
        self.noise = tf.random.Generator.from_seed(int(seed))  # training masks; in the checkpoint
        self.eval_seed = int(seed)  # sampled test masks (sampled_fn): stateless
        self.snapshots = None
        if controller.adaptive and keep_alpha_weights:
            levels = len(controller.levels)
            size = levels * sum(int(np.prod(w.shape)) * 4 for w in self.joint_weights)
            if size > SNAPSHOT_LIMIT_BYTES:
                log.warning("not keeping the weights of every alpha: %d copies would take %.1f GB "
                            "(set hns.keep_alpha_weights=false to silence this)", levels, size / 2 ** 30)
            else:
                self.snapshots = KeptWeights(self.joint_weights, levels)

    @property
    def joint_weights(self) -> list:
        return list(self.hider.weights) + list(self.seeker.weights)

    # ---- forward ------------------------------------------------------------------
    def mask(self, a: tf.Tensor, training: bool) -> tf.Tensor:
        """The 0/1 mask for hider logits a: sampled while training a stochastic layer,
        thresholded at 0.5 otherwise."""
        if self.estimator is None or not training:
            return binary.threshold(a)
        return binary.sample(a, self.noise.uniform(tf.shape(a)), self.estimator, self.slope.read_value())

    def classify(self, x: tf.Tensor, mask: tf.Tensor, training: bool) -> tf.Tensor:
        return tf.cast(self.seeker(x * tf.cast(mask, x.dtype), training=training), tf.float32)

    def loss_fn(self, batch: dict, training: bool) -> dict:
        """src.fit loss function: the alpha-weighted objective; training steps also update
        alpha (adaptive) and the slope (sa). Evaluation thresholds the mask at 0.5.
        Both modes report the same names (the fit loop learns them from evaluation)."""
        x, y = batch["x"], batch["y"]
        a = tf.cast(self.hider(x, training=training), tf.float32)
        alpha = self.controller.alpha.read_value()
        slope = self.slope.read_value()
        mask = self.mask(a, training)
        logits = self.classify(x, mask, training)
        terms = objective(y, logits, mask, alpha)
        loss = terms["loss"]
        logit_ms = tf.reduce_mean(tf.square(a))
        if self.logit_penalty:
            loss = loss + self.logit_penalty * logit_ms
        if training and self.estimator == "reinforce":
            surrogate = binary.reinforce_surrogate(a, mask, terms["per_example"])
            loss = loss + surrogate - tf.stop_gradient(surrogate)
        if training:
            monitored = terms["classification"] if self.monitor == "classification" else terms["loss"]
            lowered = self.controller.update(monitored)
            if self.snapshots is not None:
                self._snapshot(lowered)
            if self.estimator == "sa":
                binary.advance_slope(self.slope, self.slope_factor, self.slope_max)
        return {"loss": loss, "classification": terms["classification"], "hidden": 1.0 - terms["kept"],
                "accuracy": accuracy(y, logits), "alpha": alpha, "slope": slope, "logit_rms": tf.sqrt(logit_ms)}

    def sampled_fn(self, batch: dict, training: bool = False) -> dict:
        """Evaluation with a sampled (not thresholded) mask: the test figure the seed
        reported for stochastic layers.

        Its noise is stateless (from the seed), not drawn from the training generator:
        the evaluator's first, metric-discovering call drew from that generator too, so a
        resumed run (whose first sampled evaluation comes after the restore) reported
        other sampled figures than an uninterrupted one (tests/test_hns_resume.py). Now
        the figure depends on the weights only. Every evaluation batch gets the same noise
        pattern; the batches hold different images, so the mean stays unbiased."""
        x, y = batch["x"], batch["y"]
        a = tf.cast(self.hider(x, training=False), tf.float32)
        u = tf.random.stateless_uniform(tf.shape(a), seed=[self.eval_seed, 1])
        mask = binary.sample(a, u, self.estimator, self.slope.read_value())
        logits = self.classify(x, mask, False)
        return {"loss": tf.constant(0.0), "accuracy": accuracy(y, logits), "hidden": 1.0 - tf.reduce_mean(mask)}

    def mask_only_fn(self, batch: dict, fill: float) -> dict:
        """Evaluation of the seeker shown the (thresholded) mask alone: kept pixels set to
        the constant `fill` instead of the image. High accuracy here means the mask's layout
        itself tells the class (the hider encodes it in where it keeps pixels), so F and I
        say little about which part of the image was looked at."""
        x, y = batch["x"], batch["y"]
        mask = binary.threshold(tf.cast(self.hider(x, training=False), tf.float32))
        logits = self.classify(tf.fill(tf.shape(x), tf.cast(fill, x.dtype)), mask, False)
        return {"loss": tf.constant(0.0), "accuracy": accuracy(y, logits)}

    def _snapshot(self, lowered: tf.Tensor) -> None:
        """When alpha was just lowered, keep the weights trained at the previous alpha."""
        def keep():
            slot = self.controller.level - 1
            for store, weight in zip(self.snapshots.values, self.joint_weights):
                store[slot].assign(tf.cast(weight, tf.float32))
            self.snapshots.taken[slot].assign(True)
            return tf.constant(True)
        tf.cond(lowered, keep, lambda: tf.constant(False))

    def kept_alphas(self) -> list[tuple[float, list[np.ndarray]]]:
        """(alpha, weights) of every alpha left behind by the adaptive schedule, in order."""
        if self.snapshots is None:
            return []
        taken = self.snapshots.taken.numpy()
        return [(self.controller.levels[i], [s[i].numpy() for s in self.snapshots.values])
                for i in range(len(taken)) if taken[i]]

    def restore_alpha(self, alpha: float) -> None:
        """Load the weights kept when the schedule left `alpha` (one slot, not all of them)."""
        slot = self.controller.levels.index(alpha)
        if self.snapshots is None or not bool(self.snapshots.taken[slot]):
            raise ValueError(f"no weights were kept for alpha {alpha}")
        for weight, store in zip(self.joint_weights, self.snapshots.values):
            weight.assign(tf.cast(store[slot], weight.dtype))

    def set_joint_weights(self, values: list[np.ndarray]) -> None:
        for weight, value in zip(self.joint_weights, values):
            weight.assign(value.astype(weight.dtype))


def transfer_by_name(source: keras.Model, target: keras.Model, what: str) -> int:
    """Copy weights from source to target layer by layer, matched by name (never by
    order: the seed's order-and-shape matching silently skipped layers). Every layer with
    weights must exist on both sides with the same shapes, else ArtifactError names the
    layers that do not match. Returns the number of layers copied."""
    ours = {layer.name: layer for layer in target.layers if layer.weights}
    theirs = {layer.name: layer for layer in source.layers if layer.weights}
    problems = []
    only_theirs = sorted(set(theirs) - set(ours))
    only_ours = sorted(set(ours) - set(theirs))
    if only_theirs:
        problems.append(f"layers only in the pretrained {what}: {', '.join(only_theirs)}")
    if only_ours:
        problems.append(f"layers missing from the pretrained {what}: {', '.join(only_ours)}")
    for name in sorted(set(ours) & set(theirs)):
        a = [tuple(w.shape) for w in theirs[name].weights]
        b = [tuple(w.shape) for w in ours[name].weights]
        if a != b:
            problems.append(f"layer {name} has weights {a} in the pretrained {what} but {b} here")
    if problems:
        raise ArtifactError(
            f"cannot load the pretrained {what} '{source.name}' into '{target.name}' by layer name: "
            + "; ".join(problems) + f". Fix: pretrain a {what} with the same hns.{what}, hns.mask_channels and "
            f"dataset (drop hns.{what}_path to use the store's), or use hns.init=scratch")
    for name, layer in ours.items():
        layer.set_weights(theirs[name].get_weights())
    return len(ours)
