"""One Optuna search: check the objectives, open (or resume) the study, ask for trials in
batches of n_jobs, launch them, tell Optuna each job's optimized_metric, and write
<sweep dir>/optimization_results.yaml.

Every job returns what main.py's `headline` returns: one number for one objective, or one
number per metric when `optimized_metric` is a list, in the order of
`hydra.sweeper.direction`. A job that fails, or returns something else, is a FAIL trial;
more failures in a batch than `max_failure_rate` allows stop the search with the job's
own error.
"""
from __future__ import annotations

import logging
from pathlib import Path

import optuna
from hydra.errors import CompactHydraException
from omegaconf import ListConfig, OmegaConf
from optuna.trial import TrialState

from src.errors import ConfigError

from . import _resume
from ._space import SearchSpace, search_space

log = logging.getLogger(__name__)
DIRECTIONS = ("minimize", "maximize")


class SweepConfigError(ConfigError, CompactHydraException):
    """A sweep setting that cannot work, printed by Hydra as its one-line message."""


def sweep(sweeper, arguments: list[str]) -> None:
    """Run the search of a ResumingOptunaSweeper (its settings and launcher) over `arguments`."""
    directions = directions_of(sweeper.direction)
    check_objectives(sweeper.config.get("optimized_metric"), directions)
    space = search_space(sweeper.params, arguments)
    name, storage = sweeper.study_name, sweeper.storage
    if storage:
        name = _resume.study_name(name or "study", sweeper.params, sweeper.direction, arguments)
        storage = _resume.absolute_sqlite(str(storage))
        logging.getLogger("alembic").setLevel(logging.WARNING)  # the database set-up notes
    study = open_study(name, storage, sweeper.sampler, directions)
    before = len(study.trials)
    rerun_stale(sweeper, study, space, directions)
    to_run = max(0, int(sweeper.n_trials) - len(study.trials)) if storage else int(sweeper.n_trials)
    log.info("Optuna study %s (%s, %s, %s): %d trial(s) there, %d to run", study.study_name, storage or "in memory",
             type(study.sampler).__name__, ", ".join(directions), before, to_run)
    while to_run > 0:
        batch = [study.ask(fixed_distributions=space.distributions) for _ in range(min(to_run, int(sweeper.n_jobs)))]
        for trial in batch:
            for key, value in space.fixed.items():
                trial.set_user_attr(key, value)
        launch(sweeper, study, batch, [space.overrides(trial.params) for trial in batch], directions)
        to_run -= len(batch)
    write_results(study, Path(sweeper.config.hydra.sweep.dir) / "optimization_results.yaml")


def directions_of(direction) -> list[str]:
    """hydra.sweeper.direction as a list: one direction, or one per objective."""
    values = list(direction) if isinstance(direction, (list, tuple, ListConfig)) else [direction]
    names = [getattr(value, "name", str(value)) for value in values]
    bad = next((n for n in names if n not in DIRECTIONS), None)
    if bad is not None or not names:
        raise SweepConfigError(f"hydra.sweeper.direction={_text(direction)}: each direction is minimize or maximize "
                               "(a list gives one per metric of optimized_metric)")
    return names


def check_objectives(metric, directions: list[str]) -> None:
    """An objective per direction: optimized_metric is set, and a list has one per direction."""
    if metric is None:
        raise SweepConfigError("optimized_metric=null: an Optuna search needs the metric it optimises; "
                               "set optimized_metric=val_accuracy (or a list, one per hydra.sweeper.direction)")
    metrics = list(metric) if isinstance(metric, (list, tuple, ListConfig)) else [metric]
    if len(metrics) != len(directions):
        example = ",".join(["maximize"] * len(metrics))
        raise SweepConfigError(
            f"hydra.sweeper.direction={_text(directions)}: {len(directions)} direction(s) for "
            f"{len(metrics)} metric(s) of optimized_metric={_text(metrics)}; give one direction per metric, "
            f"in the same order (e.g. hydra.sweeper.direction=[{example}])")


