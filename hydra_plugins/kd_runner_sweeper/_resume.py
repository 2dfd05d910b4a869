"""Resume an Optuna study: one study per command, stale trials run again, the rest counted.

Rerunning the command of a killed sweep finds its study by name (the preset's
`study_name` plus a hash of the search space, the direction and the command's overrides,
so another command starts another study). A trial the kill left RUNNING is run again with
its own parameters and told its result, so it counts once; then the sweep asks only for
the trials still missing to reach `n_trials`, and the sampler learns from every finished
one. Raising `hydra.sweeper.n_trials` on the same command extends the study.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SQLITE = "sqlite:///"


def study_name(base: str, params, direction, arguments: list[str]) -> str:
    """base-<hash of the search space, the direction(s) and the sorted command overrides>."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    space = OmegaConf.to_container(params, resolve=False) if isinstance(params, DictConfig) else dict(params or {})
    directions = OmegaConf.to_container(direction) if isinstance(direction, ListConfig) else direction
    if isinstance(directions, (list, tuple)) and len(directions) == 1:
        directions = directions[0]  # one objective names the same study however it is written
    text = json.dumps({"params": space, "direction": directions if isinstance(directions, list) else str(directions),
                       "overrides": sorted(arguments)}, sort_keys=True, default=str)
    return f"{base}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def absolute_sqlite(storage: str) -> str:
    """sqlite:///relative/path -> sqlite:////absolute/path, with its folder created."""
    if not storage.startswith(SQLITE):
        return storage
    path = Path(storage[len(SQLITE):]).expanduser()
    path = path if path.is_absolute() else Path(os.getcwd()) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLITE + str(path)


def stale(study) -> list:
    """The trials a killed sweep left RUNNING, oldest first."""
    from optuna.trial import TrialState
    return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]

