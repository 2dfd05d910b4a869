"""Small shared helpers for the benches in bench/.

Why: a throughput number means little on its own; it is evidence only next to a
reference measured in the same run, on the same machine. Machines (this one is shared)
are noisy, so contenders are timed alternately, several rounds each, and the medians
are reported together with every raw value.

Importing this module does not import TensorFlow; `machine_header` and
`matmul_runner` import it when called (after the caller has set its log level).
"""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import sys
import time
from typing import Callable


def header(title: str, setup: str) -> None:
    """Print what a bench compares, where and when it ran, and its setup."""
    print(title)
    for line in machine_header():
        print("  " + line)
    print(f"  setup     {setup}")


def machine_header() -> list[str]:
    """Lines describing where and when the bench ran."""
    import keras
    import tensorflow as tf

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return [
        f"date      {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine   {platform.platform()} ({platform.machine()})",
        f"cpus      {os.cpu_count()} (usable by this process: {usable}); load avg {load}",
        f"software  python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}",
        f"GPUs      {len(tf.config.list_physical_devices('GPU'))}",
    ]


def time_once(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call (fn must finish its work before returning)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(contenders: dict[str, Callable[[], object]], repeats: int,
              log: Callable[[str], None] | None = print) -> dict[str, list[float]]:
    """Time every contender once per round, in order (A, B, A, B, ...), `repeats` rounds,
    so slow phases of a noisy machine hit all of them alike. Returns seconds per name."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(1, repeats + 1):
        for name, fn in contenders.items():
            seconds = time_once(fn)
            times[name].append(seconds)
            if log:
                log(f"  round {round_}/{repeats}  {name:<10} {seconds:8.3f} s")
    return times


def median(values) -> float:
    return float(statistics.median(values))


def pair_ratios(a: list[float], b: list[float]) -> list[float]:
    """Element-wise a/b of two series measured in the same rounds."""
    return [x / y for x, y in zip(a, b)]


def matmul_runner(n: int = 2048, inner: int = 3) -> tuple[Callable[[], float], float]:
    """A warmed-up callable doing `inner` back-to-back float32 n x n TensorFlow matmuls,
    and the flops it does (2*n^3 each). It ends by pulling a reduction of the last
    product to the host, so the work is done when it returns."""
    import tensorflow as tf

    rng = tf.random.Generator.from_seed(0)
    a = rng.uniform((n, n), dtype=tf.float32)
    b = rng.uniform((n, n), dtype=tf.float32)

    def run() -> float:
        for _ in range(inner):
            c = tf.linalg.matmul(a, b)
        return float(tf.reduce_sum(c).numpy())

    run()  # warm-up: kernel selection, thread pool start-up
    return run, float(inner * 2 * n ** 3)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5, inner: int = 3) -> tuple[float, list[float]]:
    """Reference compute rate of this machine: (median GFLOP/s, every GFLOP/s) of
    `repeats` timings of `matmul_runner`. Benches that compare against it should rather
    time the runner inside their own alternation (see train_throughput.py)."""
    run, flops = matmul_runner(n, inner)
    rates = [flops / time_once(run) / 1e9 for _ in range(repeats)]
    return median(rates), rates


def fmt_list(values, spec: str = ".0f") -> str:
    return "[" + ", ".join(format(v, spec) for v in values) + "]"


def print_table(headers: list[str], rows: list[list], file=sys.stdout) -> None:
    """Plain fixed-width table; the first column is left-aligned, the others right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(cells[0]), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in cells[1:]:
        print(line(row), file=file)
