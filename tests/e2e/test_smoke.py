"""`debug=smoke` shrinks everything: every procedure and every experiment preset runs
in seconds, composed exactly as `python main.py debug=smoke ...` composes it.

About four minutes on one core (five with the slow CIFAR-100 presets), so in the
end-to-end set (`python -m pytest -m e2e`); the default pass composes and validates the
same presets without running them (tests/schema/test_presets.py).

The runs share one store, as one user's runs do: a teacher trained for one procedure
is reused by the next. That needs the module on one worker: `--dist loadscope`, as CI
runs it (.ci/run). Presets whose data set needs a download run on synthetic data of
its shape (images a little smaller for LeNet's data-free preset, whose spectral graph
grows with the image)."""
from __future__ import annotations

from pathlib import Path

import pytest

from procedures._upstream import upstream
from src.runstore import finished_runs
from src.schema import validate
from tests.conftest import CONF, as_main

pytestmark = pytest.mark.e2e  # every procedure and preset, run in-process: `python -m pytest -m e2e`

PROCEDURES = sorted(p.stem for p in (Path(CONF) / "procedure").glob("*.yaml") if p.stem != "suite")
# The CIFAR benchmark presets trace three deep networks (half a minute each): in the slow set.
PRESETS = [pytest.param(p, marks=pytest.mark.slow) if p.startswith("kd_cifar100") else p
           for p in sorted(p.stem for p in (Path(CONF) / "experiment").glob("*.yaml"))]
FASHION = Path("/usr/share/datasets/fashion-mnist")
STANDIN = {
    "mnist": ["dataset=synthetic"],
    "mnist_conv": ["dataset=synthetic", "dataset.image_shape=[16,16,1]"],
    "cifar10": ["dataset=synthetic", "dataset.image_shape=[32,32,3]"],
    "cifar100": ["dataset=synthetic", "dataset.image_shape=[32,32,3]", "dataset.num_classes=100",
                 "dataset.num_samples=2000"],
    "fashion_mnist": [] if FASHION.is_dir() else ["dataset=synthetic"],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke") / "runs"


def _run(*overrides: str) -> tuple[dict, object]:
    with as_main(*overrides) as cfg:
        validate(cfg)
        procedure = upstream(cfg.procedure.name)
        return procedure.run(cfg), cfg


@pytest.mark.parametrize("procedure", PROCEDURES)
def test_every_procedure_runs_under_smoke(procedure, store):
    metrics, cfg = _run("debug=smoke", f"procedure={procedure}", f"paths.runs={store}")
    if procedure == "report":
        assert metrics["runs"] == len(finished_runs(store))
    else:
        assert upstream(procedure).artifact(cfg).is_done()


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs_under_smoke(preset, store):
    overrides = ["debug=smoke", f"experiment={preset}", f"paths.runs={store}"]
    with as_main(*overrides) as cfg:
        overrides += STANDIN.get(cfg.dataset.name, [])
    if preset.startswith("kd_cifar100"):  # the networks' arithmetic, not their tracing, costs here
        overrides += ["train.batch_size=16", "dataset.image_shape=[16,16,3]", "dataset.train_limit=128",
                      "dataset.test_limit=64"]
    metrics, cfg = _run(*overrides)
    if cfg.procedure.name == "suite":
        assert list(metrics) == [row.label for row in cfg.suite.rows]
    else:
        assert upstream(cfg.procedure.name).artifact(cfg).is_done()
