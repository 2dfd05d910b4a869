"""Training throughput of the project's fit loop (src.fit.Fitter) against plain Keras fit.

What it measures: samples/second of training, per model, for
  A  engine     Fitter(model, classifier_loss(model), Adam 1e-3).fit(...)
  B  keras_fit  model.compile(Adam 1e-3, sparse CE from logits, accuracy).fit(..., shuffle=True)
on the same random MNIST-shaped data, batch size and number of epochs, both without
XLA (Keras 3 would otherwise default to jit_compile="auto"). Samples counted are those
really processed: the engine drops the incomplete last batch, Keras does not.
It also measures a float32 2048x2048 matmul rate in the same run and reports which
fraction of it the dense hinton1200 MLP reaches (training ~ 3x forward FLOPs).

Why: src/fit.py claims its compiled multi-step loop beats Model.fit for small models on a
CPU. DESIGN: throughput is proven by a bench that compares against something measured in
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
from src.fit import Fitter, make_optimizer  # noqa: E402
from src.losses import classifier_loss  # noqa: E402

SHAPE, CLASSES, LR, SEED = (28, 28, 1), 10, 1e-3, 0
# hinton1200 forward FLOPs per example (multiply-adds x 2 of its three Dense layers).
HINTON1200_FORWARD_FLOPS = 2 * (784 * 1200 + 1200 * 1200 + 1200 * 10)


def make_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    x = rng.random((n, *SHAPE), dtype=np.float32)
    y = rng.integers(0, CLASSES, size=n).astype(np.int32)
    return x, y


def build(name: str) -> keras.Model:
    keras.utils.set_random_seed(SEED)
    return models.build(name, SHAPE, CLASSES)


def bench_model(name: str, x, y, args) -> dict:
    """Warm both sides up, then time them alternately; returns samples/s per side."""
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
    times = T.alternate({"engine": lambda: engine(epochs), "keras_fit": lambda: keras_fit(epochs)},
                        args.repeats, log=lambda s: print(s, flush=True))
    processed = {"engine": (n // min(bs, n)) * min(bs, n) * epochs, "keras_fit": n * epochs}
    sps = {side: [processed[side] / t for t in ts] for side, ts in times.items()}
    return {"name": name, "times": times, "sps": sps, "processed": processed,
            "pair_ratios": T.pair_ratios(sps["engine"], sps["keras_fit"])}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["hinton1200", "lenet"], choices=models.NAMES)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)

    print("train_throughput: src.fit.Fitter (engine) vs keras Model.fit (keras_fit)")
    for line in T.machine_header():
        print("  " + line)
    print(f"  setup     models={args.models} samples={args.samples} batch={args.batch_size} "
          f"epochs={args.epochs} repeats={args.repeats}; Adam({LR}), sparse CE from logits; "
          f"no XLA on either side (keras compile jit_compile=False, Fitter jit_compile=False)")

    # The peak is measured before AND after the models, so a change in machine load
    # during the run shows up (and the reference brackets the throughput timings).
    print("\nmatmul peak before (float32 2048x2048, median of 5) ...", flush=True)
    peak_before, before_all = T.matmul_peak_gflops(2048, repeats=5, inner=3)
    x, y = make_data(args.samples)
    results = [bench_model(name, x, y, args) for name in args.models]
    print("\nmatmul peak after ...", flush=True)
    peak_after, after_all = T.matmul_peak_gflops(2048, repeats=5, inner=3)
    peak = T.median(before_all + after_all)

    print("\n=== train_throughput: samples/s, median of "
          f"{args.repeats} (batch {args.batch_size}, {args.epochs} epochs of {args.samples}) ===")
    rows = []
    for r in results:
        a, b = T.median(r["sps"]["engine"]), T.median(r["sps"]["keras_fit"])
        r.update(a=a, b=b, ratio_pairs=T.median(r["pair_ratios"]), ratio_medians=a / b)
        rows.append([r["name"], f"{a:,.0f}", f"{b:,.0f}", f"{r['ratio_pairs']:.2f}", f"{r['ratio_medians']:.2f}"])
    T.print_table(["model", "engine", "keras_fit", "A/B median of pairs", "A/B of medians"], rows)

    print("\nraw values")
    for r in results:
        print(f"  {r['name']}: samples per timed fit engine={r['processed']['engine']} "
              f"keras_fit={r['processed']['keras_fit']}")
        for side in ("engine", "keras_fit"):
            print(f"    {side:<9} s={T.fmt_list(r['times'][side], '.3f')}  samples/s={T.fmt_list(r['sps'][side])}")
        print(f"    A/B per pair={T.fmt_list(r['pair_ratios'], '.2f')}")
    print(f"  matmul GFLOP/s before={T.fmt_list(before_all, '.1f')} after={T.fmt_list(after_all, '.1f')} "
          f"median of all 10={peak:.1f}")
    drift = peak_after / peak_before
    if not 0.85 < drift < 1.15:
        print(f"  WARNING: matmul peak changed {drift:.2f}x during the run (before {peak_before:.1f}, "
              f"after {peak_after:.1f} GFLOP/s): the machine's load changed; absolute rates and "
              "peak fractions are unreliable, the alternated A/B ratios less so.")

    hinton = next((r for r in results if r["name"] == "hinton1200"), None)
    if hinton:
        flops = 3 * HINTON1200_FORWARD_FLOPS
        ga, gb = hinton["a"] * flops / 1e9, hinton["b"] * flops / 1e9
        print(f"\nhinton1200 compute: {flops / 1e6:.2f} MFLOP per training example (3 x forward); "
              f"engine {ga:.1f} GFLOP/s = {ga / peak:.1%} of matmul peak, "
              f"keras_fit {gb:.1f} GFLOP/s = {gb / peak:.1%}")

    print()
    for r in results:
        print(f"RESULT train_throughput model={r['name']} batch={args.batch_size} "
              f"engine_over_keras_fit={r['ratio_pairs']:.2f} (median of {args.repeats})")
    print(f"RESULT matmul_peak_gflops={peak:.1f} (before {peak_before:.1f}, after {peak_after:.1f})")
    if hinton:
        print(f"RESULT hinton1200_peak_fraction engine={ga / peak:.3f} keras_fit={gb / peak:.3f}")


if __name__ == "__main__":
    main()
