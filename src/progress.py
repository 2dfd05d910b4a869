"""Progress on the console: a live bar on a terminal, plain lines in a file.

Keras' Progbar redraws itself with carriage returns and colour codes on every POSIX
system, terminal or not, so a run whose output goes to a file (a Slurm log, nohup, CI)
would fill it with escape codes. Off a terminal the epoch loop prints one plain line per
epoch instead, and other progress (a reconstruction's batches) prints one line when it ends.
"""
from __future__ import annotations

import sys
import time


def live() -> bool:
    """Whether standard output is a terminal (or a notebook) that redraws a bar in place."""
    stream = sys.stdout
    return bool(getattr(stream, "isatty", None) and stream.isatty()) or "ipykernel" in sys.modules


def bar(target: int, *, unit_name: str = "step", stateful_metrics=None, verbose: int = 1):
    """Keras' Progbar on a terminal; off one, a Lines that prints its final count once."""
    if live():
        import keras
        return keras.utils.Progbar(target, verbose=verbose, stateful_metrics=stateful_metrics, unit_name=unit_name)
    return Lines(target, unit_name=unit_name, verbose=verbose)


class Lines:
    """The Progbar calls a loop makes, written as one plain line when the target is reached."""

    def __init__(self, target: int, *, unit_name: str = "step", verbose: int = 1):
        self.target, self.unit_name, self.verbose = target, unit_name, verbose
        self.started = time.perf_counter()

    def update(self, current: int, values=None, finalize: bool | None = None) -> None:
        done = current >= self.target if finalize is None else finalize
        if done and self.verbose:
            print(f"{self.unit_name} {current}/{self.target} done ({seconds(time.perf_counter() - self.started)})",
                  flush=True)


def epoch_line(epoch: int, epochs: int, numbers: dict[str, float], elapsed: float) -> str:
    """'Epoch 3/20  loss=0.4120  val_accuracy=0.9010  (12s)': one epoch on one plain line."""
    values = "  ".join(f"{k}={v:.4f}" for k, v in numbers.items())
    return f"Epoch {epoch}/{epochs}  {values}  ({seconds(elapsed)})"


def seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 10 else f"{value:.0f}s"
