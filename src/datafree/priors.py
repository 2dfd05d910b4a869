"""DeepInversion's image priors (Yin et al. 2020) for optimize_dataset: a random view of
the inputs at every step, and penalties on the inputs themselves, taken over each batch
of optimize.batch_size as DeepInversion takes them.

    view     the teacher sees the inputs rolled by up to `roll` pixels along each spatial
             axis (a circular shift) and, with `flip`, mirrored left-right, drawn anew at
             every step; the gradient flows back through the view to the inputs
    tv_l2    sum over 4 neighbour directions (right, down, and the two diagonals) of the
             Euclidean norm of the pixel differences of the whole batch: one norm per
             direction over all the batch's images (a norm, not a squared norm)
    tv_l1    sum over the same directions of the mean absolute difference over the batch
    l2       the Euclidean norm of the whole batch

These are DeepInversion's `loss_var_l2`, `loss_var_l1` and `torch.norm(inputs_jit, 2)`, so
its published weights mean here what they mean there. The chunk passed to the prior is
whole consecutive batches of batch_size; each input carries its batch's term, so the
optimiser's sum over inputs / batch_size counts each batch's term once (as
src/datafree/batchnorm.py does for the BatchNorm statistics). The view is drawn from
(seed, step) alone, the same for every input at a step.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (rows, columns) offsets of the neighbours


def _differences(x: tf.Tensor) -> list[tf.Tensor]:
    """x [..., H, W, C] minus its neighbour in each direction, on the overlapping window."""
    height, width = x.shape[-3], x.shape[-2]
    out = []
    for dy, dx in DIRECTIONS:
        here = x[..., :height - dy, max(-dx, 0):width - max(dx, 0), :]
        there = x[..., dy:, max(dx, 0):width - max(-dx, 0), :]
        out.append(here - there)
    return out


def _batched(x: tf.Tensor, batch_size: int) -> tf.Tensor:
    """x [N, H, W, C] as [N / batch_size, batch_size, H, W, C]: consecutive batches."""
    return tf.reshape(x, [-1, batch_size, *x.shape[1:]])


def total_variation_l2(x: tf.Tensor, batch_size: int) -> tf.Tensor:
    """[batches]: per batch, the sum over the 4 directions of the norm of all its images'
    differences."""
    return tf.add_n([tf.sqrt(tf.reduce_sum(tf.square(d), axis=[1, 2, 3, 4]))
                     for d in _differences(_batched(x, batch_size))])


def total_variation_l1(x: tf.Tensor, batch_size: int) -> tf.Tensor:
    """[batches]: per batch, the sum over the 4 directions of the mean absolute difference
    over all its images."""
    return tf.add_n([tf.reduce_mean(tf.abs(d), axis=[1, 2, 3, 4]) for d in _differences(_batched(x, batch_size))])


def image_norm(x: tf.Tensor, batch_size: int) -> tf.Tensor:
    """[batches]: the Euclidean norm of each batch."""
    batches = _batched(x, batch_size)
    return tf.sqrt(tf.reduce_sum(tf.square(batches), axis=list(range(1, batches.shape.rank))))


def make_prior(optimize) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """x [N, ...] (whole batches of optimize.batch_size) -> [N]: each input's batch's
    weighted sum of the optimize.tv_l1 / tv_l2 / l2 penalties; None if all 0."""
    terms = [(w, f) for w, f in ((optimize.tv_l1, total_variation_l1), (optimize.tv_l2, total_variation_l2),
                                 (optimize.l2, image_norm)) if w]
    if not terms:
        return None
    size = int(optimize.batch_size)
    return lambda x: tf.repeat(tf.add_n([w * f(x, size) for w, f in terms]), size)


def make_view(optimize, seed: int) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None:
    """(x, step) -> x rolled by a random (dy, dx) in [-roll, roll] and, with optimize.flip,
    mirrored with probability 1/2: one draw per (seed, step). None without either."""
    roll, flip = int(optimize.roll), bool(optimize.flip)
    if not roll and not flip:
        return None

    def view(x: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
        if roll:
            shift = tf.random.stateless_uniform([2], key, -roll, roll + 1, dtype=tf.int32)
            x = tf.roll(x, shift, axis=[1, 2])
        if flip:
            mirrored = tf.random.stateless_uniform([], key + 1) < 0.5
            x = tf.cond(mirrored, lambda: tf.reverse(x, axis=[2]), lambda: x)
        return x
    return view