def open_study(name: str | None, storage: str | None, sampler, directions: list[str]) -> optuna.Study:
    """The study named `name` in `storage`, created when it is not there yet."""
    try:
        return optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=directions,
                                   load_if_exists=True)
    except RuntimeError as error:
        if "storage upgrade" not in str(error):
            raise
        raise SweepConfigError(f"hydra.sweeper.storage={storage}: its studies were written by an older Optuna; "
                               f"upgrade the file once with `optuna storage upgrade --storage {storage}`, or give "
                               "this search another paths.sweeps") from None
    except ValueError as error:  # the study exists with other directions
        raise SweepConfigError(f"hydra.sweeper.study_name={name}: {error}; give this search another study_name "
                               "or storage") from None


def rerun_stale(sweeper, study: optuna.Study, space: SearchSpace, directions: list[str]) -> None:
    """Run the trials a kill left RUNNING again, with their parameters, and tell the results."""
    stale = _resume.stale(study)
    size = max(1, int(sweeper.n_jobs))
    for start in range(0, len(stale), size):
        batch = stale[start:start + size]
        log.info("Optuna study %s: running interrupted trial(s) %s again", study.study_name,
                 ", ".join(str(t.number) for t in batch))
        launch(sweeper, study, [t.number for t in batch], [space.overrides(t.params) for t in batch], directions)


def launch(sweeper, study: optuna.Study, trials: list, overrides: list[tuple[str, ...]],
           directions: list[str]) -> None:
    """Launch one batch of trials (Trial objects or numbers) and tell Optuna how each ended."""
    sweeper.validate_batch_is_legal(overrides)
    returns = sweeper.launcher.launch(overrides, initial_job_idx=sweeper.job_idx)
    sweeper.job_idx += len(returns)
    failures = 0
    for trial, ret in zip(trials, returns):
        try:
            study.tell(trial, values_of(ret.return_value, len(directions)))
        except Exception as error:  # noqa: BLE001  (a failed job or a bad value: a FAIL trial)
            number = trial if isinstance(trial, int) else trial.number
            log.warning("Optuna trial %d failed: %s", number, str(error).splitlines()[0] if str(error) else
                        type(error).__name__)
            study.tell(trial, state=TrialState.FAIL)
            failures += 1
    if returns and failures / len(returns) > float(sweeper.max_failure_rate):
        for ret in returns:
            ret.return_value  # noqa: B018  (raises a failed job's own error)
        raise SweepConfigError(f"hydra.sweeper.max_failure_rate={sweeper.max_failure_rate}: {failures} of "
                               f"{len(returns)} trial(s) returned no number for optimized_metric; see the jobs' "
                               "logs, or raise max_failure_rate to go on past them")


def values_of(value, count: int) -> list[float]:
    """A job's return value as the objective values Optuna is told."""
    values = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if len(values) != count:
        raise ValueError(f"the job returned {len(values)} value(s) for {count} direction(s)")
    return [float(v) for v in values]


def write_results(study: optuna.Study, path: Path) -> None:
    """The best trial (one objective) or the Pareto front (several), as Hydra's sweeper writes them."""
    if not any(t.state == TrialState.COMPLETE for t in study.trials):
        log.warning("Optuna study %s has no finished trial: no %s", study.study_name, path.name)
        return
    if len(study.directions) == 1:
        best = study.best_trial
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
        log.info("Best parameters: %s", best.params)
        log.info("Best value: %s", best.value)
    else:
        front = study.best_trials
        results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values} for t in front]}
        log.info("Pareto front: %d trial(s)", len(front))
        for trial in front:
            log.info("    values %s, parameters %s", trial.values, trial.params)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(results), path)


def _text(value) -> str:
    """A setting as written on the command line: name, or [a,b] for several."""
    if isinstance(value, (list, tuple, ListConfig)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (list, tuple, ListConfig)):
        return "[" + ",".join(str(getattr(v, "name", v)) for v in value) + "]"
    return str(getattr(value, "name", value))
