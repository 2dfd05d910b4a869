"""Typed `tree.*` settings of the tree_distill procedure (soft decision tree), and their range checks.

TensorFlow-free: imported by src/schema.py and src/validate.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TreeConfig:
    depth: int = 4


def check(cfg) -> None:
    """Raise ConfigError naming the first tree.* setting that cannot work."""
