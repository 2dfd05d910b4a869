"""Shared fixtures: compose the real conf/ with Hydra's compose API onto a throw-away
run store, so procedures run in-process exactly as main.py would run them."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one core per worker: more threads only spin against the other worker
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # BLAS libraries loaded before this file (numpy's) too

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import open_dict  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")

from src.schema import register  # noqa: E402

register()

# Tiny and fast: a learnable synthetic data set, one short epoch.
SMOKE = ["debug=smoke", "dataset=synthetic", "dataset.num_samples=512", "train.max_steps=null"]


def compose_config(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@contextlib.contextmanager
def as_main(*overrides: str):
    """The config main.py would hand to a procedure for these command-line overrides,
    with Hydra's job state set as under main.py (what `procedure=suite` composes its
    rows from); procedures run inside the block."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        yield cfg


@pytest.fixture
def make_cfg(tmp_path):
    """make_cfg("procedure=train", ...) -> a smoke config whose store is under tmp_path."""
    def make(*overrides: str):
        return compose_config(*SMOKE, f"paths.runs={tmp_path / 'runs'}", *overrides)
    return make


def stored_accuracy(cfg, model_dir) -> float:
    """Test accuracy of model_dir's model.keras on cfg's test split, recomputed from the
    saved file: what a procedure reports as test_accuracy must be this number."""
    import numpy as np

    from procedures._inputs import load_data
    from src.artifacts import load_model
    from src.fit import predict_logits
    data = load_data(cfg)
    return float(np.mean(np.argmax(predict_logits(load_model(model_dir), data.x_test), -1) == data.y_test))


@pytest.fixture
def cli(tmp_path):
    """Run `python main.py ...` in a subprocess from the repo root; returns CompletedProcess."""
    import subprocess

    def run(*args: str, timeout: float = 300, env: dict | None = None):
        full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        result = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                                timeout=timeout, env=full_env)
        result.output = result.stdout + result.stderr  # Hydra logs to stdout, errors to stderr
        return result
    return run


def numeric_gradient(loss, values, h: float = 1e-2):
    """Central finite differences of the scalar function `loss` at the NumPy array `values`."""
    import numpy as np
    grad = np.zeros_like(values)
    for index in np.ndindex(values.shape):
        up, down = values.copy(), values.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (loss(up) - loss(down)) / (2 * h)
    return grad
