"""What a tracker mirrors of a finished run folder, read the same way for every logger
(src/mlflow_mirror.py, src/wandb_mirror.py): its resolved config, its curves (history.csv,
one row per epoch), its final numbers (metrics.json) and the files worth keeping beside
them (figures, model.keras, config, metrics)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from omegaconf import OmegaConf

from src.history import read_rows

MAX_FILE_BYTES = 200 * 2**20  # larger files (a big reconstruction) stay in the store only
FILE_SUFFIXES = (".png", ".gif", ".keras", ".json", ".yaml", ".csv", ".txt", ".md")
FIGURE_SUFFIXES = (".png",)


def config(folder: Path) -> dict:
    """The run's resolved config.yaml as nested plain containers ({} without one)."""
    path = Path(folder) / "config.yaml"
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True) if path.is_file() else {}


def epochs(folder: Path) -> list[tuple[int, dict[str, float]]]:
    """history.csv as (epoch, {column: number}), the flags and empty cells left out."""
    return [(int(row.get("epoch") or 0), {k: float(v) for k, v in row.items() if k != "epoch" and is_number(v)})
            for row in read_rows(Path(folder) / "history.csv")]


def final(folder: Path) -> dict[str, int | float]:
    """metrics.json's numbers (flags, texts and missing values left out)."""
    path = Path(folder) / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    return {k: v for k, v in metrics.items() if is_number(v)}


def files(folder: Path) -> list[Path]:
    """The folder's top-level files a tracker keeps, by name."""
    return [f for f in sorted(Path(folder).iterdir())
            if f.is_file() and f.suffix in FILE_SUFFIXES and f.stat().st_size <= MAX_FILE_BYTES]


def figures(folder: Path) -> list[Path]:
    return [f for f in files(folder) if f.suffix in FIGURE_SUFFIXES]


def name(folder: Path) -> str:
    """<procedure>/<run folder>: how a run is named in a tracker."""
    return f"{Path(folder).parent.name}/{Path(folder).name}"


def slug(text: str) -> str:
    """text with every run of characters other than letters, digits, '.', '_', '-' as one '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
