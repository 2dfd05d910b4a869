"""The accuracy-cost frontier of a width sweep (conf/experiment/kd_frontier.yaml): for
each student width, test accuracy (mean and 95% interval over seeds) against batch-1
latency and against file size, as a scratch curve, a distilled curve, the distilled
students' int8 points, the quantisation-aware int8 points and the teacher; one PNG and
its numbers (frontier.csv) in a run folder of the store."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from src.plots import plt, save_figure
from src.stats import PROPORTION, seed_interval

# (curve, accuracy key, latency key, size key) of each point a deploy run gives
CURVES = (("scratch", "scratch_test_accuracy", "scratch_tflite_ms", "scratch_tflite_bytes"),
          ("distilled", "student_test_accuracy", "student_tflite_ms", "student_tflite_bytes"),
          ("distilled int8", "student_int8_test_accuracy", "student_int8_ms", "student_int8_bytes"))
QAT = ("quantisation-aware int8", "student_int8_test_accuracy", "student_int8_ms", "student_int8_bytes")
TEACHER = ("teacher", "teacher_test_accuracy", "teacher_tflite_ms", "teacher_tflite_bytes")
STYLE = {"scratch": dict(color="tab:gray", marker="o", linestyle="--"),
         "distilled": dict(color="tab:blue", marker="o", linestyle="-"),
         "distilled int8": dict(color="tab:orange", marker="s", linestyle=":"),
         "quantisation-aware int8": dict(color="tab:red", marker="D", linestyle="none"),
         "teacher": dict(color="black", marker="*", markersize=14, linestyle="none")}


def points(rows: list[tuple[str, list[dict]]]) -> list[dict]:
    """One point per curve and row (a row's deploy metrics, one dict per seed): the
    accuracy's mean and 95% interval over seeds, the mean latency (ms) and size (KB)."""
    out = []
    teacher_done = False
    for label, runs in rows:
        qat = any(m.get("quantize", "none") != "none" for m in runs)
        curves = [QAT] if qat else list(CURVES)
        if not teacher_done:
            curves.append(TEACHER)
            teacher_done = True
        for curve, accuracy, ms, size in curves:
            if not all(accuracy in m for m in runs):
                continue
            interval = seed_interval([m[accuracy] for m in runs], bounds=PROPORTION)
            out.append({"curve": curve, "row": label, "params": runs[0].get(accuracy.split("_")[0] + "_params"),
                        "accuracy": interval["mean"], "low": interval["low"], "high": interval["high"],
                        "latency_ms": float(np.mean([m[ms] for m in runs])),
                        "size_kb": float(np.mean([m[size] for m in runs])) / 1024, "seeds": len(runs)})
    return out


def table_csv(found: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(found[0]))
    writer.writeheader()
    writer.writerows(found)
    return buffer.getvalue()


def plot(found: list[dict], path: Path, title: str) -> Path:
    """Accuracy against latency (left) and against file size (right), both on log axes:
    up and to the left is better; the teacher's accuracy is the dotted line."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    teacher = next((p for p in found if p["curve"] == "teacher"), None)
    for axis, x, xlabel in ((axes[0], "latency_ms", "batch-1 latency on 1 CPU thread, LiteRT (ms, median)"),
                            (axes[1], "size_kb", "file size, LiteRT (KB)")):
        for curve, style in STYLE.items():
            chosen = [p for p in found if p["curve"] == curve]  # in the rows' order: growing width
            if not chosen:
                continue
            xs, ys = [p[x] for p in chosen], [p["accuracy"] for p in chosen]
            errors = np.array([[p["accuracy"] - p["low"], p["high"] - p["accuracy"]] if not np.isnan(p["low"])
                               else [0.0, 0.0] for p in chosen]).T
            axis.errorbar(xs, ys, yerr=errors, capsize=3, label=curve, **style)
            if curve == "distilled":
                for p in chosen:
                    axis.annotate(p["row"], (p[x], p["accuracy"]), textcoords="offset points", xytext=(4, -12),
                                  fontsize=8, color=style["color"])
        if teacher:
            axis.axhline(teacher["accuracy"], color="black", linestyle=":", linewidth=0.8)
        axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test accuracy (mean, 95% interval over seeds)")
    axes[0].legend(fontsize=8, loc="lower right")
    figure.suptitle(title + "\nship the leftmost point whose accuracy you can accept", fontsize=10)
    return save_figure(figure, path)
