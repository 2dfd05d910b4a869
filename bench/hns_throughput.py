"""Joint Hide-and-Seek training throughput: the project's compiled step against the
reference code's training loop rebuilt faithfully.

What it measures: training steps/second of hider_small + seeker_small on MNIST-shaped
random data, same batch, same models, same machine, for
  A  engine  src.fit.Fitter on HideAndSeek.loss_fn (compiled multi-step chunks, data
             gathered by index in the graph, alpha/slope as variables)
  B  reference  the reference code's HNSTrainer loop:
             eager tf.data iterator (shuffle, repeat, batch, prefetch(1)), one eager
             GradientTape step at a time, cross-entropy on softmax probabilities, the L1
             norm of every gradient pulled to the host with .numpy(), 9 scalar summaries
             per step, and the per-step loss appended to the alpha monitor on the host.
  C  floor   the bare joint step (forward, backward, Adam) compiled once with tf.function
             and run on one batch that stays in memory: no data pipeline, no metrics,
             no host syncs. It is what the models' own arithmetic costs on this machine,
             so floor/reference is the most that any training loop could gain over the reference code's.
All three use the same binary layer (src.hns.masks; deterministic by default, --estimator for a
stochastic one) and Adam(1e-3) with constant alpha. No XLA on any side.
The three are timed in turn (A, B, C, A, B, C, ...), medians of --repeats rounds reported
with every raw value, because the machine is shared and noisy.

Usage (from the repo root):
  python bench/hns_throughput.py [--batch-size 256] [--steps 60] [--repeats 5] [--estimator st1]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench import _timing as T  # noqa: E402
from models.hns import build_hider, build_seeker  # noqa: E402
from src.fit import Fitter  # noqa: E402
from src.optim import make_optimizer  # noqa: E402
from src.hns.alpha import AlphaController  # noqa: E402
from src.hns.model import HideAndSeek  # noqa: E402

SHAPE, CLASSES, LR, SEED, ALPHA = (28, 28, 1), 10, 1e-3, 0, 0.7


def joint(estimator: str | None) -> HideAndSeek:
    keras.utils.set_random_seed(SEED)
    return HideAndSeek(build_hider("hider_small", SHAPE), build_seeker("seeker_small", SHAPE, CLASSES),
                       AlphaController(ALPHA), estimator=estimator, seed=SEED)


class ReferenceLoop:
    """The reference code's per-step eager loop (collaborative_training.py), on the same models."""

    def __init__(self, model: HideAndSeek, x, y, batch_size: int, logdir: str):
        self.model = model
        self.optimizer = keras.optimizers.Adam(LR)
        self.variables = model.hider.trainable_variables + model.seeker.trainable_variables
        data = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, CLASSES)))
        self.iterator = iter(data.shuffle(len(x)).repeat().batch(batch_size).prefetch(1))
        self.writer = tf.summary.create_file_writer(logdir)
        self.ce = keras.losses.CategoricalCrossentropy()
        self.monitor: list[float] = []
        self.step = 0

    def train_step(self) -> None:
        x, y = next(self.iterator)
        with tf.GradientTape() as tape:
            a = self.model.hider(x)
            mask = self.model.mask(a, training=True)
            probs = tf.nn.softmax(self.model.seeker(x * mask))
            classification = self.ce(y, probs)
            kept = tf.reduce_mean(mask)
            total = ALPHA * classification + (1 - ALPHA) * kept
        grads = tape.gradient(total, self.variables)
        self.optimizer.apply_gradients(zip(grads, self.variables))
        grad_l1 = float(np.sum(np.concatenate([np.abs(g.numpy()).ravel() for g in grads])))
        accuracy = float(np.mean(np.argmax(probs.numpy(), -1) == np.argmax(y.numpy(), -1)))
        self.monitor.append(float(classification.numpy()))
        self.step += 1
        with self.writer.as_default(step=self.step):
            for name, value in (("total", total), ("classification", classification), ("mask", kept),
                                ("accuracy", accuracy), ("alpha", ALPHA), ("gradient l1", grad_l1),
                                ("pixels hidden", 1 - kept), ("pixels kept", kept), ("loss monitor",
                                                                                        np.mean(self.monitor[-100:]))):
                tf.summary.scalar(name, value)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.train_step()
        self.writer.flush()


