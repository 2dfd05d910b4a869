"""The resuming Optuna sweeper's study name and storage path (hydra_plugins/kd_runner_sweeper)."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
from hydra_plugins.kd_runner_sweeper.resume import absolute_sqlite, study_name  # noqa: E402

SPACE = OmegaConf.create({"distill.temperature": "choice(1, 2, 4)"})


def test_the_same_command_names_the_same_study_and_another_command_another():
    one = study_name("distill_optuna", SPACE, "maximize", ["seed=0", "dataset=fashion_mnist"])
    assert one == study_name("distill_optuna", SPACE, "maximize", ["dataset=fashion_mnist", "seed=0"])
    assert one.startswith("distill_optuna-")
    assert one != study_name("distill_optuna", SPACE, "maximize", ["seed=1", "dataset=fashion_mnist"])
    assert one != study_name("distill_optuna", OmegaConf.create({"distill.temperature": "choice(1, 2)"}),
                             "maximize", ["seed=0", "dataset=fashion_mnist"])
    assert one != study_name("distill_optuna", SPACE, "minimize", ["seed=0", "dataset=fashion_mnist"])


def test_a_relative_sqlite_path_is_made_absolute_and_its_folder_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///multirun/optuna.db") == f"sqlite:///{tmp_path}/multirun/optuna.db"
    assert (tmp_path / "multirun").is_dir()
    assert absolute_sqlite(f"sqlite:///{tmp_path}/a/b.db") == f"sqlite:///{tmp_path}/a/b.db"
    assert absolute_sqlite("postgresql://host/db") == "postgresql://host/db"
