"""optimize_dataset throughput: sample-steps per second of the runner's reconstruction
kernel against the reference code's recipe rebuilt in the same process, on the same teacher.

    python bench/optimize_throughput.py [--model lenet] [--objective all_layers] [--steps 100]
                                        [--batches 8] [--repeats 3]

reference  one batch of 64 at a time: a variable and Adam slots reset for each batch, then one
      compiled step per call, `steps` calls (the reference code made one TF1 run call per step).
      This is kinder to the reference code than its TF1 code, which also rebuilt ops in its loops.
ours  src.datafree.reconstruct.InputOptimizer on all `batches` x 64 inputs at once, 100 steps per
      compiled call.
Both use the same teacher (untrained weights: the cost does not depend on them), the same
objective (relu-MSE on every layer against fixed random targets) and the same Adam.
Then the cost of ours as per_class and steps grow, and the fraction of the machine's
float32 matmul peak that ours reaches (from the teacher's forward FLOPs x 3).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._timing import alternate, machine_header, matmul_peak_gflops, median, pair_ratios  # noqa: E402


def main() -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batches", type=int, default=8, help="batches of 64 optimised by ours at once")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    import models
    from src.datafree.taps import ActivationTap
    from src.datafree.reconstruct import BETA1, BETA2, EPSILON, InputOptimizer, relu_mse

    print("\n".join(machine_header()))
    keras.utils.set_random_seed(0)
    shape = (28, 28, 1)
    teacher = models.build(args.model, shape, 10)
    tap = ActivationTap(teacher, models.activation_layers(teacher), temperature=8.0)
    rng = np.random.default_rng(0)
    batch, lr = 64, 0.09

    def targets_for(n):
        return [tf.constant(rng.standard_normal((n, d)).astype("float32")) for d in tap.dims]

    def loss(x, targets):
        return relu_mse(tap(x), targets)

    # --- the reference code's recipe: one batch, one compiled step per call ---------------------
    reference_targets = targets_for(batch)
    x_var = tf.Variable(tf.zeros((batch, *shape)))
    m_var, v_var = tf.Variable(tf.zeros_like(x_var)), tf.Variable(tf.zeros_like(x_var))
    t_var = tf.Variable(0.0)

    @tf.function
    def reference_step():
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(x_var, reference_targets))
        g = tape.gradient(value, x_var)
        t_var.assign_add(1.0)
        m_var.assign(BETA1 * m_var + (1 - BETA1) * g)
        v_var.assign(BETA2 * v_var + (1 - BETA2) * g * g)
        step = lr * tf.sqrt(1 - BETA2 ** t_var) / (1 - BETA1 ** t_var)
        x_var.assign_sub(step * m_var / (tf.sqrt(v_var) + EPSILON))

    def reference(batches: int = 1):
        for _ in range(batches):
            x_var.assign(rng.normal(0.15, 0.1, (batch, *shape)).astype("float32"))
            for var in (m_var, v_var):
                var.assign(tf.zeros_like(var))
            t_var.assign(0.0)
            for _ in range(args.steps):
                reference_step()
        float(t_var.numpy())

    # --- ours ----------------------------------------------------------------------
    optimizer = InputOptimizer(loss, lr=lr, batch_size=batch, clip=False)

    def ours_for(n_batches: int, steps: int):
        n = n_batches * batch
        x0 = tf.constant(rng.normal(0.15, 0.1, (n, *shape)).astype("float32"))
        targets = targets_for(n)
        return lambda: optimizer.run(x0, targets, steps)[0].numpy()

    ours = ours_for(args.batches, args.steps)
    reference(1)
    ours()  # tracing
    seconds = alternate({"reference": reference, "ours": ours}, args.repeats)
    reference_rate = [batch * args.steps / s for s in seconds["reference"]]
    ours_rate = [args.batches * batch * args.steps / s for s in seconds["ours"]]
    ratio = median(pair_ratios(ours_rate, reference_rate))

    print("\ncost of ours as the work grows (seconds, one run each):")
    print("  inputs  steps  seconds  sample-steps/s")
    for n_batches, steps in [(1, args.steps), (args.batches, args.steps), (4 * args.batches, args.steps),
                             (args.batches, 2 * args.steps)]:
        run = ours_for(n_batches, steps)
        run() if (n_batches, steps) != (args.batches, args.steps) else None
        start = time.perf_counter()
        run()
        spent = time.perf_counter() - start
        print(f"  {n_batches * batch:6d}  {steps:5d}  {spent:7.2f}  {n_batches * batch * steps / spent:14.0f}")

    peak, _ = matmul_peak_gflops()
    forward = _forward_flops(teacher, shape)
    achieved = 3 * forward * median(ours_rate) / 1e9
    print(f"\nseed recipe  {median(reference_rate):10.0f} sample-steps/s  (all: {[round(r) for r in reference_rate]})")
    print(f"ours         {median(ours_rate):10.0f} sample-steps/s  (all: {[round(r) for r in ours_rate]})")
    print(f"matmul peak  {peak:.1f} GFLOP/s; ours reaches ~{achieved:.1f} GFLOP/s = {achieved / peak:.2f} of it "
          f"({forward / 1e6:.2f} MFLOP forward per input, x3 for the step)")
    print(f"RESULT optimize_throughput model={args.model} steps={args.steps} inputs={args.batches * batch} "
          f"ours_over_reference_recipe={ratio:.2f} (median of {args.repeats} paired rounds)")


def _forward_flops(model, shape) -> float:
    """Multiply-adds x 2 of the Dense and Conv2D layers for one input."""
    import keras
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2D):
            h, w, c_out = layer.output.shape[1:]
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2 * h * w * c_out * kh * kw * c_in
    return float(total)


if __name__ == "__main__":
    main()
