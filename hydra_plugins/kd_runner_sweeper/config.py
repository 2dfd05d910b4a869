"""The sweeper's configs in Hydra's ConfigStore: `hydra/sweeper=optuna` and its samplers
`hydra/sweeper/sampler=tpe|random|nsgaii`. Any other Optuna sampler is a _target_ away:
hydra.sweeper.sampler._target_=optuna.samplers.QMCSampler.

hydra-optuna-sweeper stores configs of the same names; `store` runs again once Hydra has
imported every plugin (RunnersConfigsFirst in __init__), so where both are installed the
runner's are the ones composed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

PROVIDER = "kd_runner_sweeper"


@dataclass
class TPESamplerConf:
    """Optuna's TPE: random for the first n_startup_trials, then a density model of the
    good and the bad trials; one objective or several."""
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10
    multivariate: bool = False  # one model over all parameters together


@dataclass
class RandomSamplerConf:
    """Independent uniform draws from the search space."""
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class NSGAIISamplerConf:
    """NSGA-II, the genetic sampler for several objectives."""
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None
    population_size: int = 50


@dataclass
class OptunaSweeperConf:
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    _target_: str = "hydra_plugins.kd_runner_sweeper.ResumingOptunaSweeper"
    sampler: Any = MISSING
    direction: Any = "minimize"  # maximize, or a list: one direction per metric of a list optimized_metric
    storage: Optional[str] = None  # an Optuna storage URL; sqlite:///... keeps the study, so a killed search resumes
    study_name: Optional[str] = None  # with a storage: + a hash of the search space, direction and overrides
    n_trials: int = 20  # trials in the study, counting those a storage already has
    n_jobs: int = 1  # trials asked for and launched together (e.g. with hydra/launcher=parallel)
    max_failure_rate: float = 0.0  # the fraction of a batch's trials that may fail before the search stops
    params: Optional[Dict[str, str]] = None  # key: sweep text, e.g. distill.temperature: choice(1, 2, 4, 8)


def store() -> None:
    """Put the sweeper's config and its samplers in Hydra's ConfigStore (idempotent)."""
    configs = ConfigStore.instance()
    configs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider=PROVIDER)
    for name, node in (("tpe", TPESamplerConf), ("random", RandomSamplerConf), ("nsgaii", NSGAIISamplerConf)):
        configs.store(group="hydra/sweeper/sampler", name=name, node=node, provider=PROVIDER)


store()
