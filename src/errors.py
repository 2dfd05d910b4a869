"""Errors a user can act on: each message names the problem and the fix.

main.py prints these as one line (no traceback); anything else is a bug and keeps its
traceback.
"""


class RunnerError(Exception):
    """Base of every user-facing error of the runner."""


class ConfigError(RunnerError):
    """A setting is out of range or settings contradict each other."""


class ArtifactError(RunnerError):
    """An upstream artifact is missing, corrupt, or does not fit this run."""


class TrainingDiverged(RunnerError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
