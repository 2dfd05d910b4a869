"""Figures written into run folders (matplotlib, no display needed): the atomic saver
every figure goes through, and the generic ones."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from src.runstore import atomic_write  # noqa: E402


def save_figure(figure, path: Path, dpi: int | None = 110, tight: bool = True) -> Path:
    """Write a matplotlib figure atomically (format from the suffix) and close it.
    dpi=None keeps the figure's own; tight=False keeps its exact canvas (no cropping)."""
    options = {"dpi": dpi or figure.dpi, **({"bbox_inches": "tight"} if tight else {})}
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=Path(path).suffix[1:], **options))
    plt.close(figure)
    return path


def confusion_matrix_png(matrix: np.ndarray, class_names, path: Path, title: str) -> Path:
    size = max(5.0, 0.5 * len(class_names))
    figure, axis = plt.subplots(figsize=(size, size))
    labels = list(class_names) if len(class_names) <= 30 else None
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(
        ax=axis, colorbar=False, xticks_rotation="vertical", include_values=len(class_names) <= 20)
    axis.set_title(title)
    return save_figure(figure, path)


def image_grid_png(grid: list[list[np.ndarray | None]], path: Path, title: str, row_labels=None,
                   captions=None, cell_inches: float = 0.9) -> Path:
    """Images in rows and columns, drawn as one canvas with one imshow, so hundreds of
    cells take a fraction of a second (one axes per cell takes seconds).

    grid[r][c] is an (H, W, 1 or 3) image shown on [0, 1] (clipped for display), or None
    for an empty cell; row_labels[r] is written above the row's first cell, captions[r][c]
    above cell c."""
    first = next(image for row in grid for image in row if image is not None)
    h, w = first.shape[:2]
    rows, cols = len(grid), max(len(row) for row in grid)
    gap_y, gap_x = max(4, h // 3), max(2, w // 8)
    canvas = np.ones((rows * (h + gap_y) + 2, cols * (w + gap_x) + gap_x, 3))
    for r, row in enumerate(grid):
        for c, image in enumerate(row):
            if image is None:
                continue
            top, left = r * (h + gap_y) + gap_y, c * (w + gap_x) + gap_x
            canvas[top:top + h, left:left + w] = np.clip(np.broadcast_to(image, (h, w, 3)), 0, 1)
    figure = plt.figure(figsize=(cols * cell_inches, rows * cell_inches * 1.05 + 0.4))
    axis = figure.add_axes([0, 0, 1, rows * cell_inches * 1.05 / (rows * cell_inches * 1.05 + 0.4)])
    axis.imshow(canvas, interpolation="nearest", aspect="auto")
    axis.axis("off")
    for r in range(rows):
        top = r * (h + gap_y) + gap_y
        if row_labels is not None:
            axis.text(gap_x, top - 1, str(row_labels[r]), fontsize=7, ha="left", va="bottom")
        for c, caption in enumerate(captions[r] if captions is not None else ()):
            if caption:
                axis.text(c * (w + gap_x) + gap_x + w / 2, top - 1, caption, fontsize=6, ha="center", va="bottom")
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path)
