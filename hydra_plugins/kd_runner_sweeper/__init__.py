"""Hydra's Optuna sweeper with a study that survives a kill (conf/hparams_search/*).

Hydra finds sweepers only under the `hydra_plugins` namespace; this one runs from the
checkout like the rest of the project. Without hydra-optuna-sweeper installed it defines
nothing, and `hparams_search=...` names the missing extra (src/cli.py).
"""
try:
    from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
except ImportError:  # the `sweepers` extra is not installed
    OptunaSweeper = None

if OptunaSweeper is not None:
    class ResumingOptunaSweeper(OptunaSweeper):
        """OptunaSweeper whose study in `storage` carries on where a killed sweep stopped."""

        def sweep(self, arguments):
            from .resume import prepare
            prepare(self.sweeper, arguments)
            return self.sweeper.sweep(arguments)
