"""Distribution strategies across devices and processes, proven on CPU (no GPU here):
the mirrored strategy on two logical CPUs, in a fresh process that splits the CPU before
TensorFlow initialises, and two local `python main.py` workers of one multi-worker run.
The strategies' in-process choices are tests/engine/test_distribute.py's."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e  # fresh processes: `python -m pytest -m e2e`

EQUALITY_SCRIPT = r"""
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
from src import runtime
runtime.split_cpu(2)
import keras, numpy as np, tensorflow as tf
import models
from src.fit import Fitter
from src.optim import make_optimizer
from src.losses import classifier_loss

rng = np.random.default_rng(0)
x = rng.normal(size=(256, 28, 28, 1)).astype("float32")
y = rng.integers(0, 10, size=256).astype("int32")

def train(strategy):
    tf.distribute.experimental_set_strategy(strategy)
    keras.utils.set_random_seed(0)
    model = models.build("hinton800", (28, 28, 1), 10)  # no dropout: both runs see the same function
    fitter = Fitter(model, classifier_loss(model), make_optimizer("sgd", 0.05))
    result = fitter.fit({"x": x, "y": y}, epochs=2, batch_size=32, seed=0, verbose=0)
    weights = [np.asarray(w) for w in model.get_weights()]
    return weights, fitter.replicas, result.history[-1]["loss"]

single, r1, loss1 = train(None)
mirrored, r2, loss2 = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
moved = max(float(np.abs(a - b).max()) for a, b in zip(single, models.build("hinton800", (28, 28, 1), 10).get_weights()))
print(json.dumps({"replicas": [r1, r2], "max_diff": max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored)),
                  "loss": [loss1, loss2], "moved": moved}))
"""


def _run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_mirrored_two_cpu_replicas_equal_one_device():
    """16 SGD steps split over two replicas give the single-device weights (to float
    rounding): the loss scaling by the number of replicas is right."""
    result = _run("-c", EQUALITY_SCRIPT)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == [1, 2]
    assert out["moved"] > 1e-3  # training really changed the weights
    assert out["max_diff"] < 1e-5, out
    assert out["loss"][0] == pytest.approx(out["loss"][1], rel=1e-5)


def test_cli_mirrored_run_on_two_logical_cpus(tmp_path):
    runs = tmp_path / "runs"
    result = _run("main.py", "debug=smoke", "dataset=synthetic", "procedure=train", f"paths.runs={runs}",
                  "distribute=mirrored", "logical_cpus=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distribute=mirrored: 2 replicas in sync" in result.stdout + result.stderr
    assert len(list(runs.glob("synthetic/train/*/DONE"))) == 1


def _free_ports(count: int) -> list[int]:
    import socket
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize("stream", ["false", "true"])
def test_multi_worker_two_local_workers_only_the_chief_writes(tmp_path, stream):
    """Two workers on this machine (TF_CONFIG) train one model together: the chief's run
    lands in the store, the other worker's in a throw-away folder, and the result equals a
    single-device run of the same config. Streamed, each worker reads its own half of
    every batch from the store."""
    import os
    import re

    from src.runstore import read_json
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    common = ["main.py", "debug=smoke", "dataset=synthetic", "procedure=train", "model=lenet_half",
              "train.optimizer=sgd", "train.lr_schedule=constant", f"dataset.stream={stream}"]
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, *common, "distribute=multi_worker", f"paths.runs={tmp_path / 'runs'}",
             f"hydra.run.dir={tmp_path / f'out{index}'}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[1][-2000:] + outputs[0][-2000:]
    assert all("distribute=multi_worker: 2 replicas in sync" in out for out in outputs)
    chief_runs = list((tmp_path / "runs").glob("synthetic/train/*/DONE"))
    assert len(chief_runs) == 1
    assert f"artifacts: {tmp_path / 'runs'}" in outputs[0] and f"artifacts: {tmp_path / 'runs'}" not in outputs[1]
    single = _run(*common, f"paths.runs={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr[-2000:]
    together = read_json(chief_runs[0].parent / "metrics.json")
    alone = read_json(next((tmp_path / "single").glob("synthetic/train/*/metrics.json")))
    assert together["final_loss"] == pytest.approx(alone["final_loss"], rel=1e-4)
    assert together["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=1 / 256)
    if stream == "true":
        read = [re.search(r"streamed (\d+) training examples from disk \(worker (\d) of 2\)", out) for out in outputs]
        assert all(read), outputs[0][-2000:]
        alone_read = int(re.search(r"streamed (\d+) training examples", single.stdout + single.stderr).group(1))
        assert [int(found.group(1)) for found in read] == [alone_read // 2] * 2
        assert sorted(int(found.group(2)) for found in read) == [0, 1]
