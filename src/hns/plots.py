"""Hide-and-Seek figures: test images with their masks, and F, I and alpha over training.
`run_figures` draws every figure of a joint run."""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from src.hns.masks import thresholded
from src.plots import image_grid_png, plt, save_figure
from src.schema.hns import HNS_MODES

MAX_FIGURE_CLASSES = 20  # masks.png and modes.png show the first classes only: rows stay legible


def run_figures(model, history: list[dict], test: dict, class_names, folder: Path, title: str, per_class: int,
                mode: str = "joint", others: dict[str, keras.Model] | None = None) -> list[Path]:
    """A joint run's figures, into `folder`: curves.png; with per_class > 0, masks.png
    (per_class test images of each class through the thresholded masks of `model`, a
    HideAndSeek of hns.mode `mode`) and, when `others` gives the hiders of runs of the
    other modes (by mode), modes.png: the same images through every mode's masks."""
    written = [curves_png(history, folder / "curves.png", title)]
    chosen = figure_examples(test["y"], len(class_names), per_class)
    if not len(chosen):
        return written
    x, y = test["x"][chosen], test["y"][chosen]
    mask = thresholded(model.hider, x)
    predicted = np.argmax(np.asarray(model.classify(x, mask, training=False)), -1)
    written.append(masks_png(x, mask, y, predicted, class_names, folder / "masks.png",
                             f"{title}: test image | mask | what the seeker saw", per_class))
    if others:
        hiders = {mode: model.hider, **others}
        by_mode = {m: thresholded(hiders[m], x) for m in HNS_MODES if m in hiders}
        written.append(modes_png(x, by_mode, y, class_names, folder / "modes.png",
                                 f"{title}: image | " + " | ".join(f"{m} mask, seen" for m in by_mode)))
    return written


def figure_examples(y: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    """Indices of the first per_class examples of each of the first MAX_FIGURE_CLASSES classes."""
    if not per_class:
        return np.zeros(0, np.int64)
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(min(num_classes, MAX_FIGURE_CLASSES))])


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
