"""Hydra plugins this runner's presets use, checked before Hydra composes the config.

Without the check, a missing plugin surfaces as Hydra's "Could not find
'hydra/launcher/joblib'" deep in a stack trace; this names the extra that installs it.
TensorFlow-free: main.py calls it on every start.
"""
from __future__ import annotations

import importlib.util

# command-line choice -> (module the plugin installs, its PyPI name, the extra providing it)
_JOBLIB = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "launchers")
_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "launchers")
_OPTUNA = ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper", "sweepers")
NEEDS = {
    "hydra/launcher=parallel": _JOBLIB,
    "hydra/launcher=joblib": _JOBLIB,
    "hydra/launcher=submitit_local": _SUBMITIT,
    "hydra/launcher=submitit_slurm": _SUBMITIT,
    "hydra/launcher=slurm": _SUBMITIT,
    "hydra/sweeper=optuna": _OPTUNA,
    "hparams_search=": _OPTUNA,  # every preset in conf/hparams_search uses Optuna
}


def missing_plugin(argv: list[str]) -> str | None:
    """A message naming the plugin and the install command, if an argument needs a
    plugin that is not installed; else None."""
    for arg in argv:
        for prefix, (module, package, extra) in NEEDS.items():
            if arg.lstrip("+~").startswith(prefix) and not arg.endswith("=null"):
                if importlib.util.find_spec(module.split(".")[0]) is None or \
                        importlib.util.find_spec(module) is None:
                    return (f"{arg} needs the Hydra plugin {package}, which is not installed: "
                            f'pip install -e ".[{extra}]" (or pip install {package})')
    return None
