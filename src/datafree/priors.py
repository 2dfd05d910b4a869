"""DeepInversion's image priors (Yin et al. 2020) for optimize_dataset: a random view of
the inputs at every step, and penalties on the inputs themselves.

    view     the teacher sees the inputs rolled by up to `roll` pixels along each spatial
             axis (a circular shift) and, with `flip`, mirrored left-right, drawn anew at
             every step; the gradient flows back through the view to the inputs
    tv_l2    sum over 4 neighbour directions (right, down, and the two diagonals) of the
             Euclidean norm of the pixel differences (a norm, not a squared norm)
    tv_l1    sum over the same directions of the mean absolute difference
    l2       the Euclidean norm of the image

DeepInversion takes TV_L2 and L2 over a whole batch; here each is per input, so that, as
every objective here, an input's gradient does not depend on which inputs share its
chunk. The view is drawn from (seed, step) alone, the same for every input at a step, for
the same reason.
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf

DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (rows, columns) offsets of the neighbours


def _differences(x: tf.Tensor) -> list[tf.Tensor]:
    """x [N, H, W, C] minus its neighbour in each direction, on the overlapping window."""
    height, width = x.shape[1], x.shape[2]
    out = []
    for dy, dx in DIRECTIONS:
        here = x[:, :height - dy, max(-dx, 0):width - max(dx, 0)]
        there = x[:, dy:, max(dx, 0):width - max(-dx, 0)]
        out.append(here - there)
    return out


def total_variation_l2(x: tf.Tensor) -> tf.Tensor:
    """[N]: per input, the sum over the 4 directions of the norm of its differences."""
    return tf.add_n([tf.sqrt(tf.reduce_sum(tf.square(d), axis=[1, 2, 3])) for d in _differences(x)])


def total_variation_l1(x: tf.Tensor) -> tf.Tensor:
    """[N]: per input, the sum over the 4 directions of its mean absolute difference."""
    return tf.add_n([tf.reduce_mean(tf.abs(d), axis=[1, 2, 3]) for d in _differences(x)])


def image_norm(x: tf.Tensor) -> tf.Tensor:
    """[N]: the Euclidean norm of each input."""
    return tf.sqrt(tf.reduce_sum(tf.square(tf.reshape(x, [tf.shape(x)[0], -1])), axis=-1))


def make_prior(optimize) -> Callable[[tf.Tensor], tf.Tensor] | None:
    """x -> [N] weighted sum of the optimize.tv_l1 / tv_l2 / l2 penalties; None if all 0."""
    terms = [(w, f) for w, f in ((optimize.tv_l1, total_variation_l1), (optimize.tv_l2, total_variation_l2),
                                 (optimize.l2, image_norm)) if w]
    if not terms:
        return None
    return lambda x: tf.add_n([w * f(x) for w, f in terms])


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
