"""Every experiment preset, every procedure and every search preset composes as
`python main.py ...` composes it, with and without `debug=smoke`, and passes `validate`;
a suite preset's rows compose and validate too. A typo in a preset fails here in
milliseconds. Running them is the end-to-end set's (tests/e2e/test_smoke.py).

This module imports no TensorFlow (nor anything that does, such as `procedures`)."""
from __future__ import annotations

import pytest
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from src.schema import validate
from src.sweep import row_overrides
from tests.conftest import ROOT, as_main

PRESETS = sorted(p.stem for p in (ROOT / "conf/experiment").glob("*.yaml"))
PROCEDURES = sorted(p.stem for p in (ROOT / "conf/procedure").glob("*.yaml"))
SEARCHES = sorted(p.stem for p in (ROOT / "conf/hparams_search").glob("*.yaml"))
DEBUG = pytest.mark.parametrize("debug", [[], ["debug=smoke"]], ids=["full", "smoke"])


def _suite_rows(cfg) -> list:
    """Each row's config, composed as procedure=suite composes it (src.sweep.row_overrides)."""
    command_line = list(HydraConfig.get().overrides.task)
    return [compose(config_name="config", overrides=row_overrides(command_line, [*row.overrides, "seed=0"]))
            for row in cfg.suite.rows]


def _assert_smoke(cfg) -> None:
    """debug=smoke applied: what the e2e smoke runs rely on to run in seconds."""
    assert cfg.train.epochs == 1 and cfg.train.max_steps == 4
    assert cfg.dataset.train_limit == 512 and cfg.dataset.test_limit == 256
    assert "kd-runner-smoke" in cfg.paths.runs


def test_every_conf_folder_has_options():
    assert PRESETS and PROCEDURES and SEARCHES


@DEBUG
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset, debug):
    with as_main(f"experiment={preset}", *debug) as cfg:
        validate(cfg)
        rows = _suite_rows(cfg) if cfg.procedure.name == "suite" else []
    if cfg.procedure.name == "suite":
        assert rows, f"{preset}: a suite preset lists its rows"
        assert len({row.label for row in cfg.suite.rows}) == len(rows), f"{preset}: row labels repeat"
    for row, row_cfg in zip(cfg.suite.rows, rows):
        assert row_cfg.procedure.name != "suite", f"{preset}: {row.label} nests a suite"
        validate(row_cfg)
        if debug:
            _assert_smoke(row_cfg)
    if debug:
        _assert_smoke(cfg)


@DEBUG
@pytest.mark.parametrize("procedure", PROCEDURES)
def test_every_procedure_composes_and_validates(procedure, debug):
    with as_main(f"procedure={procedure}", *debug) as cfg:
        assert cfg.procedure.name == procedure
        validate(cfg)
    if debug:
        _assert_smoke(cfg)


@DEBUG
@pytest.mark.parametrize("search", SEARCHES)
def test_every_search_preset_composes_and_searches_existing_keys(search, debug):
    with as_main(f"hparams_search={search}", *debug) as cfg:
        validate(cfg)
        params = HydraConfig.get().sweeper.params
    assert params, f"{search} searches nothing"
    for key in params:
        assert OmegaConf.select(cfg, key, default=KeyError) is not KeyError, f"{search} searches unknown {key}"
