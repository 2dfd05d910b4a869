"""Training throughput of the soft decision tree against the reference code's recipe rebuilt faithfully.

Contenders, timed alternately (one epoch each per round) on the same real data
(mnist_sample's training split, 3,600 images) and machine:
  reference  lmartak/distill-nn-tree's recipe in Keras 3: one Dense(1) layer per inner node
             (RandomNormal kernel, TruncatedNormal bias), inverse temperature 0.01, path
             probabilities multiplied node by node, one weight per leaf, the leaf loss
             broadcast to batch x batch, log(eps + leaf loss), the EMA balancing penalty
             (decay fixed by num_updates, per batch position, no gradient), max-path output
             through a per-example map_fn, Adam 5e-3, Keras Model.fit, batch 4, depth 4.
  ours_d4_b4 the project's tree (models/soft_tree.py + src/tree/loss.py through src.fit.Fitter)
             at the reference code's depth and batch: isolates vectorisation from batch size.
  ours_d4    the project's tree at depth 4, default batch (train.batch_size = 64).
  ours_d8    the project's tree at depth 8 (the paper's), default batch.
Each figure is seconds per epoch (median of the rounds); the ratio reference / ours is taken per
round, then the median. After the timing, the test accuracy of every contender (each trained
for the same number of epochs: warm-up + rounds, hard labels) is printed next to it: speed
must not come from a model that learns less.

Usage (from the repo root):
  python bench/tree_throughput.py [--repeats 3] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import datasets  # noqa: E402
from bench import _timing as T  # noqa: E402
from models.soft_tree import build_tree  # noqa: E402
from src.fit import Fitter  # noqa: E402
from src.optim import make_optimizer  # noqa: E402
from src.tree.loss import tree_loss  # noqa: E402

SEED = 0
SEED_RECIPE = dict(depth=4, batch=4, inv_temp=0.01, lr=5e-3, penalty_strength=10.0, penalty_decay=0.25,
                   ema_win_size=1000)


class ReferenceTree(keras.Model):
    """The reference code's tree, node by node (see the module doc)."""

    def __init__(self, depth: int, classes: int, batch: int, inv_temp: float, penalty_strength: float,
                 penalty_decay: float, ema_win_size: int):
        super().__init__()
        self.depth, self.classes, self.batch, self.inv_temp = depth, classes, batch, inv_temp
        self.inner = [keras.layers.Dense(1, kernel_initializer=keras.initializers.RandomNormal(),
                                         bias_initializer=keras.initializers.TruncatedNormal()) for _ in
                      range(2 ** depth - 1)]
        self.leaf_phi = [self.add_weight(shape=(1, classes), initializer=keras.initializers.TruncatedNormal(),
                                         name=f"leaf_{i}") for i in range(2 ** depth)]
        # EMA shadow variables of P and p per inner node, shaped like the batch tensors (batch, 1)
        self.ema_P = [tf.Variable(tf.zeros((batch, 1)), trainable=False) for _ in self.inner]
        self.ema_p = [tf.Variable(tf.zeros((batch, 1)), trainable=False) for _ in self.inner]
        node_depth = [int(np.floor(np.log2(i + 1))) for i in range(2 ** depth - 1)]
        # tf.train.ExponentialMovingAverage(0.9999, num_updates=win*2^d): decay = min(0.9999, (1+n)/(10+n))
        self.decay = [min(0.9999, (1 + ema_win_size * 2 ** d) / (10 + ema_win_size * 2 ** d)) for d in node_depth]
        self.weight = [penalty_strength * penalty_decay ** d for d in node_depth]

    def route(self, x):
        """Per-node layers, recursively from the root: path probability and p of every node."""
        path, right = [None] * len(self.inner), [None] * len(self.inner)
        leaves = []
        stack = [(0, tf.ones_like(x[:, :1]))]
        while stack:
            node, prob = stack.pop()
            if node >= len(self.inner):
                leaves.append((node - len(self.inner), prob))
                continue
            p = tf.sigmoid(self.inv_temp * self.inner[node](x))
            path[node], right[node] = prob, p
            stack += [(2 * node + 2, prob * p), (2 * node + 1, prob * (1 - p))]
        leaves.sort(key=lambda item: item[0])
        return path, right, [prob for _, prob in leaves]

    def call(self, x):
        _, _, leaf_probs = self.route(x)
        dists = tf.concat([tf.nn.softmax(phi) for phi in self.leaf_phi], axis=0)  # (L, K)
        best = tf.argmax(tf.concat(leaf_probs, axis=1), axis=1)
        return tf.map_fn(lambda i: tf.gather(dists, i), best, fn_output_signature=tf.float32)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            path, right, leaf_probs = self.route(x)
            loss_leaves = 0.0
            for phi, prob in zip(self.leaf_phi, leaf_probs):
                ce = -tf.reduce_sum(y * tf.nn.log_softmax(phi), axis=1)  # (B,)
                loss_leaves += tf.reduce_mean(prob * ce)  # (B,1) * (B,) -> B x B: the reference code's bug
            penalty = 0.0
            for i in range(len(self.inner)):  # alpha from the EMA shadows only: no gradient
                self.ema_P[i].assign(self.decay[i] * self.ema_P[i] + (1 - self.decay[i]) * path[i])
                self.ema_p[i].assign(self.decay[i] * self.ema_p[i] + (1 - self.decay[i]) * right[i])
                alpha = tf.reduce_sum(self.ema_P[i] * self.ema_p[i]) / tf.reduce_sum(self.ema_P[i])
                alpha = tf.where(tf.math.is_nan(alpha), 0.0, alpha)
                penalty += self.weight[i] * -(0.5 * tf.math.log(alpha + 1e-8) + 0.5 * tf.math.log(1 - alpha + 1e-8))
            loss = tf.math.log(1e-8 + loss_leaves) + tf.stop_gradient(penalty)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def accuracy(predict, x, y) -> float:
    return float(np.mean(np.argmax(predict(x), axis=-1) == y))


