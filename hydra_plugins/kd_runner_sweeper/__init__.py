"""The runner's Optuna sweeper: Hydra's search-space syntax on current Optuna, with a study
that survives a kill (`hydra/sweeper=optuna`, which every conf/hparams_search preset picks).

Hydra finds plugins only under the `hydra_plugins` namespace, and imports every public
module there on each start; this one runs from the checkout like the rest of the project
and imports Optuna only when a sweep starts (the work is in the `_`-prefixed modules,
which Hydra's scan skips). Its configs are in config.py. Without Optuna, `hparams_search=...`
names the missing extra before Hydra starts (src/cli.py).
"""
from __future__ import annotations

from typing import Any

from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra.plugins.sweeper import Sweeper

from .config import store


class ResumingOptunaSweeper(Sweeper):
    """Trials asked of an Optuna study and launched in batches of n_jobs; with a storage,
    the same command carries on the study a killed sweep left (see _resume)."""

    def __init__(self, sampler: Any, direction: Any = "minimize", storage: str | None = None,
                 study_name: str | None = None, n_trials: int = 20, n_jobs: int = 1,
                 max_failure_rate: float = 0.0, params: Any = None) -> None:
        self.sampler, self.direction, self.storage, self.study_name = sampler, direction, storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate, self.params = n_trials, n_jobs, max_failure_rate, params
        self.config = self.launcher = self.hydra_context = None
        self.job_idx = 0

    def setup(self, *, hydra_context, task_function, config) -> None:
        from hydra.core.plugins import Plugins
        self.config, self.hydra_context, self.job_idx = config, hydra_context, 0
        self.launcher = Plugins.instance().instantiate_launcher(config=config, hydra_context=hydra_context,
                                                                task_function=task_function)

    def sweep(self, arguments: list[str]) -> None:
        from ._study import sweep
        sweep(self, list(arguments))


class RunnersConfigsFirst(SearchPathPlugin):
    """Stores the sweeper's configs again once every plugin is imported (Hydra asks search-path
    plugins only then), so that they win over hydra-optuna-sweeper's of the same names."""

    def manipulate_search_path(self, search_path) -> None:
        store()
