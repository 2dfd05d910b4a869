"""The command line before Hydra composes anything: a quick `--help`, and a check that
the Hydra plugins an argument needs are installed. TensorFlow-free: main.py calls it on
every start.

`python main.py --help` is answered from conf/ and the schema in a fraction of a second:
Hydra's own --help composes the config once per config group to list the groups, which
takes seconds with the launcher and sweeper plugins installed. `--cfg job` still prints
the composed config and `--hydra-help` Hydra's own help.

Without the plugin check, a missing plugin surfaces as Hydra's "Could not find
'hydra/launcher/joblib'" deep in a stack trace; `missing_plugin` names the extra that
installs it (and for Optuna, which the runner's own sweeper drives, a version too old).
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from src.schema import SECTIONS, Config

CONF = Path(__file__).resolve().parents[1] / "conf"
PLUGIN_LAUNCHERS = "joblib, submitit_local, submitit_slurm (from the installed plugins)"


def wants_quick_help(argv: list[str]) -> bool:
    return ("--help" in argv or "-h" in argv) and "--hydra-help" not in argv


def print_and_exit() -> None:
    try:
        print(text(), flush=True)
    except BrokenPipeError:  # `python main.py --help | head`
        pass
    raise SystemExit(0)


def _options(group: Path) -> str:
    return ", ".join(sorted(p.stem for p in group.glob("*.yaml")))


def _keys() -> list[str]:
    lines = []
    for field in dataclasses.fields(Config):
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if dataclasses.is_dataclass(default):
            names = ", ".join(f.name for f in dataclasses.fields(default))
            lines.append(f"  {field.name}.{{{names}}}")
        else:
            lines.append(f"  {field.name} (default {default!r})")
    return lines


def _choices() -> list[str]:
    return [f"  {key}: {', '.join(values)}" for section in SECTIONS
            for key, values in getattr(section, "CHOICES", {}).items()]


def text() -> str:
    groups = [p for p in sorted(CONF.iterdir()) if p.is_dir() and p.name != "hydra"]
    lines = [
        "kd-runner: knowledge distillation and interpretable-model experiments (TensorFlow / Keras, Hydra)",
        "",
        "usage: python main.py [group=option ...] [key=value ...]        one run",
        "       python main.py -m [key=a,b,c ...]                         a sweep (Hydra multirun)",
        "",
        "Config groups (group=option):",
        *[f"  {g.name}: {_options(g)}" for g in groups],
        f"  student: {_options(CONF / 'model')} (every model)",
        f"  hydra/launcher: {_options(CONF / 'hydra' / 'launcher')}, {PLUGIN_LAUNCHERS}",
        "",
        "Keys (key=value; types are checked, an unknown key is an error):",
        *_keys(),
        "",
        "Choices (key: its allowed values):",
        *_choices(),
        "",
        "Examples:",
        "  python main.py                                     # the main job: teacher, scratch and distilled student",
        "  python main.py procedure=train model=lenet dataset=fashion_mnist",
        "  python main.py procedure=distill model=hinton1200 student=hinton800 distill.temperature=8",
        "  python main.py -m hydra/launcher=parallel distill.temperature=2,4,8,16",
        "  python main.py procedure=report",
        "",
        "More: --cfg job [overrides] prints the composed config; --hydra-help shows Hydra's own flags;",
        "README.md and docs/<procedure>.md describe every procedure.",
    ]
    return "\n".join(lines)


# command-line choice -> (module, the PyPI package that installs it, the extra providing it,
# the lowest major version that works)
_JOBLIB = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher", "launchers", None)
_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher", "launchers", None)
_OPTUNA = ("optuna", "optuna", "sweepers", 4)  # the runner's own sweeper (hydra_plugins/kd_runner_sweeper)
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
    """A message naming the package and the install command, if an argument needs a
    package that is not installed (or too old); else None."""
    for arg in argv:
        for prefix, (module, package, extra, major) in NEEDS.items():
            if arg.lstrip("+~").startswith(prefix) and not arg.endswith("=null"):
                what = f"the Hydra plugin {package}" if module.startswith("hydra_plugins.") else package
                if importlib.util.find_spec(module.split(".")[0]) is None or \
                        importlib.util.find_spec(module) is None:
                    return (f"{arg} needs {what}, which is not installed: "
                            f'pip install -e ".[{extra}]" (or pip install {package})')
                found = _version(package)
                if major is not None and found is not None and _major(found) < major:
                    return (f"{arg} needs {package} >= {major}, and {found} is installed: "
                            f'pip install -e ".[{extra}]" (or pip install "{package}>={major}")')
    return None


def _version(package: str) -> str | None:
    import importlib.metadata
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major(version: str) -> int:
    head = version.split(".")[0]
    return int(head) if head.isdigit() else 0
