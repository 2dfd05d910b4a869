"""suite: run a list of runs (a paper table) and print one table of their results.

    python main.py experiment=datafree_lenet     # a preset whose suite.rows list the runs

Each row is a set of command-line overrides composed on top of the current command line
(so `dataset=fashion_mnist seed=1` applies to every row), run in-process through the run
store (finished rows are reused), and reported by `suite.rows[i].metric`. With
`suite.reference`, a column gives each row's metric as a fraction of that row's.
"""
from __future__ import annotations

import importlib
import logging

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.errors import ConfigError
from src.schema import validate
from src.tables import format_table

log = logging.getLogger(__name__)


def _row_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The user's own overrides (the preset included), then the row's; the row's
    procedure= replaces the suite's."""
    if not GlobalHydra.instance().is_initialized():
        raise ConfigError("procedure=suite runs through main.py (it composes each row with Hydra)")
    base = [o for o in HydraConfig.get().overrides.task if not o.startswith("procedure=")]
    row = compose(config_name="config", overrides=[*base, *overrides])
    validate(row)
    return row


def run(cfg: DictConfig) -> dict:
    if not cfg.suite.rows:
        raise ConfigError("suite.rows is empty: use a preset such as experiment=datafree_lenet")
    results = []
    for row in cfg.suite.rows:
        row_cfg = _row_config(cfg, list(row.overrides))
        log.info("suite %s: %s -> procedure=%s %s", cfg.suite.title, row.label, row_cfg.procedure.name,
                 " ".join(row.overrides))
        metrics = importlib.import_module(f"procedures.{row_cfg.procedure.name}").run(row_cfg)
        results.append((row.label, float(metrics[row.metric])))
    table = format_suite(cfg.suite.title, results, cfg.suite.reference)
    print(table, flush=True)
    return {label: value for label, value in results}


def format_suite(title: str, results: list[tuple[str, float]], reference: str | None) -> str:
    """The suite's table: each row's metric in percent, and its fraction of the reference row's."""
    ref = dict(results).get(reference) if reference else None
    rows = [{"row": label, "accuracy": f"{100 * value:.2f}%",
             **({f"fraction of {reference}": f"{value / ref:.3f}"} if ref else {})} for label, value in results]
    return title + "\n" + format_table(rows).rstrip()
