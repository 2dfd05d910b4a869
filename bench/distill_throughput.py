"""Distillation throughput: the runner's `procedure=distill` engine against Keras 3's own
`keras.distillation.Distiller`, same teacher, student, data, batch size, optimizer and
loss (KL at T with T^2 scaling plus hard-label cross-entropy), and each distill.method
against hinton in the same run; with --quality-epochs, the test accuracy each reaches.

    python bench/distill_throughput.py [--pairs lenet:lenet_half hinton1200:hinton800]
                                       [--batch-size 128] [--repeats 5] [--samples 12800] [--epochs 2]
                                       [--methods dkd dist hinton+std] [--quality-epochs 10]

Three contenders, timed alternately in one process (median of --repeats rounds):
  cached  the engine with the teacher's logits computed once before training (the
          default). Its per-epoch rate excludes that one teacher pass, which is timed on
          its own ("cache s") and folded back in for the amortised ratio over a default
          20-epoch distillation;
  live    the engine with distill.cache_teacher=false: the teacher runs at every step,
          exactly the work the Distiller does;
  keras   keras.distillation.Distiller(teacher, student, LogitsDistillation(T,
          loss=keras.losses.KLDivergence())).fit: with a KLDivergence instance Keras takes
          the softmax path with T^2 (its default loss string does not; docs/distill.md);
and each of --methods (dkd, dist, hinton+std = hinton on standardised logits) on cached
logits, whose rate is divided by hinton's ("÷hinton").
Samples/s counts the training examples each contender really processed (the engine
drops the incomplete last batch; Keras does not).

--quality-epochs E trains a lenet teacher on mnist_sample (E epochs), then the student of
each pair with the engine (hinton, cached) and with the Distiller for E epochs each, and
prints their test accuracy: the same recipe should reach the same accuracy.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench._timing import alternate, machine_header, median, pair_ratios, print_table  # noqa: E402


def main() -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=["lenet:lenet_half", "hinton1200:hinton800"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=12800)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--methods", nargs="*", default=["dkd", "dist", "hinton+std"])
    parser.add_argument("--quality-epochs", type=int, default=0)
    args = parser.parse_args()

    import keras
    import numpy as np
    from omegaconf import OmegaConf

    import models
    from src.kd.loss import make_loss
    from src.kd.scores import with_teacher_logits
    from src.fit import Fitter
    from src.optim import make_optimizer
    from src.schema.kd import DistillConfig

    print("\n".join(machine_header()))
    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.samples).astype("int64")
    alpha = 0.1  # weight of the hard-label term, the same on both sides
    def kd_for(method: str):
        name, _, std = method.partition("+")
        return OmegaConf.structured(DistillConfig(method=name, standardize=bool(std), temperature=args.temperature,
                                                  ce_weight=alpha, kd_weight=1 - alpha))
    kd = kd_for("hinton")
    engine_samples = (args.samples // args.batch_size) * args.batch_size * args.epochs
    keras_samples = args.samples * args.epochs
    rows, results, method_rows = [], [], []
    for pair in args.pairs:
        teacher_name, student_name = pair.split(":")
        keras.utils.set_random_seed(0)
        teacher = models.build(teacher_name, (28, 28, 1), 10)

        with_logits = with_teacher_logits(teacher, {"x": x, "y": y})

        def engine(cached: bool, method: str = "hinton"):
            student = models.build(student_name, (28, 28, 1), 10)
            fitter = Fitter(student, make_loss(student, teacher, kd_for(method), cached), make_optimizer("adam", 1e-3))
            arrays = with_logits if cached else {"x": x, "y": y}

            def go(epochs: int = args.epochs):
                fitter.fit(arrays, epochs=epochs, batch_size=args.batch_size, seed=0, verbose=0)
            return go

        def distiller():
            student = models.build(student_name, (28, 28, 1), 10)
            model = keras.distillation.Distiller(
                teacher=teacher, student=student,
                distillation_losses=keras.distillation.LogitsDistillation(temperature=args.temperature,
                                                                          loss=keras.losses.KLDivergence()),
                student_loss_weight=alpha)
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)

            def go(epochs: int = args.epochs):
                model.fit(x, y, batch_size=args.batch_size, epochs=epochs, verbose=0, shuffle=True)
            return go

        contenders = {"cached": engine(True), "live": engine(False), "keras": distiller(),
                      "cache": lambda epochs=1: with_teacher_logits(teacher, {"x": x, "y": y}),
                      **{m: engine(True, m) for m in args.methods}}
        for warm in contenders.values():
            warm(1)  # tracing and first-call costs are not throughput
        seconds = alternate(contenders, args.repeats)
        cache_seconds = seconds.pop("cache")
        rate = {k: [(keras_samples if k == "keras" else engine_samples) / s for s in v] for k, v in seconds.items()}
        cached_ratio = median(pair_ratios(rate["cached"], rate["keras"]))
        live_ratio = median(pair_ratios(rate["live"], rate["keras"]))
        # a 20-epoch distillation: 20 epochs at the cached rate plus one caching pass
        epoch_seconds = [s / args.epochs for s in seconds["cached"]]
        amortised = [20 * args.samples / (20 * e + c) for e, c in zip(epoch_seconds, cache_seconds)]
        amortised_ratio = median(pair_ratios(amortised, rate["keras"]))
        rows.append([pair, f"{median(rate['cached']):.0f}", f"{median(cache_seconds):.2f}",
                     f"{median(rate['live']):.0f}", f"{median(rate['keras']):.0f}", f"{cached_ratio:.2f}",
                     f"{amortised_ratio:.2f}", f"{live_ratio:.2f}"])
        results.append((pair, cached_ratio, amortised_ratio, live_ratio))
        method_rows += [[pair, m, f"{median(rate[m]):.0f}", f"{median(pair_ratios(rate[m], rate['cached'])):.2f}"]
                        for m in args.methods]

    print()
    print_table(["teacher:student", "cached/s", "cache s", "live/s", "Distiller/s", "cached÷keras",
                 "cached 20ep÷keras", "live÷keras"], rows)
    if method_rows:
        print()
        print_table(["teacher:student", "method (cached)", "samples/s", "÷hinton"], method_rows)
    for pair, cached_ratio, amortised_ratio, live_ratio in results:
        print(f"RESULT distill_throughput pair={pair} batch={args.batch_size} cached_over_distiller={cached_ratio:.2f} "
              f"cached_20_epochs_over_distiller={amortised_ratio:.2f} live_over_distiller={live_ratio:.2f} "
              f"(median of {args.repeats} paired rounds)")
    for pair, method, _, ratio in method_rows:
        print(f"RESULT distill_throughput pair={pair} method={method} over_hinton={ratio}")
    if args.quality_epochs:
        quality(args, alpha, kd)


def quality(args, alpha: float, kd) -> None:
    """Test accuracy on mnist_sample: the engine and the Distiller, same recipe and epochs."""
    import keras
    import numpy as np

    import datasets
    import models
    from src.fit import Fitter, predict_logits
    from src.optim import make_optimizer
    from src.kd.loss import make_loss
    from src.kd.scores import with_teacher_logits
    from src.losses import classifier_loss

    data = datasets.load({"name": "mnist_sample"}, val_split=0.1)
    train = {"x": data.x_train, "y": data.y_train}

    def test_accuracy(model) -> float:
        return float(np.mean(np.argmax(predict_logits(model, data.x_test), -1) == data.y_test))

    rows = []
    for pair in args.pairs:
        teacher_name, student_name = pair.split(":")
        keras.utils.set_random_seed(0)
        teacher = models.build(teacher_name, data.input_shape, data.num_classes)
        Fitter(teacher, classifier_loss(teacher), make_optimizer("adam", 1e-3)).fit(
            train, epochs=args.quality_epochs, batch_size=args.batch_size, seed=0, verbose=0)
        keras.utils.set_random_seed(1)
        ours = models.build(student_name, data.input_shape, data.num_classes)
        Fitter(ours, make_loss(ours, teacher, kd, True), make_optimizer("adam", 1e-3)).fit(
            with_teacher_logits(teacher, train), epochs=args.quality_epochs, batch_size=args.batch_size, seed=0,
            verbose=0)
        keras.utils.set_random_seed(1)
        theirs = models.build(student_name, data.input_shape, data.num_classes)
        distiller = keras.distillation.Distiller(
            teacher=teacher, student=theirs, student_loss_weight=alpha,
            distillation_losses=keras.distillation.LogitsDistillation(temperature=args.temperature,
                                                                      loss=keras.losses.KLDivergence()))
        distiller.compile(optimizer=keras.optimizers.Adam(1e-3),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
        distiller.fit(data.x_train, data.y_train, batch_size=args.batch_size, epochs=args.quality_epochs, verbose=0)
        rows.append([pair, f"{test_accuracy(teacher):.4f}", f"{test_accuracy(ours):.4f}",
                     f"{test_accuracy(theirs):.4f}"])
    print()
    print_table(["teacher:student", "teacher test acc", "engine test acc", "Distiller test acc"], rows)
    for pair, teacher_acc, ours_acc, theirs_acc in rows:
        print(f"RESULT distill_quality pair={pair} epochs={args.quality_epochs} teacher={teacher_acc} "
              f"engine={ours_acc} distiller={theirs_acc} (mnist_sample test split, one seed)")


if __name__ == "__main__":
    main()
