"""Does a mask show the evidence, or encode the class? (Jethani et al., "Have We Learned
to Explain?", AISTATS 2021.) A hider and seeker trained together can agree on a code:
the layout of the kept pixels tells the class by itself. Three diagnostics:

    mask only   the seeker shown the mask alone (kept pixels one grey): HideAndSeek.mask_only_fn;
                against chance, 1 / classes
    mask swap   each test image seen through the mask of an image of another class: the
                share classified as the mask's class (a code is read) and as the image's
                own class (the evidence is used)
    control     both tests again with code-free masks (support_masks): the run's kept-pixel
                counts, shuffled across images (so a count that codes the class codes
                nothing), each drawn at random among the image's own nonzero pixels. Where
                the background is 0 (digits, clothing), where an object has pixels is itself
                evidence, so these give the scores of a mask as sparse as the run's that
                follows the object and carries no code
    EVAL-X      an evaluator of the seeker's architecture trained on inputs with each pixel
                kept independently with a keep rate (hidden pixels 0; `hns.evalx_keep`: 1/2,
                or a rate drawn per image from a range), drawn independently of any hider,
                so it cannot have learned a code; a run's masks are scored by its accuracy
                on the masked test images and F, I, FII with it (F against its accuracy on
                whole images). The evaluator also scores the code-free control masks: EVAL-X
                loses accuracy on sparse masks that carry no code too, so a run's EVAL-X F is
                read against the control's F at its own sparsity (`evalx_control_*`)

`diagnostics` runs them all on a trained joint model's test split.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from src.fit import Evaluator, batched
from src.hns.masks import thresholded
from src.hns.scores import figures_of_merit
from src.losses import accuracy, cross_entropy

KEEP = (0.5, 0.5)  # EVAL-X's default keep rate (low, high): each pixel kept with probability 1/2


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
    """Code-free masks [N, H, W, 1]: the kept-pixel counts of `masks`, shuffled across the
    images, each drawn at random among the pixels where x is nonzero in some channel (all of
    them, when the count is more than the image has). An image's count comes from another
    image's mask, so neither where nor how many pixels are kept depends on its own mask:
    the masks carry no code, and keep the run's distribution of sparsity."""
    rng = np.random.default_rng([seed, 11])
    support = np.any(x != 0, axis=-1).reshape(len(x), -1)
    kept = rng.permutation(np.rint(np.mean(masks, axis=-1).reshape(len(x), -1).sum(axis=1)).astype(np.int64))
    draw = rng.random(support.shape) + np.where(support, 0.0, 2.0)
    rank = np.argsort(np.argsort(draw, axis=1), axis=1)  # support pixels rank first, in random order
    out = (rank < kept[:, None]) & support
    return out.reshape(x.shape[:3] + (1,)).astype(np.float32)


def random_keep(x: tf.Tensor, u: tf.Tensor, rate: tf.Tensor | float = KEEP[0]) -> tf.Tensor:
    """x with each pixel kept where the uniform u [batch, H, W, 1] is below `rate` (a number,
    or one per image, [batch, 1, 1, 1]), 0 elsewhere (one draw per pixel, shared by its
    channels)."""
    return x * tf.cast(u < rate, x.dtype)


def keep_rates(keep: tuple[float, float], v: tf.Tensor) -> tf.Tensor:
    """One keep rate per image [batch, 1, 1, 1], uniform in keep = (low, high) from the
    uniform v [batch, 1, 1, 1]: an evaluator trained on a range of sparsities."""
    low, high = keep
    return low + (high - low) * v


