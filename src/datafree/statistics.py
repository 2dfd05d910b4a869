"""Step 1 of data-free distillation: per-class statistics of a teacher's activations on
its training data (Lopes et al. 2017's "metadata"), and their graph-Fourier variant."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from src.datafree import spectral
from src.datafree.taps import ActivationTap
from src.errors import ConfigError


def check_class_counts(counts, classes=None, where: str = "the training split") -> None:
    """ConfigError naming every class (of `classes`, default all) that does not exist or has
    fewer than two examples: its mean and covariance are undefined, so no target can be
    sampled for it."""
    wanted = range(len(counts)) if classes is None else list(classes)
    missing = [c for c in wanted if not 0 <= c < len(counts)]
    if missing:
        raise ConfigError(f"optimize.classes={wanted}: classes {missing} do not exist (0..{len(counts) - 1})")
    few = [f"class {c} has {int(counts[c])}" for c in wanted if counts[c] < 2]
    if few:
        raise ConfigError(f"{'; '.join(few)} example(s) in {where}: per-class statistics need at least 2; fix: more "
                          f"training data (dataset.train_limit, a smaller train.val_split), or leave the class out "
                          f"with optimize.classes=[...]")


def layer_statistics(tap: ActivationTap, x: np.ndarray, y: np.ndarray, num_classes: int, stats) -> dict:
    """Per class and layer: count, mean, std and (where small enough) full covariance.

    Examples are grouped by class, so every batch belongs to one class and a single
    a^T a per batch gives that class's second moments: no per-example work in Python and
    no wasted work on other classes' zeros. Sums are float64.
    """
    full = [d <= stats.max_cov_dim for d in tap.dims]

    @tf.function(reduce_retracing=True)
    def moments(batch):
        out = []
        for a, is_full in zip(tap(batch), full):
            a = tf.cast(a, tf.float64)
            second = tf.matmul(a, a, transpose_a=True) if is_full else tf.reduce_sum(a * a, axis=0)
            out.append((tf.reduce_sum(a, axis=0), second))
        return out

    count = np.zeros(num_classes, np.int64)
    first = [np.zeros((num_classes, d)) for d in tap.dims]
    second = [np.zeros((num_classes, d, d) if f else (num_classes, d)) for d, f in zip(tap.dims, full)]
    for c in range(num_classes):
        members = x[y == c]
        count[c] = len(members)
        for start in range(0, len(members), stats.batch_size):
            for i, (s1, s2) in enumerate(moments(tf.constant(members[start:start + stats.batch_size]))):
                first[i][c] += s1.numpy()
                second[i][c] += s2.numpy()

    arrays = {"layers": np.array(tap.layers), "output_layer": np.array(tap.output),
              "temperature": np.float64(tap.temperature), "count": count}
    n = np.where(count >= 2, count, np.nan)  # a class with fewer than 2 examples has no statistics: NaN
    for name, d, f, s1, s2, shape in zip(tap.layers, tap.dims, full, first, second, tap.shapes):
        mean = s1 / n[:, None]
        if f:  # unbiased covariance from float64 sums: (S2 - n mu mu^T) / (n - 1)
            cov = (s2 - n[:, None, None] * mean[:, :, None] * mean[:, None, :]) / (n - 1)[:, None, None]
            cov = (cov + np.transpose(cov, (0, 2, 1))) / 2
            var = np.einsum("cii->ci", cov)
            arrays[f"cov/{name}"] = cov.astype(np.float32)
        else:
            var = (s2 - n[:, None] * mean ** 2) / (n - 1)[:, None]
        arrays[f"mean/{name}"] = mean.astype(np.float32)
        arrays[f"std/{name}"] = np.sqrt(np.maximum(var, 0)).astype(np.float32)
        arrays[f"shape/{name}"] = np.array(shape, np.int64)
    return arrays


def spectral_statistics(teacher, tap: ActivationTap, x: np.ndarray, y: np.ndarray, num_classes: int,
                        stats) -> dict:
    """Graph-Fourier statistics for the graph layout stats.spectral (docs/spectral.md)."""
    blocks = spectral.connectivity_blocks(teacher, tap.layers)
    bases = spectral.graph_bases(blocks, tap.dims, stats.spectral, tap.layers)

    def batches():  # the tap's output is what spectral_stats expects (it applies the ReLU)
        for start in range(0, len(x), stats.batch_size):
            acts = tap(tf.constant(x[start:start + stats.batch_size]))
            yield [a.numpy() for a in acts], y[start:start + stats.batch_size]

    return spectral.spectral_stats(batches, bases, stats.spectral_keep, num_classes)


def stats_output_layer(stats) -> str:
    """The name of the teacher's output layer in a stats file (its logits, divided by the
    stats' temperature); a file that does not record it has this project's name, logits."""
    return str(stats["output_layer"]) if "output_layer" in stats else "logits"
