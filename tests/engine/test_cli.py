"""The command line before Hydra: the quick --help and the check that names a missing
Hydra plugin's extra (both TensorFlow-free; the subprocess runs are in tests/e2e)."""
from __future__ import annotations

from src import cli


def test_missing_plugin_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins.hydra_joblib") else real(name, *a))
    message = cli.missing_plugin(["-m", "hydra/launcher=parallel", "seed=0,1"])
    assert "hydra-joblib-launcher" in message and 'pip install -e ".[launchers]"' in message
    assert cli.missing_plugin(["-m", "seed=0,1"]) is None


def test_an_optuna_search_needs_optuna_4_or_later(monkeypatch):
    import importlib.metadata
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    message = cli.missing_plugin(["-m", "hparams_search=distill_optuna"])
    assert message == ('hparams_search=distill_optuna needs optuna, which is not installed: '
                       'pip install -e ".[sweepers]" (or pip install optuna)')
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "optuna" else real(name, *a))
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.10.1")
    assert cli.missing_plugin(["-m", "hydra/sweeper=optuna"]) == (
        'hydra/sweeper=optuna needs optuna >= 4, and 2.10.1 is installed: pip install -e ".[sweepers]" '
        '(or pip install "optuna>=4")')
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.1.0")
    assert cli.missing_plugin(["-m", "hparams_search=tree_optuna"]) is None


def test_quick_help_lists_the_groups_and_the_student_options():
    text = cli.text()
    assert "procedure: compute_stats, datafree_distill, deploy, distill" in text and "student: convnet, factory, hinton1200, hinton800, keras_app" in text
    assert cli.wants_quick_help(["--help"]) and not cli.wants_quick_help(["--hydra-help"])