def evaluator_loss(model: keras.Model, seed: int, keep: tuple[float, float] = KEEP):
    """loss_fn for src.fit: cross-entropy of the evaluator on randomly masked inputs, each
    image's keep rate drawn from `keep` (low, high). The masks come from the batch's images
    alone: training draws them from the evaluator's own generator, evaluation from fixed
    stateless noise (a reproducible figure)."""
    noise = tf.random.Generator.from_seed(seed)
    low, high = (float(k) for k in keep)

    def loss_fn(batch: dict, training: bool) -> dict:
        x = batch["x"]
        shape = tf.concat([tf.shape(x)[:3], [1]], 0)
        rates = tf.concat([tf.shape(x)[:1], [1, 1, 1]], 0)
        if training:
            u, v = noise.uniform(shape), noise.uniform(rates)
        else:
            u, v = tf.random.stateless_uniform(shape, seed=[seed, 3]), tf.random.stateless_uniform(rates, seed=[seed, 4])
        rate = keep_rates((low, high), v)
        logits = tf.cast(model(random_keep(x, u, rate), training=training), tf.float32)
        return {"loss": cross_entropy(batch["y"], logits), "accuracy": accuracy(batch["y"], logits)}
    return loss_fn


def evalx_scores(evaluator: keras.Model, x: np.ndarray, y: np.ndarray, masks: np.ndarray,
                 whole_accuracy: float, prefix: str = "evalx") -> dict:
    """The evaluator's accuracy on x * masks, and F, I, FII with it (F = that accuracy over
    its accuracy on whole images), named <prefix>_accuracy, _fidelity, _fii."""
    predicted = _predict(lambda rows: evaluator(x[rows] * masks[rows], training=False), len(x))
    merit = figures_of_merit(float(np.mean(predicted == y)), 1.0 - float(np.mean(masks)), whole_accuracy)
    return {f"{prefix}_accuracy": merit["accuracy"], f"{prefix}_fidelity": merit["fidelity"],
            f"{prefix}_fii": merit["fii"]}


def matched_evalx(evaluator: keras.Model, x: np.ndarray, y: np.ndarray, masks: np.ndarray, control: np.ndarray,
                  whole_accuracy: float) -> dict:
    """EVAL-X on the run's masks and on the code-free control masks of the same sparsity,
    and the difference of their F: what the run's masks lose (or gain) against masks as
    sparse that carry no code."""
    out = {**evalx_scores(evaluator, x, y, masks, whole_accuracy),
           **evalx_scores(evaluator, x, y, control, whole_accuracy, prefix="evalx_control")}
    out["evalx_fidelity_vs_control"] = out["evalx_fidelity"] - out["evalx_control_fidelity"]
    return out


def diagnostics(model, test: dict, num_classes: int, seed: int, evaluator: keras.Model | None = None,
                whole_accuracy: float | None = None) -> dict:
    """Every diagnostic of the module docstring for a trained HideAndSeek `model` on the
    split `test` ({"x", "y"}): its thresholded masks, then the code-free control masks;
    the EVAL-X scores when an `evaluator` (with its `whole_accuracy`) is given."""
    x, y = test["x"], test["y"]
    fill = float(np.mean(x))
    masks = thresholded(model.hider, x)
    control = support_masks(x, masks, seed)  # as sparse, on the object, no code

    def classify(images: np.ndarray, seen: np.ndarray) -> np.ndarray:
        return _predict(lambda rows: model.classify(images[rows], seen[rows], False), len(images))

    mask_only = Evaluator(lambda batch, training: model.mask_only_fn(batch, fill)).evaluate(test)["accuracy"]
    out = {"mask_only_accuracy": mask_only, "chance_accuracy": chance_level(num_classes),
           **mask_swap_shares(classify, x, y, masks, seed),
           "support_mask_only_accuracy": float(np.mean(classify(np.full_like(x, fill), control) == y)),
           **{f"support_{k}": v for k, v in mask_swap_shares(classify, x, y, control, seed).items()}}
    if evaluator is not None:
        out.update(matched_evalx(evaluator, x, y, masks, control, whole_accuracy), evalx_whole_accuracy=whole_accuracy)
    return out


def _predict(logits_of: Callable[[np.ndarray], tf.Tensor], n: int) -> np.ndarray:
    """The predicted classes of logits_of(rows) over rows 0..n-1, in batches (src.fit.batched)."""
    return batched(lambda rows: np.argmax(np.asarray(logits_of(rows)), -1), np.arange(n))
