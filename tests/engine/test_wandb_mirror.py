"""logger=wandb (src/wandb_mirror.py): a run folder mirrored offline and read back from the
files W&B wrote (tests/wandb_files.py): config, curves, summary, figures and artifact; a
sweep as a group, no run twice, and the settings refused before any work."""
from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from src import tracking
from src.errors import ConfigError
from src.schema import validate
from tests.conftest import SMOKE, as_main, compose_config
from tests.wandb_files import offline_runs

wandb = pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    """Offline, with W&B's own settings, cache and staging folders inside the test's folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    monkeypatch.delenv("WANDB_DIR", raising=False)


def _run_folder(tmp_path):
    """A finished-looking run folder: config, two epochs, final metrics, a figure, a model file."""
    folder = tmp_path / "runs" / "synthetic" / "train" / "lenet-0123456789"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("train:\n  epochs: 2\n  lr: 0.001\nmodel:\n  name: lenet\n")
    (folder / "history.csv").write_text("epoch,loss,accuracy,improved\n1,0.9,0.5,True\n2,0.4,0.75,False\n")
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": 0.8, "params": 1200, "note": "x", "best": None}))
    (folder / "model.keras").write_bytes(b"\0" * 64)
    from PIL import Image
    Image.new("RGB", (8, 8), (200, 30, 30)).save(folder / "confusion.png")
    return folder


def _cfg(tmp_path, *overrides):
    return OmegaConf.create({"paths": {"runs": str(tmp_path / "runs")},
                             "logger": {"name": "wandb", "project": None, "entity": None, "mode": None,
                                        **dict(o.split("=", 1) for o in overrides)}})


def test_a_run_folder_becomes_an_offline_run_with_its_config_curves_summary_figures_and_model(tmp_path):
    from src import wandb_mirror
    folder = _run_folder(tmp_path)
    wandb_mirror.mirror([folder], _cfg(tmp_path), job=tracking.Job())
    (run,) = offline_runs(tmp_path / "wandb")  # beside the run store
    assert run.name == "train/lenet-0123456789" and run.project == "kd-runner" and run.job_type == "train"
    assert run.tags == ["train", "synthetic"] and run.group == "" and run.exit_code == 0
    assert run.config["train"] == {"epochs": 2, "lr": 0.001} and run.config["model"] == {"name": "lenet"}
    assert run.config["kd_runner"]["run_store_dir"] == str(folder)
    curves = [(h["_step"], h["epoch/loss"], h["epoch/accuracy"]) for h in run.history if "epoch/loss" in h]
    assert curves == [(1, 0.9, 0.5), (2, 0.4, 0.75)]  # the epoch as step; flags stay in history.csv
    assert not any("epoch/improved" in h for h in run.history)
    assert run.summary["test_accuracy"] == 0.8 and run.summary["params"] == 1200 and "note" not in run.summary
    image = next(h for h in run.history if "figures/confusion/path" in h)
    assert image["_step"] == 2 and (run.folder / "files" / image["figures/confusion/path"]).is_file()
    (artifact,) = run.artifacts
    assert artifact["type"] == "model" and artifact["name"] == "train-lenet-0123456789"
    assert artifact["files"] == ["config.yaml", "confusion.png", "history.csv", "metrics.json", "model.keras"]


def test_a_sweep_is_a_group_and_a_run_is_mirrored_once_per_project_and_group(tmp_path, caplog):
    from src import wandb_mirror
    folder = _run_folder(tmp_path)
    cfg = _cfg(tmp_path, "project=kd-tests")
    with caplog.at_level("INFO"):
        wandb_mirror.mirror([folder], cfg, job=tracking.Job())
    assert f"wandb sync {tmp_path / 'wandb'}/offline-run-*" in caplog.text
    wandb_mirror.mirror([folder, folder], cfg, job=tracking.Job())  # reused from the store: nothing new
    sweep = tracking.Job(sweep_dir="multirun/2026-01-01/00-00-00", number=3)
    wandb_mirror.mirror([folder], cfg, job=sweep)
    runs = offline_runs(tmp_path / "wandb")
    assert len(runs) == 2 and all(r.project == "kd-tests" for r in runs)
    (in_sweep,) = [r for r in runs if r.group]
    assert in_sweep.group == sweep.sweep_dir and in_sweep.config["kd_runner"]["job"] == 3


def test_without_a_login_or_a_mode_the_runs_are_offline(monkeypatch, tmp_path):
    from src import wandb_mirror
    monkeypatch.delenv("WANDB_MODE")
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mirror.run_mode(None) == "offline" and wandb_mirror.run_mode("online") == "online"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password 0123456789abcdef\n")
    assert wandb_mirror.run_mode(None) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mirror.run_mode(None) == "offline"


def test_a_failing_tracker_is_a_warning_and_the_run_is_kept(tmp_path, caplog, monkeypatch):
    from src import runstore, wandb_mirror
    monkeypatch.setattr(runstore, "is_done", lambda folder: True)
    monkeypatch.setattr(wandb_mirror, "_log_run", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no network")))
    folder = _run_folder(tmp_path)
    with caplog.at_level("WARNING"):
        tracking.mirror(_cfg(tmp_path), [folder], tracking.Job())
    assert "logger=wandb: 1 run(s) not recorded (RuntimeError: no network)" in caplog.text


def test_wandb_missing_or_a_bad_mode_is_refused_before_any_work(monkeypatch):
    import importlib.util
    with pytest.raises(ConfigError, match=r"logger.mode=sometimes: W&B runs online or offline"):
        validate(compose_config(*SMOKE, "logger=wandb", "logger.mode=sometimes"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with as_main(*SMOKE, "logger=wandb") as cfg, \
            pytest.raises(ConfigError, match=r"^logger=wandb needs wandb, which is not installed: pip install -e '.\[wandb\]'"):
        validate(cfg)
