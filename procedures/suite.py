"""suite: run a list of runs (a paper table) and print one table of their results.

    python main.py experiment=datafree_lenet     # a preset whose suite.rows list the runs

Each row is a set of command-line overrides composed on top of the current command line
(so `dataset=fashion_mnist seed=1` applies to every row), run in-process through the run
store (finished rows are reused), and reported by `suite.rows[i].metric`. With
`suite.reference`, a column gives each row's metric as a fraction of that row's. With
`suite.seeds=[0,1,2]` every row runs once per seed and the table gives the mean, the
standard deviation and the 95% Student-t interval over seeds (for the fraction: of the
per-seed ratios, a paired comparison). `suite.columns` adds further metrics of each row's
metrics.json (e.g. kd_gain, gap_recovered), each with its interval over the seeds.
"""
from __future__ import annotations

import logging

import numpy as np
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from procedures._upstream import upstream
from src.errors import ConfigError
from src.schema import validate
from src.stats import seed_interval
from src.sweep import row_overrides
from src.tables import format_table

log = logging.getLogger(__name__)


def _row_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The user's own overrides (the preset included), then the row's; the row's
    procedure= and seed= replace the suite's."""
    if not GlobalHydra.instance().is_initialized():
        raise ConfigError("procedure=suite runs through main.py (it composes each row with Hydra)")
    row = compose(config_name="config", overrides=row_overrides(list(HydraConfig.get().overrides.task), overrides))
    validate(row)
    return row


def run(cfg: DictConfig) -> dict:
    if not cfg.suite.rows:
        raise ConfigError("suite.rows is empty: use a preset such as experiment=datafree_lenet")
    seeds = list(cfg.suite.seeds) or [cfg.seed]
    results, extras = [], []
    for row in cfg.suite.rows:
        values, columns = [], {name: [] for name in cfg.suite.columns}
        for seed in seeds:
            row_cfg = _row_config(cfg, [*row.overrides, f"seed={seed}"])
            log.info("suite %s: %s, seed %d -> procedure=%s %s", cfg.suite.title, row.label, seed,
                     row_cfg.procedure.name, " ".join(row.overrides))
            metrics = upstream(row_cfg.procedure.name).run(row_cfg)
            values.append(float(metrics[row.metric]))
            for name in columns:
                columns[name].append(metrics.get(name))
        results.append((row.label, values))
        extras.append(columns)
    print(format_suite(cfg.suite.title, results, cfg.suite.reference, seeds, extras), flush=True)
    return {label: float(np.mean(values)) for label, values in results}


def format_suite(title: str, results: list[tuple[str, list[float]]], reference: str | None, seeds: list[int],
                 extras: list[dict[str, list]] | None = None) -> str:
    """The suite's table: each row's metric in percent (mean over seeds, with its 95%
    interval when there are several), its fraction of the reference row's, paired by
    seed (the interval of the per-seed ratios), and the `extras` columns (per row, a
    metric's per-seed values; blank where a row's runs do not report it)."""
    ref = dict(results).get(reference) if reference else None
    rows = []
    for (label, values), columns in zip(results, extras or [{}] * len(results)):
        row = {"row": label, **_percent("accuracy", values, len(seeds))}
        if ref:
            row.update(_fraction(f"fraction of {reference}", [v / r for v, r in zip(values, ref)], len(seeds)))
        for name, found in columns.items():
            row[name] = _signed(found) if found and None not in found else ""
        rows.append(row)
    heading = f"{title} ({len(seeds)} seeds: {', '.join(map(str, seeds))})" if len(seeds) > 1 else title
    return heading + "\n" + format_table(rows).rstrip()


def _percent(name: str, values: list[float], seeds: int) -> dict:
    i = seed_interval(values)
    out = {name: f"{100 * i['mean']:.2f}%"}
    if seeds > 1:
        out.update({"std": f"{100 * i['std']:.2f}", "95% CI": f"[{100 * i['low']:.2f}, {100 * i['high']:.2f}]"})
    return out


def _signed(values: list[float]) -> str:
    """mean, with its 95% interval over several seeds: "+m.mmmm [+l.llll, +h.hhhh]" (one seed: the mean)."""
    i = seed_interval([float(v) for v in values])
    return f"{i['mean']:+.4f}" + (f" [{i['low']:+.4f}, {i['high']:+.4f}]" if len(values) > 1 else "")


def _fraction(name: str, values: list[float], seeds: int) -> dict:
    i = seed_interval(values)
    out = {name: f"{i['mean']:.3f}"}
    if seeds > 1:
        out[f"{name} 95% CI"] = f"[{i['low']:.3f}, {i['high']:.3f}]"
    return out
