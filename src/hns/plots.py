"""Hide-and-Seek figures: test images with their masks, and F, I and alpha over training."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from src.plots import image_grid_png, plt, save_figure


def masks_png(x: np.ndarray, mask: np.ndarray, y: np.ndarray, predicted: np.ndarray, class_names, path: Path,
              title: str, per_class: int = 4) -> Path:
    """One row per class; for each of `per_class` test images: the image, the mask alone
    (white = kept: is the class written in its shape?), then what the seeker saw (image *
    mask, hidden parts black), captioned with the share hidden and an x when the seeker
    got it wrong."""
    grid, captions, labels = [], [], []
    for c in sorted(set(int(c) for c in y)):
        members = np.flatnonzero(y == c)[:per_class]
        grid.append([picture for i in members for picture in (x[i], mask[i], x[i] * mask[i])])
        captions.append([text for i in members for text in
                         ("", "mask", f"{1.0 - float(np.mean(mask[i])):.0%} hid {'' if predicted[i] == c else 'x'}")])
        labels.append(str(class_names[c]) if c < len(class_names) else str(c))
    return image_grid_png(grid, path, title, row_labels=labels, captions=captions)


def modes_png(x: np.ndarray, masks: dict[str, np.ndarray], y: np.ndarray, class_names, path: Path, title: str,
              per_class: int = 2) -> Path:
    """The same test images through the masks of each mode (hns.mode=joint and realx):
    per image, the image, then for each mode its mask and what it shows."""
    grid, captions, labels = [], [], []
    for c in sorted(set(int(c) for c in y)):
        members = np.flatnonzero(y == c)[:per_class]
        grid.append([picture for i in members for picture in
                     [x[i], *[p for m in masks.values() for p in (m[i], x[i] * m[i])]]])
        captions.append([text for i in members for text in
                         ["", *[t for mode, m in masks.items() for t in
                                (f"{mode} mask", f"{1.0 - float(np.mean(m[i])):.0%} hid")]]])
        labels.append(str(class_names[c]) if c < len(class_names) else str(c))
    return image_grid_png(grid, path, title, row_labels=labels, captions=captions)


# history.csv column -> curve label, in drawing order
CURVES = {"test_fidelity": "F (fidelity)", "test_interpretability": "I (hidden, test)", "test_fii": "FII = F x I",
          "alpha_end": "alpha (end of epoch)", "hidden": "hidden (training batches)"}


def curve_series(history: list[dict]) -> dict[str, list[float]]:
    """label -> per-epoch values of every curve the history has values for."""
    series = {}
    for key, label in CURVES.items():
        values = [row.get(key) for row in history]
        if any(v is not None and v == v for v in values):
            series[label] = [np.nan if v is None else float(v) for v in values]
    return series


def curves_png(history: list[dict], path: Path, title: str) -> Path:
    """Fidelity, interpretability (test, thresholded mask), FII, alpha and the hidden
    fraction of training batches, per epoch (rows of history.csv)."""
    epochs = [row["epoch"] for row in history]
    figure, axis = plt.subplots(figsize=(6, 3.6))
    for label, values in curve_series(history).items():
        axis.plot(epochs, values, marker="o", markersize=3, label=label)
    axis.set_xlabel("epoch")
    axis.set_ylim(-0.02, max(1.05, max((row.get("test_fidelity") or 0) for row in history) + 0.05))
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower left")
    axis.set_title(title, fontsize=9)
    return save_figure(figure, path)
