"""Data bigger than memory: streamed epochs against in-memory ones, the peak memory of a
streamed run on N and on 4N images, and the teacher's forward passes a 4-student sweep
makes with stored outputs.

    python bench/stream_throughput.py [--images 5000] [--size 64] [--repeats 5] [--epochs 5] [--budget 32MB]

The bench writes two folders of --size x --size JPEGs (smooth colour gradients with noise,
10 classes): N = --images and 4N; at the defaults every split of N already fills an
evaluation batch, so what grows from N to 4N is what grows with the data. Three
measurements, in one run:
  throughput  LeNet-5 (lenet), batch 64: --epochs epochs over the N folder's training split
              held in memory (dataset.stream=false) and streamed from the store (true), timed
              alternately, --repeats rounds after a warm-up each; streamed / in-memory
              examples per second per round, then the median. Both read the same examples
              in the same order (the runs are bit for bit equal: tests/engine/test_streamed.py).
  memory      `python main.py procedure=train model=lenet train.epochs=1` on N and on 4N with
              dataset.memory_budget=--budget (both stream), in fresh processes; the main
              process's resident memory sampled every 20 ms: its anonymous part (RssAnon:
              what the process itself holds) and the whole (VmHWM, which also counts the
              pages of the memory-mapped files it touched, page cache the kernel reclaims).
              The store is filled by an untimed first run, so both measure training.
  teacher     four students (distill.temperature 1, 2, 4, 8) on one teacher, in process:
              the teacher's forward passes counted (procedures._upstream.TEACHER_PASSES) and
              the seconds of computing the outputs (first student) against reading them
              (the other three).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import _timing as T  # noqa: E402
from bench.folder_load import make_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def peak_memory(args: list[str]) -> dict[str, float]:
    """Run `python main.py args` and sample its memory: peak RssAnon and VmHWM in MB."""
    process = subprocess.Popen([sys.executable, "main.py", *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    peak = {"anon": 0.0, "hwm": 0.0}

    def sample() -> None:
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                text = status.read_text()
            except OSError:
                break
            for key, name in (("RssAnon", "anon"), ("VmHWM", "hwm")):
                found = re.search(rf"{key}:\s+(\d+) kB", text)
                if found:
                    peak[name] = max(peak[name], int(found.group(1)) / 1024)
            time.sleep(0.02)

    watcher = threading.Thread(target=sample)
    watcher.start()
    output = process.communicate()[0]
    watcher.join()
    if process.returncode:
        raise SystemExit(f"main.py {' '.join(args)} failed:\n{output[-3000:]}")
    if "streamed" not in output:
        raise SystemExit(f"main.py {' '.join(args)} did not stream:\n{output[-3000:]}")
    return peak


def main() -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timing of the throughput part")
    parser.add_argument("--budget", default="32MB", help="dataset.memory_budget of the memory runs")
    args = parser.parse_args()

    import keras
    from hydra import compose, initialize_config_dir

    import models
    from datasets.stream import budget_bytes
    from procedures import _upstream, distill
    from procedures._inputs import load_data
    from src.fit import Fitter
    from src.losses import classifier_loss
    from src.optim import make_optimizer
    from src.schema import register, validate

    register()

    def compose_config(*overrides: str):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        validate(cfg)
        return cfg

    work = Path(tempfile.mkdtemp(prefix="stream_throughput-"))
    folders = {"N": work / "n", "4N": work / "4n"}
    for label, count in (("N", args.images), ("4N", 4 * args.images)):
        print(f"writing {count} {args.size}x{args.size} JPEGs into {folders[label]} ...", flush=True)
        make_folder(folders[label], count, args.size, 10)
    decoded = args.size * args.size * 3 * 4 / 1e6  # MB per image as float32
    T.header("stream_throughput: streamed data against data in memory",
             f"N={args.images}, 4N={4 * args.images} JPEGs of {args.size}x{args.size}x3 ({decoded * args.images:.0f} "
             f"and {4 * decoded * args.images:.0f} MB decoded); memory budget {args.budget} "
             f"({budget_bytes(args.budget) / 1e6:.0f} MB); repeats={args.repeats}")
    store = work / "runs"
    data_args = ["dataset=folder", f"dataset.image_size=[{args.size},{args.size}]", f"paths.runs={store}",
                 "logger=none"]

    # ---- throughput: one epoch in memory against one streamed ----------------------------
    def config(*extra: str):
        return compose_config(*data_args, f"dataset.path={folders['N']}", *extra)

    held, streamed = load_data(config("dataset.stream=false")), load_data(config("dataset.stream=true"))

    def fitter() -> Fitter:
        keras.utils.set_random_seed(0)
        model = models.build("lenet", held.input_shape, held.num_classes)
        return Fitter(model, classifier_loss(model), make_optimizer("adam", 1e-3))

    fitters = {"memory": fitter(), "streamed": fitter()}
    arrays = {"memory": held.train, "streamed": streamed.train}

    def epoch(name: str):
        return lambda: fitters[name].fit(arrays[name], epochs=args.epochs, batch_size=64, seed=0, verbose=0)

    print("\nwarm-up: one timing each (tracing) ...", flush=True)
    for name in fitters:
        T.time_once(epoch(name))
    times = T.alternate({name: epoch(name) for name in fitters}, args.repeats, log=lambda s: print(s, flush=True))
    ratio = T.median(T.pair_ratios(times["memory"], times["streamed"]))
    examples = (len(held.x_train) // 64) * 64 * args.epochs
    print(f"\n=== throughput: {args.epochs} epochs, {examples} examples, median of {args.repeats} ===")
    T.print_table(["contender", "seconds", "examples/s"],
                  [[name, f"{T.median(v):.2f}", f"{examples / T.median(v):,.0f}"] for name, v in times.items()])
    print("raw seconds per round: " + "; ".join(f"{k}={T.fmt_list(v, '.2f')}" for k, v in times.items()))

    # ---- memory: N and 4N streamed with one budget ------------------------------------
    peaks = {}
    for label, folder in folders.items():
        run = [*data_args, f"dataset.path={folder}", f"dataset.memory_budget={args.budget}", "procedure=train",
               "model=lenet", "train.epochs=1", f"hydra.run.dir={work / 'out' / label}"]
        print(f"\nmemory, {label}: filling the store (untimed) ...", flush=True)
        peak_memory([*run, "seed=1"])
        peaks[label] = peak_memory(run)
        print(f"  {label}: peak RssAnon {peaks[label]['anon']:.0f} MB, VmHWM {peaks[label]['hwm']:.0f} MB", flush=True)
    growth = peaks["4N"]["anon"] / peaks["N"]["anon"] - 1
    print("\n=== memory: a streamed train run of one epoch, main process ===")
    T.print_table(["images", "decoded MB", "peak RssAnon MB", "peak VmHWM MB"],
                  [[label, f"{decoded * args.images * (4 if label == '4N' else 1):.0f}", f"{p['anon']:.0f}",
                    f"{p['hwm']:.0f}"] for label, p in peaks.items()])

    # ---- teacher outputs: a 4-student sweep on one teacher ----------------------------
    sweep = [config("procedure=distill", "model=lenet", "student=lenet_half", f"distill.temperature={t}",
                    "train.epochs=1", "distill.baseline=false") for t in (1, 2, 4, 8)]
    cfg = sweep[0]
    data = load_data(cfg)
    teacher = _upstream.upstream_teacher(cfg, data)  # trained here, before the clock starts
    seconds = []
    before = sum(_upstream.TEACHER_PASSES.values())
    for student in sweep:
        started = time.perf_counter()
        _upstream.stored_teacher_outputs(student, teacher, data)
        seconds.append(time.perf_counter() - started)
        distill.run(student)
    passes = sum(_upstream.TEACHER_PASSES.values()) - before
    per_student = len(data.x_train) + len(data.x_val) + len(data.x_test)
    live = 4 * seconds[0]
    saved = live - sum(seconds)
    print("\n=== teacher outputs: 4 students on one teacher ===")
    T.print_table(["", "teacher forward passes (examples)", "seconds on teacher outputs"],
                  [["live (every student runs the teacher)", f"{4 * per_student}", f"{live:.2f} (4 x the first)"],
                   ["stored (this run)", f"{passes}", f"{sum(seconds):.2f} ({T.fmt_list(seconds, '.2f')})"]])
    print(f"\nRESULT stream_throughput images={args.images} size={args.size} streamed_over_memory={ratio:.2f} "
          f"peak_anon_N_mb={peaks['N']['anon']:.0f} peak_anon_4N_mb={peaks['4N']['anon']:.0f} "
          f"growth={100 * growth:+.1f}% teacher_passes={passes}/{4 * per_student} seconds_saved={saved:.2f} "
          f"(median of {args.repeats})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
