"""Training throughput of the project's fit loop (src.fit.Fitter) against plain Keras fit.

What it measures: samples/second of training, per model, for
  A  engine     Fitter(model, classifier_loss(model), Adam 1e-3).fit(...)
  B  keras_fit  model.compile(Adam 1e-3, sparse CE from logits, accuracy).fit(..., shuffle=True)
on the same random MNIST-shaped data, batch size and number of epochs, both without
XLA (Keras 3 would otherwise default to jit_compile="auto"). Samples counted are those
really processed: the engine drops the incomplete last batch, Keras does not.
It also times a float32 2048x2048 matmul reference as a third contender in every round
and reports which fraction of the same round's matmul GFLOP/s the dense hinton1200 MLP
reaches (forward + weight gradients + input gradients of the upper layers; the first
layer needs no input gradient); per-round, so a load change cannot skew it.

Why: src/fit.py claims its compiled multi-step loop beats Model.fit for small models on a
CPU. Why: throughput is proven by a bench that compares against something measured in
the same run; the two sides are timed alternately (A, B, A, B, ...) and medians of several
runs are reported, with all raw values, because machines are noisy.

Usage (from the repo root):
  python bench/train_throughput.py [--models hinton1200 lenet] [--batch-size 128]
                                   [--repeats 5] [--samples 12800] [--epochs 2]
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

import models  # noqa: E402
from bench import _timing as T  # noqa: E402
from src.fit import Fitter  # noqa: E402
from src.optim import make_optimizer  # noqa: E402
from src.losses import classifier_loss  # noqa: E402

SHAPE, CLASSES, LR, SEED = (28, 28, 1), 10, 1e-3, 0
# hinton1200 training FLOPs per example: every Dense layer costs 2*m*n forward and 2*m*n
# for its weight gradient; all but the first also 2*m*n for the gradient of its input.
_DENSE = [(784, 1200), (1200, 1200), (1200, 10)]
HINTON1200_TRAIN_FLOPS = sum(2 * m * n * (2 if i == 0 else 3) for i, (m, n) in enumerate(_DENSE))


def make_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = rng.random((n, *SHAPE), dtype=np.float32)
    y = rng.integers(0, CLASSES, size=n).astype(np.int32)
    return x, y


def build(name: str) -> keras.Model:
    keras.utils.set_random_seed(SEED)
    return models.build(name, SHAPE, CLASSES)


def bench_model(name: str, x, y, args, matmul) -> dict:
    """Warm both sides up, then time engine, keras_fit and the matmul reference
    alternately, round after round."""
    n, bs, epochs = len(x), args.batch_size, args.epochs
    train = {"x": x, "y": y}
    engine_model = build(name)
    fitter = Fitter(engine_model, classifier_loss(engine_model), make_optimizer("adam", LR))
    keras_model = build(name)
    keras_model.compile(optimizer=keras.optimizers.Adam(LR),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"], jit_compile=False)

    def engine(e):
        fitter.fit(train, epochs=e, batch_size=bs, seed=SEED, verbose=0)

    def keras_fit(e):
        keras_model.fit(x, y, batch_size=bs, epochs=e, verbose=0, shuffle=True)

    print(f"\n[{name}] warm-up (tracing) ...", flush=True)
    warm = {"engine": T.time_once(lambda: engine(1)), "keras_fit": T.time_once(lambda: keras_fit(1))}
    print("  warm-up seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in warm.items()), flush=True)
    times = T.alternate({"engine": lambda: engine(epochs), "keras_fit": lambda: keras_fit(epochs),
                         "matmul": matmul[0]}, args.repeats, log=lambda s: print(s, flush=True))
    processed = {"engine": (n // min(bs, n)) * min(bs, n) * epochs, "keras_fit": n * epochs}
    sps = {side: [processed[side] / t for t in times[side]] for side in processed}
    return {"name": name, "times": times, "sps": sps, "processed": processed,
            "gflops": [matmul[1] / t / 1e9 for t in times["matmul"]],
            "pair_ratios": T.pair_ratios(sps["engine"], sps["keras_fit"])}


def main(argv=None) -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["hinton1200", "lenet"], choices=models.NAMES)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    T.header("train_throughput: src.fit.Fitter (engine) vs keras Model.fit (keras_fit)",
             f"models={args.models} samples={args.samples} batch={args.batch_size} "
             f"epochs={args.epochs} repeats={args.repeats}; Adam({LR}), sparse CE from logits; "
             f"no XLA on either side (keras compile jit_compile=False, Fitter jit_compile=False)")

    matmul = T.matmul_runner(2048, inner=3)  # timed inside every round, after A and B
    x, y = make_data(args.samples)
    results = [bench_model(name, x, y, args, matmul) for name in args.models]
    all_gflops = [g for r in results for g in r["gflops"]]
    peak = T.median(all_gflops)

    print(f"\n=== train_throughput: samples/s, median of {args.repeats} "
          f"(batch {args.batch_size}, {args.epochs} epochs of {args.samples}) ===")
    rows = []
    for r in results:
        a, b = T.median(r["sps"]["engine"]), T.median(r["sps"]["keras_fit"])
        r.update(ratio_pairs=T.median(r["pair_ratios"]), ratio_medians=a / b)
        rows.append([r["name"], f"{a:,.0f}", f"{b:,.0f}", f"{r['ratio_pairs']:.2f}", f"{a / b:.2f}",
                     f"{T.median(r['gflops']):.1f}"])
    T.print_table(["model", "engine", "keras_fit", "A/B median of pairs", "A/B of medians",
                   "matmul GFLOP/s"], rows)

    print("\nraw values (one entry per round; the matmul reference runs after A and B in each round)")
    for r in results:
        print(f"  {r['name']}: samples per timed fit engine={r['processed']['engine']} "
              f"keras_fit={r['processed']['keras_fit']}")
        for side in ("engine", "keras_fit"):
            print(f"    {side:<9} s={T.fmt_list(r['times'][side], '.3f')}  samples/s={T.fmt_list(r['sps'][side])}")
        print(f"    A/B per pair={T.fmt_list(r['pair_ratios'], '.2f')}  matmul GFLOP/s={T.fmt_list(r['gflops'], '.1f')}")
    if max(all_gflops) > 1.3 * min(all_gflops):
        print(f"  WARNING: the matmul reference ranged {min(all_gflops):.1f}..{max(all_gflops):.1f} GFLOP/s: "
              "the machine's load changed during the run; trust per-round ratios over absolute rates.")

    hinton = next((r for r in results if r["name"] == "hinton1200"), None)
    if hinton:  # per round: achieved GFLOP/s over the matmul GFLOP/s of the same round
        flops = HINTON1200_TRAIN_FLOPS
        frac = {side: T.median([sps * flops / 1e9 / g for sps, g in zip(hinton["sps"][side], hinton["gflops"])])
                for side in ("engine", "keras_fit")}
        print(f"\nhinton1200 compute: {flops / 1e6:.2f} MFLOP per training example (forward + gradients); "
              f"median over rounds of (achieved / same-round matmul GFLOP/s): "
              f"engine {frac['engine']:.1%}, keras_fit {frac['keras_fit']:.1%}")

    print()
    for r in results:
        print(f"RESULT train_throughput model={r['name']} batch={args.batch_size} "
              f"engine_over_keras_fit={r['ratio_pairs']:.2f} (median of {args.repeats})")
    print(f"RESULT matmul_peak_gflops={peak:.1f} (median of {len(all_gflops)})")
    if hinton:
        print(f"RESULT hinton1200_peak_fraction engine={frac['engine']:.3f} keras_fit={frac['keras_fit']:.3f}")


if __name__ == "__main__":
    main()
