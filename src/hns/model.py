"""The joint Hide-and-Seek model: input -> hider -> binary mask -> input * mask -> seeker.

It holds the hider and seeker as the same Keras models that pretraining saves, so
pretrained weights move in by layer name (`transfer_by_name`). Its state that is not
trained (slope, alpha controller, noise generator, the weights kept at every alpha) is
tf.Variables tracked by the model, hence read inside the compiled step and saved in
the fit loop's checkpoints. `build_joint_model` assembles it from fresh or pretrained parts.
"""
from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from models.hns import build_hider, build_seeker
from src.artifacts import load_model
from src.errors import ArtifactError
from src.hns import masks
from src.hns.alpha import AlphaController
from src.hns.losses import joint_objective
from src.losses import accuracy
from src.runtime import seed_everything
from src.schema.hns import binary_layer

log = logging.getLogger(__name__)
DEFAULT_RATE = 0.5  # sa: the slope grows by 50% per epoch unless hns.rate says otherwise
SNAPSHOT_LIMIT_BYTES = 1 << 30  # weights kept at every alpha: skipped (with a warning) above 1 GiB


class KeptWeights(tf.Module):
    """One slot per alpha level for every joint weight (the weights reached at each alpha),
    and which slots are filled.

    A tf.Module, not a list on the model: Keras 3 leaves a plain list of tf.Variables set
    on a Model out of tf.train.Checkpoint, and the kept weights must survive a resume."""

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
            return masks.threshold(a)
        return masks.sample(a, self.noise.uniform(tf.shape(a)), self.estimator, self.slope.read_value())

    def classify(self, x: tf.Tensor, mask: tf.Tensor, training: bool) -> tf.Tensor:
        """The seeker on the masked input; a frozen seeker (hns.mode=realx) always in
        inference mode, as the evaluator it is."""
        seen = x * tf.cast(mask, x.dtype)
        return tf.cast(self.seeker(seen, training=training and self.seeker.trainable), tf.float32)

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
        terms = joint_objective(y, logits, mask, alpha)
        loss = terms["loss"]
        logit_ms = tf.reduce_mean(tf.square(a))
        if self.logit_penalty:
            loss = loss + self.logit_penalty * logit_ms
        if training and self.estimator == "reinforce":
            surrogate = masks.reinforce_surrogate(a, mask, terms["per_example"])
            loss = loss + surrogate - tf.stop_gradient(surrogate)
        if training:
            monitored = terms["classification"] if self.monitor == "classification" else terms["loss"]
            lowered = self.controller.update(monitored)
            if self.snapshots is not None:
                self._snapshot(lowered)
            if self.estimator == "sa":
                masks.advance_slope(self.slope, self.slope_factor, self.slope_max)
        return {"loss": loss, "classification": terms["classification"], "hidden": 1.0 - terms["kept"],
                "accuracy": accuracy(y, logits), "alpha": alpha, "slope": slope, "logit_rms": tf.sqrt(logit_ms)}

    def sampled_fn(self, batch: dict, training: bool = False) -> dict:
        """Evaluation with a sampled (not thresholded) mask: the test figure the method
        reports for stochastic layers.

        Its noise is stateless (from the run's seed), not drawn from the training generator, so
        the figure depends on the weights only: a resumed run reports what an uninterrupted
        one does. Every evaluation batch gets the same noise pattern; the batches hold
        different images, so the mean stays unbiased."""
        x, y = batch["x"], batch["y"]
        a = tf.cast(self.hider(x, training=False), tf.float32)
        u = tf.random.stateless_uniform(tf.shape(a), seed=[self.eval_seed, 1])
        mask = masks.sample(a, u, self.estimator, self.slope.read_value())
        logits = self.classify(x, mask, False)
        return {"accuracy": accuracy(y, logits), "hidden": 1.0 - tf.reduce_mean(mask)}

    def mask_only_fn(self, batch: dict, fill: float) -> dict:
        """Evaluation of the seeker shown the (thresholded) mask alone: kept pixels set to
        the constant `fill` instead of the image. High accuracy here means the mask's layout
        itself tells the class (the hider encodes it in where it keeps pixels), so F and I
        say little about which part of the image was looked at."""
        x, y = batch["x"], batch["y"]
        mask = masks.threshold(tf.cast(self.hider(x, training=False), tf.float32))
        logits = self.classify(tf.fill(tf.shape(x), tf.cast(fill, x.dtype)), mask, False)
        return {"accuracy": accuracy(y, logits)}

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
    order and shape, which silently skips layers that differ). Every layer with
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


def build_joint_model(h, input_shape, num_classes: int, steps_per_epoch: int, seed: int, *, hider_from=None,
                      seeker_from=None, judge_from=None) -> HideAndSeek:
    """The joint model for the hns.* section `h`: fresh parts (seeded), loaded by layer name
    from `hider_from` / `seeker_from` (a .keras file or run folder) when given. With
    `judge_from` (hns.mode=realx) the seeker is that random-mask evaluator, frozen: only the
    hider learns, against a network that cannot read a code."""
    seed_everything(seed)
    hider = build_hider(h.hider, input_shape, h.mask_channels)
    seeker = build_seeker(h.seeker, input_shape, num_classes)
    for source, part, what in ((hider_from, hider, "hider"), (seeker_from, seeker, "seeker"),
                               (judge_from, seeker, "seeker")):
        if source:
            transfer_by_name(load_model(source, what), part, what)
    if judge_from:
        seeker.trainable = False
    stochastic, estimator = binary_layer(h)
    controller = AlphaController(h.alpha, h.alpha_step, h.alpha_min, h.patience, h.smoothing, h.min_delta)
    return HideAndSeek(hider, seeker, controller, estimator=estimator, monitor=h.monitor,
                       slope_factor=masks.slope_factor(slope_rate(h), steps_per_epoch) if estimator == "sa" else 1.0,
                       slope_max=h.slope_max, seed=seed, keep_alpha_weights=h.keep_alpha_weights,
                       logit_penalty=h.logit_penalty)


def slope_rate(h) -> float:
    """The sa estimator's slope growth per epoch: hns.rate, else the method's default."""
    return h.rate if h.rate is not None else DEFAULT_RATE
