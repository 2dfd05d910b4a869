"""Typed `hns.*` settings of the hns_train procedure (Hide-and-Seek), and their range checks.

TensorFlow-free: imported by src/schema.py and src/validate.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HnsConfig:
    estimator: str = "st1"


def check(cfg) -> None:
    """Raise ConfigError naming the first hns.* setting that cannot work."""
