"""Resume an Optuna study: one study per command, stale trials finished, the rest counted.

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
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
SQLITE = "sqlite:///"


def prepare(impl, arguments: list[str]) -> None:
    """Name the study, make its SQLite folder, finish its stale trials, count what is left."""
    if not impl.storage:
        return
    impl.study_name = study_name(impl.study_name or "study", impl.params, impl.direction, arguments)
    impl.storage = absolute_sqlite(str(impl.storage))
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Optuna's database set-up notes
    import optuna
    try:
        study = optuna.load_study(study_name=impl.study_name, storage=impl.storage)
    except KeyError:  # a new study: nothing to resume
        log.info("Optuna study %s in %s: new", impl.study_name, impl.storage)
        return
    _finish_stale(study, impl)
    before = len(study.trials)
    impl.n_trials = max(0, int(impl.n_trials) - before)
    log.info("Optuna study %s in %s: %d trial(s) there, %d to run", impl.study_name, impl.storage,
             before, impl.n_trials)


def study_name(base: str, params, direction, arguments: list[str]) -> str:
    """base-<hash of the search space, the direction and the sorted command overrides>."""
    from omegaconf import OmegaConf
    space = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    text = json.dumps({"params": space, "direction": str(direction), "overrides": sorted(arguments)},
                      sort_keys=True, default=str)
    return f"{base}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def absolute_sqlite(storage: str) -> str:
    """sqlite:///relative/path -> sqlite:////absolute/path, with its folder created."""
    if not storage.startswith(SQLITE):
        return storage
    path = Path(storage[len(SQLITE):]).expanduser()
    path = path if path.is_absolute() else Path(os.getcwd()) / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return SQLITE + str(path)


def _finish_stale(study, impl) -> None:
    """Run the trials a kill left RUNNING again, with their parameters, and tell the results."""
    from optuna.trial import TrialState
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    size = max(1, int(impl.n_jobs))
    for start in range(0, len(stale), size):
        batch = stale[start:start + size]
        overrides = [tuple(f"{k}={v}" for k, v in {**t.params, **t.user_attrs}.items()) for t in batch]
        log.info("Optuna study %s: running interrupted trial(s) %s again", study.study_name,
                 ", ".join(str(t.number) for t in batch))
        returns = impl.launcher.launch(overrides, initial_job_idx=impl.job_idx)
        impl.job_idx += len(returns)
        for trial, ret in zip(batch, returns):
            try:
                study.tell(trial.number, values=[float(ret.return_value)])
            except Exception as error:  # noqa: BLE001  (as the sweeper itself: a failed trial is FAIL)
                log.warning("interrupted trial %d failed again: %s", trial.number, error)
                study.tell(trial.number, state=TrialState.FAIL)
