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