def floor_step(model: HideAndSeek, x, y, batch_size: int):
    """The bare compiled joint step on one resident batch (side C)."""
    optimizer = keras.optimizers.Adam(LR)
    variables = model.hider.trainable_variables + model.seeker.trainable_variables
    batch = {"x": tf.constant(x[:batch_size]), "y": tf.constant(y[:batch_size])}

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = model.loss_fn(batch, True)["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    def run(steps: int) -> None:
        for _ in range(steps):
            loss = step()
        loss.numpy()
    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=256, help="the reference code's MNIST batch")
    parser.add_argument("--steps", type=int, default=60, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--estimator", default=None, choices=[None, "st1", "st2", "sa", "reinforce"])
    args = parser.parse_args(argv)
    bs, steps = args.batch_size, args.steps
    layer = args.estimator or "deterministic"
    T.header("hns_throughput: src.fit.Fitter on HideAndSeek (engine) vs the reference code's eager loop (reference)",
             f"hider_small + seeker_small, input {SHAPE}, batch {bs}, {steps} steps per timed run, "
             f"{layer} mask, alpha {ALPHA}, Adam({LR}), repeats {args.repeats}; no XLA")

    rng = np.random.default_rng(SEED)
    n = bs * steps
    x = rng.random((n, *SHAPE), dtype=np.float32)
    y = rng.integers(0, CLASSES, n).astype(np.int32)
    engine_model = joint(args.estimator)
    fitter = Fitter(engine_model, engine_model.loss_fn, make_optimizer("adam", LR))
    train = {"x": x, "y": y}
    with tempfile.TemporaryDirectory() as logdir:
        reference = ReferenceLoop(joint(args.estimator), x, y, bs, logdir)
        floor = floor_step(joint(args.estimator), x, y, bs)
        print("\nwarm-up (tracing) ...", flush=True)
        warm = {"engine": T.time_once(lambda: fitter.fit(train, epochs=1, batch_size=bs, seed=SEED, verbose=0)),
                "reference": T.time_once(lambda: reference.run(5)), "floor": T.time_once(lambda: floor(2))}
        print("  warm-up seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in warm.items()), flush=True)
        times = T.alternate({"engine": lambda: fitter.fit(train, epochs=1, batch_size=bs, seed=SEED, verbose=0),
                             "reference": lambda: reference.run(steps), "floor": lambda: floor(steps)},
                            args.repeats, log=lambda s: print(s, flush=True))
    rates = {side: [steps / t for t in times[side]] for side in times}
    pairs = T.pair_ratios(rates["engine"], rates["reference"])
    ceiling = T.pair_ratios(rates["floor"], rates["reference"])
    print(f"\n=== hns_throughput: joint training steps/s (batch {bs}, {layer} mask), median of {args.repeats} ===")
    T.print_table(["side", "steps/s", "ms/step", "samples/s"],
                  [[side, f"{T.median(r):.1f}", f"{1000 / T.median(r):.1f}", f"{T.median(r) * bs:,.0f}"]
                   for side, r in rates.items()])
    print("\nraw values (one entry per round)")
    for side in rates:
        print(f"  {side:<7} s={T.fmt_list(times[side], '.3f')}  steps/s={T.fmt_list(rates[side], '.1f')}")
    print(f"  engine/reference per pair={T.fmt_list(pairs, '.2f')}")
    print(f"  floor/reference per pair={T.fmt_list(ceiling, '.2f')}  (the most any loop could gain over the reference code's)")
    print(f"\nRESULT hns_throughput batch={bs} mask={layer} engine_over_reference={T.median(pairs):.2f} "
          f"(median of {args.repeats} pairs); floor_over_reference={T.median(ceiling):.2f}; "
          f"engine_over_floor={T.median(T.pair_ratios(rates['engine'], rates['floor'])):.2f}")


if __name__ == "__main__":
    main()
