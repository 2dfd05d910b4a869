"""Batch-1 CPU latency of a teacher and its student as Keras, LiteRT float32 and LiteRT
int8, as ratios measured in one run: student/teacher per format, int8/float32 per model.

What it measures: per round, the median of `--calls` batch-1 calls (after `--warmup`)
of each of the six contenders, timed alternately (teacher Keras, teacher LiteRT, ...,
student LiteRT int8), `--repeats` rounds; the ratios are taken within each round and
their medians reported with every raw value. Keras is the model's call traced once by
tf.function; LiteRT runs through ai_edge_litert on one thread; TensorFlow is given one
thread too (before its first op). The models are the main job's pair with fresh weights
(latency does not depend on the weights' values; int8 calibration uses random inputs).

Why: docs/deploy.md reports latency per model; the ratios are what a reader can carry
to another machine, so they come from one process, alternated, as bench/_timing.py does.

Usage (from the repo root; pin it to an idle core):
  taskset -c 1 python bench/deploy_latency.py [--teacher convnet] [--student hinton800]
                                               [--repeats 7] [--calls 200] [--warmup 20]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)  # before TensorFlow's first op
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import models  # noqa: E402
from bench import _timing as T  # noqa: E402
from src.deploy import latency  # noqa: E402
from src.deploy.export import convert, staged_saved_model  # noqa: E402

SHAPE, CLASSES = (28, 28, 1), 10


def contenders(teacher: str, student: str, folder: Path, warmup: int) -> dict:
    """name -> a warmed-up batch-1 call, for each model in each format."""
    rng = np.random.default_rng(0)
    x = rng.random((64, *SHAPE), dtype=np.float32)
    calls = {}
    for role, name in (("teacher", teacher), ("student", student)):
        keras.utils.set_random_seed(0)
        model = models.build(name, SHAPE, CLASSES)
        with staged_saved_model(model, folder) as saved:
            for scheme, suffix in (("float32", "litert"), ("full", "int8")):
                path = folder / f"{role}_{suffix}.tflite"
                path.write_bytes(convert(saved, scheme, x))
                calls[f"{role} {suffix}"] = latency.litert_call(path, x)
        calls[f"{role} keras"] = latency.keras_call(model, x)
    ordered = {f"{role} {fmt}": calls[f"{role} {fmt}"] for role in ("teacher", "student")
               for fmt in ("keras", "litert", "int8")}
    for call in ordered.values():
        latency.measure(call, warmup, 1)
    return ordered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", default="convnet")
    parser.add_argument("--student", default="hinton800")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    T.header("deploy latency: batch 1, one thread, teacher and student as Keras, LiteRT float32, LiteRT int8",
             f"teacher {args.teacher}, student {args.student}, input {SHAPE}, {args.repeats} rounds x "
             f"{args.calls} calls (median per round), warm-up {args.warmup}")
    with tempfile.TemporaryDirectory() as tmp:
        calls = contenders(args.teacher, args.student, Path(tmp), args.warmup)
        rounds = {name: [] for name in calls}
        for round_ in range(args.repeats):
            for name, call in calls.items():
                rounds[name].append(latency.measure(call, 0, args.calls)["median_ms"])
    rows = [[name, f"{T.median(ms):.4f}", T.fmt_list(ms, ".4f")] for name, ms in rounds.items()]
    T.print_table(["contender", "median ms", "per round"], rows)
    ratios = {f"student/teacher {fmt}": T.pair_ratios(rounds[f"student {fmt}"], rounds[f"teacher {fmt}"])
              for fmt in ("keras", "litert", "int8")}
    ratios.update({f"int8/float32 LiteRT {role}": T.pair_ratios(rounds[f"{role} int8"], rounds[f"{role} litert"])
                   for role in ("teacher", "student")})
    ratios["LiteRT/Keras student"] = T.pair_ratios(rounds["student litert"], rounds["student keras"])
    print()
    T.print_table(["ratio (paired by round)", "median", "per round"],
                  [[name, f"{T.median(v):.3f}", T.fmt_list(v, ".3f")] for name, v in ratios.items()])


if __name__ == "__main__":
    main()
