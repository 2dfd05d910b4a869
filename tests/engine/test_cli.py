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


def test_quick_help_lists_the_groups_and_the_student_options():
    text = cli.text()
    assert "procedure: compute_stats, datafree_distill, deploy, distill" in text and "student: convnet, hinton1200" in text
    assert cli.wants_quick_help(["--help"]) and not cli.wants_quick_help(["--hydra-help"])
