"""The one exception the models package raises, so callers can catch config mistakes."""
from __future__ import annotations


class ModelError(ValueError):
    """Bad model request (unknown name or init, unusable input shape).

    A ValueError subclass so generic config validation still catches it.
    """
