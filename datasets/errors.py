"""The single exception type of the package, so callers can catch data problems apart from bugs."""
from __future__ import annotations

from src.errors import RunnerError


class DatasetError(RunnerError):
    """A data set cannot be loaded; the message says what is wrong and how to fix it."""
