"""Throughput of datafree_distill's step (src.datafree.generator.GeneratorDistiller)
against its floor, the same compiled step on one batch of noise held in memory.

What it measures: generated samples/second of training, per method (dafl, adversarial),
lenet -> lenet_half on 28x28 inputs, for
  A  procedure  GeneratorDistiller.steps(K): K iterations in one compiled call, fresh
                noise drawn on the device at every iteration (what the procedure runs)
  B  floor      the same K iterations on one noise batch held in memory (no draw)
An adversarial iteration makes 5 student steps and one generator step: its samples are
the generator step's batch alone. The ratio A/B shows what drawing the noise and the
multi-step loop cost over the bare step; 1.0 is the floor.

Usage (from the repo root):
  python bench/datafree_generator_throughput.py [--width 32] [--batch-size 128] [--steps 10] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

import models  # noqa: E402
from bench import _timing as T  # noqa: E402
from src.datafree.generator import DAFL_BN_EPSILON, GeneratorDistiller, build_generator  # noqa: E402

SHAPE, CLASSES, LATENT, SEED = (28, 28, 1), 10, 100, 0


class HeldNoise(GeneratorDistiller):
    """The floor: every iteration reuses one noise batch made before the timing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.held = tf.random.normal([self.gen.batch_size, self.gen.latent_dim], seed=SEED)

    def _latent(self) -> tf.Tensor:
        return self.held


def make(kind, method: str, args) -> GeneratorDistiller:
    keras.utils.set_random_seed(SEED)
    published = OmegaConf.load(os.path.join(ROOT, "conf", "generator", f"{method}.yaml"))  # its published settings
    gen = OmegaConf.create({"method": method, "batch_size": args.batch_size, "latent_dim": LATENT, "oh": 1.0,
                            "a": 0.1, "ie": 5.0, "temperature": 1.0, "student_steps": published["student_steps"]})
    student_optimizer = (keras.optimizers.Adam(published["student_lr"]) if published["student_optimizer"] == "adam"
                         else keras.optimizers.SGD(published["student_lr"], momentum=0.9))
    return kind(build_generator(LATENT, SHAPE, args.width, DAFL_BN_EPSILON), models.build("lenet_half", SHAPE, CLASSES),
                models.build("lenet", SHAPE, CLASSES), gen, feature_layer=models.dafl_feature_layer("lenet"),
                generator_optimizer=keras.optimizers.Adam(published["lr"]), student_optimizer=student_optimizer,
                seed=SEED)


def main(argv=None) -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    T.header("datafree_generator_throughput: GeneratorDistiller.steps (procedure) vs the same step on held noise (floor)",
             f"lenet -> lenet_half, 28x28, generator width {args.width}, batch {args.batch_size}, "
             f"{args.steps} iterations per timed call, repeats={args.repeats}; no XLA")

    rows, raw = [], []
    for method in ("dafl", "adversarial"):
        sides = {"procedure": make(GeneratorDistiller, method, args), "floor": make(HeldNoise, method, args)}
        for trainer in sides.values():
            trainer.steps(2)  # tracing
        calls = {name: (lambda t=trainer: {k: float(v) for k, v in t.steps(args.steps).items()})
                 for name, trainer in sides.items()}
        print(f"\n[{method}]", flush=True)
        times = T.alternate(calls, args.repeats, log=lambda s: print(s, flush=True))
        sps = {name: [args.steps * args.batch_size / t for t in times[name]] for name in times}
        ratios = T.pair_ratios(sps["procedure"], sps["floor"])
        rows.append([method, f"{T.median(sps['procedure']):,.0f}", f"{T.median(sps['floor']):,.0f}",
                     f"{T.median(ratios):.2f}"])
        raw.append((method, sps, ratios))

    print(f"\n=== generated samples/s, median of {args.repeats} (width {args.width}, batch {args.batch_size}) ===")
    T.print_table(["method", "procedure", "floor", "A/B median of pairs"], rows)
    print("\nraw values (one entry per round)")
    for method, sps, ratios in raw:
        print(f"  {method}: procedure={T.fmt_list(sps['procedure'])} floor={T.fmt_list(sps['floor'])} "
              f"A/B={T.fmt_list(ratios, '.2f')}")


if __name__ == "__main__":
    main()