def main(argv=None) -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64, help="our default batch (train.batch_size)")
    args = parser.parse_args(argv)

    data = datasets.load({"name": "mnist_sample"}, val_split=0.1)
    x, y = data.x_train.reshape(len(data.x_train), -1), data.y_train
    x_test = data.x_test.reshape(len(data.x_test), -1)
    onehot = np.eye(data.num_classes, dtype="float32")[y]
    n = len(x) - len(x) % SEED_RECIPE["batch"]  # the reference code needs n % batch == 0
    x, y, onehot = x[:n], y[:n], onehot[:n]

    T.header("tree_throughput: seconds per epoch, the reference code's recipe vs the project's soft decision tree",
             f"mnist_sample train split ({n} images, 784 features, {data.num_classes} classes); "
             f"reference: depth 4, batch 4, Keras fit, per-node layers; ours: src.fit.Fitter without XLA; "
             f"repeats={args.repeats}")

    keras.utils.set_random_seed(SEED)
    r = SEED_RECIPE
    reference_model = ReferenceTree(r["depth"], data.num_classes, r["batch"], r["inv_temp"], r["penalty_strength"],
                          r["penalty_decay"], r["ema_win_size"])
    reference_model.compile(optimizer=keras.optimizers.Adam(r["lr"]), jit_compile=False)

    def ours(depth: int, batch: int):
        keras.utils.set_random_seed(SEED)
        model = build_tree((784,), data.num_classes, depth)
        fitter = Fitter(model, tree_loss(model, penalty_strength=0.1, penalty_decay=0.5, penalty_window=1.0),
                        make_optimizer("adam", 1e-2 if batch > 8 else 1e-3))
        train = {"x": x, "y": y, "targets": onehot}
        return model, lambda: fitter.fit(train, epochs=1, batch_size=batch, seed=SEED, verbose=0)

    contenders = {"reference": (reference_model, lambda: reference_model.fit(x, onehot, batch_size=r["batch"], epochs=1,
                                                              shuffle=True, verbose=0))}
    contenders["ours_d4_b4"] = ours(4, 4)
    contenders["ours_d4"] = ours(4, args.batch_size)
    contenders["ours_d8"] = ours(8, args.batch_size)
    print("\nwarm-up epoch (tracing) ...", flush=True)
    warm = {name: T.time_once(step) for name, (_, step) in contenders.items()}
    print("  warm-up seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in warm.items()), flush=True)
    times = T.alternate({name: step for name, (_, step) in contenders.items()}, args.repeats,
                        log=lambda s: print(s, flush=True))

    epochs = args.repeats + 1
    acc = {"reference": accuracy(lambda v: reference_model.predict(v, batch_size=r["batch"], verbose=0), x_test, data.y_test)}
    for name in ("ours_d4_b4", "ours_d4", "ours_d8"):
        model = contenders[name][0]
        acc[name] = accuracy(lambda v, m=model: np.asarray(m(v)), x_test, data.y_test)

    print(f"\n=== tree_throughput: seconds per epoch of {n} images, median of {args.repeats}; "
          f"test accuracy after {epochs} epochs (hard labels) ===")
    rows = []
    for name, batch, depth in (("reference", 4, 4), ("ours_d4_b4", 4, 4), ("ours_d4", args.batch_size, 4),
                               ("ours_d8", args.batch_size, 8)):
        ratio = T.median(T.pair_ratios(times["reference"], times[name]))
        rows.append([name, depth, batch, f"{T.median(times[name]):.3f}", f"{ratio:.1f}", f"{acc[name]:.4f}"])
    T.print_table(["contender", "depth", "batch", "s/epoch", "reference / this (median of pairs)", "test acc"], rows)
    print("\nraw seconds per round: " + "; ".join(f"{k}={T.fmt_list(v, '.3f')}" for k, v in times.items()))
    print()
    for name in ("ours_d4_b4", "ours_d4", "ours_d8"):
        print(f"RESULT tree_throughput {name} reference_over_ours={T.median(T.pair_ratios(times['reference'], times[name])):.1f} "
              f"(median of {args.repeats}) test_acc seed={acc['seed']:.4f} ours={acc[name]:.4f}")


if __name__ == "__main__":
    main()
