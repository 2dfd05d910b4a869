"""Data-free distillation figures: the teacher's mean activations per class, and a grid
of reconstructed inputs per class."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from src.plots import image_grid_png, plt, save_figure


def mean_activations_png(means: dict[str, np.ndarray], class_names, path: Path, title: str) -> Path:
    """One heat map per layer: classes (rows) x units (columns) of the mean activation."""
    figure, axes = plt.subplots(len(means), 1, figsize=(10, 1.2 + 1.1 * len(means)), squeeze=False)
    for axis, (name, mean) in zip(axes[:, 0], means.items()):
        image = axis.imshow(mean, aspect="auto", interpolation="nearest", cmap="magma")
        axis.set_title(f"{name} ({mean.shape[1]} units)", fontsize=9, loc="left")
        axis.set_yticks(range(len(class_names)), labels=class_names if len(class_names) <= 20 else None, fontsize=6)
        figure.colorbar(image, ax=axis, fraction=0.02)
    figure.suptitle(title)
    return save_figure(figure, path)


def sample_grid_png(x: np.ndarray, y: np.ndarray, class_names, path: Path, title: str, per_class: int = 8) -> Path:
    """Up to `per_class` inputs of every class, one row per class (values clipped to [0, 1]
    for display only)."""
    classes = sorted(set(int(c) for c in y))
    grid = [list(x[y == c][:per_class]) for c in classes]
    labels = [str(class_names[c]) if c < len(class_names) else str(c) for c in classes]
    return image_grid_png(grid, path, title, row_labels=labels)
