"""The one exception the models package raises, so callers can catch config mistakes."""
from __future__ import annotations

from src.errors import RunnerError


class ModelError(RunnerError, ValueError):
    """Bad model request (unknown name or init, unusable input shape).

    A ValueError subclass so generic config validation still catches it.
    """
