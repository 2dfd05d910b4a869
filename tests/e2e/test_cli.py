"""Real `python main.py ...` runs in a subprocess: the user's view."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e  # real `python main.py` runs: `python -m pytest -m e2e`


def _fake_tensorflow(tmp_path) -> dict:
    """An environment in which importing TensorFlow fails loudly."""
    fake = tmp_path / "fake"
    (fake / "tensorflow").mkdir(parents=True)
    (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('TensorFlow was imported')\n")
    return {"PYTHONPATH": f"{fake}{os.pathsep}{ROOT}"}


def test_help_and_cfg_do_not_import_tensorflow(cli, tmp_path):
    env = _fake_tensorflow(tmp_path)
    help_ = cli("--help", env=env)
    assert help_.returncode == 0 and "procedure" in help_.stdout and "lenet" in help_.stdout
    job = cli("--cfg", "job", "procedure=distill", env=env)
    assert job.returncode == 0 and "temperature" in job.stdout


@pytest.mark.parametrize("override", ["train.epochs=0", "train.batch_size=-1", "train.val_split=1.5"])
def test_bad_values_rejected_before_tensorflow(cli, tmp_path, override):
    result = cli(override, env=_fake_tensorflow(tmp_path))
    assert result.returncode == 2
    assert "ConfigError" in result.output and override.split("=")[0] in result.output


def test_an_unwritable_run_store_is_refused_before_tensorflow(cli, tmp_path):
    result = cli("procedure=train", "paths.runs=/proc/kd-runner-runs", env=_fake_tensorflow(tmp_path))
    assert result.returncode == 2 and "paths.runs=/proc/kd-runner-runs: the run store cannot be written" in result.output
    assert "Traceback" not in result.output


def test_unknown_model_lists_choices(cli):
    result = cli("model=resnet9000")
    assert result.returncode != 0
    assert "Available options" in result.stderr and "hinton1200" in result.stderr


def test_missing_dataset_names_the_fix(cli, tmp_path):
    result = cli("debug=smoke", "dataset=cifar10", f"paths.runs={tmp_path}/runs",
                 f"hydra.run.dir={tmp_path}/out")
    assert result.returncode == 2
    assert "dataset.path=" in result.output and "Traceback" not in result.output


def test_smoke_train_evaluate_report(cli, tmp_path):
    common = ["debug=smoke", f"paths.runs={tmp_path}/runs", f"hydra.run.dir={tmp_path}/out"]
    trained = cli("procedure=train", *common)
    assert trained.returncode == 0, trained.stderr
    assert "test acc" in trained.stdout and "artifacts: " in trained.stdout  # its summary table
    evaluated = cli("procedure=evaluate", *common)
    assert evaluated.returncode == 0, evaluated.stderr
    reported = cli("procedure=report", *common)
    assert reported.returncode == 0, reported.stderr
    assert reported.stdout.count("| mnist_sample |") == 2  # the train and the evaluate run


def test_a_log_file_gets_one_plain_line_per_epoch_and_no_escape_code(tmp_path):
    """`python main.py debug=smoke > log.txt`: no progress-bar redraws or colours in the file."""
    log = tmp_path / "log.txt"
    args = [sys.executable, "main.py", "debug=smoke", "train.epochs=2", f"paths.runs={tmp_path}/runs",
            f"hydra.run.dir={tmp_path}/out"]
    with open(log, "w") as handle:
        result = subprocess.run(args, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, stdout=handle,
                                stderr=subprocess.STDOUT, timeout=300)
    text = log.read_text()
    assert result.returncode == 0, text[-3000:]
    assert "\x1b" not in text and "\r" not in text
    epochs = [line for line in text.splitlines() if line.startswith("Epoch ")]
    assert len(epochs) == 6 and all("  loss=" in line and "val_accuracy=" in line for line in epochs)  # 3 runs x 2


def test_multirun_sweep_makes_one_folder_per_point(cli, tmp_path):
    result = cli("-m", "debug=smoke", "procedure=train", "model=lenet,lenet_half", "seed=0,1",
                 f"paths.runs={tmp_path}/runs", f"hydra.sweep.dir={tmp_path}/sweep")
    assert result.returncode == 0, result.stderr
    done = sorted((tmp_path / "runs" / "mnist_sample" / "train").glob("*/DONE"))
    assert len(done) == 4


@pytest.mark.parametrize("sig, stream", [(signal.SIGKILL, "false"), (signal.SIGTERM, "false"), (signal.SIGKILL, "true")])
def test_killed_run_resumes_to_the_same_epoch_count(tmp_path, sig, stream):
    """In memory or streamed from the store (dataset.stream=true), a killed run goes on from
    its last epoch's checkpoint and ends with the configured epochs and one DONE."""
    runs = tmp_path / "runs"
    args = [sys.executable, "main.py", "procedure=train", "model=hinton800", "dataset=synthetic",
            "dataset.num_samples=6000", "train.epochs=5", f"paths.runs={runs}", f"hydra.run.dir={tmp_path}/out",
            f"dataset.stream={stream}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    checkpoint = None
    while time.time() < deadline and process.poll() is None:
        found = list(runs.glob("synthetic/train/*/ckpt/checkpoint"))
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.05)
    assert checkpoint is not None, "the run never wrote a checkpoint"
    process.send_signal(sig)
    process.wait(timeout=60)
    folder = checkpoint.parent.parent
    assert not (folder / "DONE").exists(), "killed too late: the run had finished"
    finished = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "resuming from the checkpoint of epoch" in finished.stdout + finished.stderr
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["epochs"] == 5 and metrics["resumed_from_epoch"] >= 1
    assert len((folder / "history.csv").read_text().strip().splitlines()) == 1 + 5
    assert not list(Path(folder).glob("**/.tmp-*"))
    assert len(list(runs.glob("synthetic/train/*/DONE"))) == 1
    assert ("streamed" in finished.stdout + finished.stderr) == (stream == "true")


def test_suite_from_the_command_line_prints_one_table(cli, tmp_path):
    """A suite given on the command line: every row runs, one table with the fraction of the
    reference row. (Every preset's suite runs in process under `debug=smoke`.)"""
    rows = "[{label:Teacher,overrides:['procedure=train']},{label:Student,overrides:['procedure=distill']}]"
    result = cli("procedure=suite", f"suite.rows={rows}", "suite.reference=Teacher", "suite.title=Two rows",
                 "debug=smoke", f"paths.runs={tmp_path}/runs", f"hydra.run.dir={tmp_path}/out")
    assert result.returncode == 0, result.output[-3000:]
    table = result.stdout[result.stdout.index("Two rows"):].splitlines()
    assert any(line.startswith("Teacher") for line in table)
    student = next(line for line in table if line.startswith("Student"))
    assert "%" in student
    assert len(list((tmp_path / "runs").glob("*/distill/*/DONE"))) == 1
