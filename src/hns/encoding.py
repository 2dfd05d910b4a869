"""Does a mask show the evidence, or encode the class? (Jethani et al., "Have We Learned
to Explain?", AISTATS 2021.) A hider and seeker trained together can agree on a code:
the layout of the kept pixels tells the class by itself. Three diagnostics:

    mask only   the seeker shown the mask alone (kept pixels one grey): HideAndSeek.mask_only_fn;
                against chance, 1 / classes
    mask swap   each test image seen through the mask of an image of another class: the
                share classified as the mask's class (a code is read) and as the image's
                own class (the evidence is used)
    control     both tests again with code-free masks (support_masks): as many pixels kept
                per image as the run's mask, drawn at random among the image's own nonzero
                pixels. Where the background is 0 (digits, clothing), where an object has
                pixels is itself evidence, so these give the scores of a mask that follows
                the object and carries no code
    EVAL-X      an evaluator of the seeker's architecture trained once per data set on
                inputs with each pixel kept independently with probability 1/2 (hidden
                pixels 0), drawn independently of any hider, so it cannot have learned a
                code; a run's masks are scored by its accuracy on the masked test images
                and F, I, FII with it (F against its accuracy on whole images)
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from src.hns.scores import figures_of_merit
from src.losses import accuracy, cross_entropy

KEEP = 0.5  # EVAL-X: each pixel kept with this probability


def chance_level(num_classes: int) -> float:
    return 1.0 / num_classes


def swap_partners(y: np.ndarray, seed: int) -> np.ndarray:
    """For every example, the index of a random example of another class (deterministic
    in seed). Partners are drawn from a permutation; an example paired with its own class
    takes the next one in the permutation that is not."""
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(y))
    partners = np.full(len(y), -1, np.int64)
    for step in range(1, len(y)):  # over offsets in the permutation, not over examples
        todo = partners[order] < 0
        if not todo.any():
            break
        candidates = order[(np.arange(len(y)) + step) % len(y)]
        found = todo & (y[candidates] != y[order])
        partners[order[found]] = candidates[found]
    if (partners < 0).any():
        raise ValueError("the mask-swap test needs examples of at least two classes")
    return partners


def mask_swap_shares(classify: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                     masks: np.ndarray, seed: int) -> dict:
    """classify(images, masks) -> predicted classes. Each image through its partner's mask
    (swap_partners): the share predicted as the mask's class and as the image's class."""
    partners = swap_partners(y, seed)
    predicted = np.asarray(classify(x, masks[partners]))
    return {"swap_mask_class": float(np.mean(predicted == y[partners])),
            "swap_image_class": float(np.mean(predicted == y))}


def support_masks(x: np.ndarray, masks: np.ndarray, seed: int) -> np.ndarray:
    """Code-free masks [N, H, W, 1]: per image as many kept pixels as `masks` keeps, drawn
    at random among the pixels where x is nonzero in some channel (all of them, when the
    mask keeps more than the image has). They depend on the image's support only, never on
    its class."""
    support = np.any(x != 0, axis=-1).reshape(len(x), -1)
    kept = np.rint(np.mean(masks, axis=-1).reshape(len(x), -1).sum(axis=1)).astype(np.int64)
    draw = np.random.default_rng([seed, 11]).random(support.shape) + np.where(support, 0.0, 2.0)
    rank = np.argsort(np.argsort(draw, axis=1), axis=1)  # support pixels rank first, in random order
    out = (rank < kept[:, None]) & support
    return out.reshape(x.shape[:3] + (1,)).astype(np.float32)


def random_keep(x: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """x with each pixel kept where the uniform u [batch, H, W, 1] is below KEEP, 0 elsewhere
    (one draw per pixel, shared by its channels)."""
    return x * tf.cast(u < KEEP, x.dtype)


def evaluator_loss(model: keras.Model, seed: int):
    """loss_fn for src.fit: cross-entropy of the evaluator on randomly masked inputs. The
    masks come from the batch's images alone: training draws them from the evaluator's
    own generator, evaluation from fixed stateless noise (a reproducible figure)."""
    noise = tf.random.Generator.from_seed(seed)

    def loss_fn(batch: dict, training: bool) -> dict:
        x = batch["x"]
        shape = tf.concat([tf.shape(x)[:3], [1]], 0)
        u = noise.uniform(shape) if training else tf.random.stateless_uniform(shape, seed=[seed, 3])
        logits = tf.cast(model(random_keep(x, u), training=training), tf.float32)
        return {"loss": cross_entropy(batch["y"], logits), "accuracy": accuracy(batch["y"], logits)}
    return loss_fn


def evalx_scores(evaluator: keras.Model, x: np.ndarray, y: np.ndarray, masks: np.ndarray, whole_accuracy: float,
                 batch_size: int = 1024) -> dict:
    """The evaluator's accuracy on x * masks, and F, I, FII with it (F = that accuracy over
    its accuracy on whole images)."""
    correct = 0
    for start in range(0, len(x), batch_size):
        seen = x[start:start + batch_size] * masks[start:start + batch_size]
        logits = evaluator(tf.constant(seen, tf.float32), training=False)
        correct += int(np.sum(np.argmax(np.asarray(logits), -1) == y[start:start + batch_size]))
    merit = figures_of_merit(correct / len(x), 1.0 - float(np.mean(masks)), whole_accuracy)
    return {"evalx_accuracy": merit["accuracy"], "evalx_fidelity": merit["fidelity"], "evalx_fii": merit["fii"]}
