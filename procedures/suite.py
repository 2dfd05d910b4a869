"""suite: run a list of runs (a paper table) and print one table of their results.

    python main.py experiment=datafree_lenet     # a preset whose suite.rows list the runs

Each row is a set of command-line overrides composed on top of the current command line
(so `dataset=fashion_mnist seed=1` applies to every row), run in-process through the run
store (finished rows are reused), and reported by `suite.rows[i].metric`. With
`suite.reference`, a column gives each row's metric as a fraction of that row's. With
`suite.seeds=[0,1,2]` every row runs once per seed and the table gives the mean, the
standard deviation and the 95% interval over seeds, inside the metric's bounds
(src.stats; for the fraction: of the per-seed ratios, a paired comparison), and the
per-seed values when one seed stands apart. `suite.columns` adds further metrics of each
row's metrics.json (e.g. kd_gain, gap_recovered), each with its interval over the seeds
that report it and the seeds that do not.
"""
from __future__ import annotations

import logging
from fnmatch import fnmatchcase

import numpy as np
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from procedures._upstream import upstream
from src.deploy import frontier
from src.errors import ConfigError
from src.runstore import locate, produced_runs
from src.schema import validate
from src.stats import RATIO, bounds_of, has_outlier, metric_interval, seed_interval
from src.sweep import row_overrides
from src.tables import format_table, seed_values

log = logging.getLogger(__name__)

# Costs a deploy row reports (docs/deploy.md): shown unsigned, in significant digits.
COSTS = ("*_ms", "*_bytes", "*_macs", "*_params")
# What a seed's None means in an extra column, where it is not "not reported".
ABSENT = {"gap_recovered": "no gap"}


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
    results, extras, collected = [], [], []
    for row in cfg.suite.rows:
        values, columns = [], {name: [] for name in cfg.suite.columns}
        collected.append((row.label, []))
        for seed in seeds:
            row_cfg = _row_config(cfg, [*row.overrides, f"seed={seed}"])
            log.info("suite %s: %s, seed %d -> procedure=%s %s", cfg.suite.title, row.label, seed,
                     row_cfg.procedure.name, " ".join(row.overrides))
            metrics = upstream(row_cfg.procedure.name).run(row_cfg)
            collected[-1][1].append({**metrics, "run": str(produced_runs()[-1])})
            values.append(float(metrics[row.metric]))
            for name in columns:
                columns[name].append(metrics.get(name))
        results.append((row.label, values))
        extras.append(columns)
    print(format_suite(cfg.suite.title, results, cfg.suite.reference, seeds, extras,
                       [row.metric for row in cfg.suite.rows]), flush=True)
    if cfg.suite.figure == "frontier":
        _frontier(cfg, collected)
    return {label: float(np.mean(values)) for label, values in results}


def _frontier(cfg: DictConfig, collected: list[tuple[str, list[dict]]]) -> None:
    """suite.figure=frontier: the accuracy-cost figure of the suite's deploy rows and its
    numbers, in a run folder of their own (remade each time: it only reads the rows)."""
    found = frontier.points(collected)
    if not found:
        raise ConfigError("suite.figure=frontier draws procedure=deploy rows; this suite has none")
    runs = [[label, [m["run"] for m in metrics]] for label, metrics in collected]
    out = locate(cfg.paths.runs, cfg.dataset.name, "frontier", "frontier", {"title": cfg.suite.title, "rows": runs})
    with out.lock():
        out.start(cfg, force=True)
        out.write("frontier.csv", lambda tmp: tmp.write_text(frontier.table_csv(found)))
        frontier.plot(found, out.file("frontier.png"), cfg.suite.title)
        out.finish({"points": found, "rows": runs})
    print(f"frontier: {out.file('frontier.png')}", flush=True)


def format_suite(title: str, results: list[tuple[str, list[float]]], reference: str | None, seeds: list[int],
                 extras: list[dict[str, list]] | None = None, metrics: list[str] | None = None) -> str:
    """The suite's table: each row's metric in percent (mean over seeds, with its 95%
    interval when there are several; `metrics` names each row's metric, test_accuracy by
    default, for the bounds of its interval), its fraction of the reference row's, paired
    by seed (the interval of the per-seed ratios), and the `extras` columns (per row, a
    metric's per-seed values; blank where a row's runs do not report it). An interval is
    followed by the per-seed values when one seed stands apart (src.stats.has_outlier)."""
    ref = dict(results).get(reference) if reference else None
    rows = []
    metrics = metrics or ["test_accuracy"] * len(results)
    for (label, values), metric, columns in zip(results, metrics, extras or [{}] * len(results)):
        row = {"row": label, **_percent("accuracy", values, len(seeds), bounds_of(metric))}
        if ref:
            row.update(_fraction(f"fraction of {reference}", [v / r for v, r in zip(values, ref)], len(seeds)))
        for name, found in columns.items():
            row[name] = _column(name, found, seeds)
        rows.append(row)
    heading = f"{title} ({len(seeds)} seeds: {', '.join(map(str, seeds))})" if len(seeds) > 1 else title
    return heading + "\n" + format_table(rows).rstrip()


def _percent(name: str, values: list[float], seeds: int, bounds: tuple[float, float] | None) -> dict:
    i = seed_interval(values, bounds=bounds)
    out = {name: f"{100 * i['mean']:.2f}%"}
    if seeds > 1:
        interval = f"[{100 * i['low']:.2f}, {100 * i['high']:.2f}]"
        out.update({"std": f"{100 * i['std']:.2f}", "95% CI": interval + _outliers([100 * v for v in values], ".2f")})
    return out


def _column(name: str, found: list, seeds: list[int]) -> str:
    """An extra column's cell: the mean [95% interval] over the seeds that report the
    metric, and which seeds do not (ABSENT says why, e.g. gap_recovered's "no gap in seed
    3"); blank when no seed reports it."""
    present = [float(v) for v in found if v is not None]
    if not present:
        return ""
    absent = [str(seed) for seed, v in zip(seeds, found) if v is None]
    why = f" ({ABSENT.get(name, 'not reported')} in seed{'s' * (len(absent) > 1)} {', '.join(absent)})" if absent else ""
    return _signed(name, present) + why


def _signed(name: str, values: list[float]) -> str:
    """mean, with its 95% interval over several seeds: "+m.mmmm [+l.llll, +h.hhhh]" (one seed:
    the mean), unsigned for what cannot be negative (an accuracy-like proportion, a ratio); a
    cost (COSTS: milliseconds, bytes, MACs, parameters) in 4 significant digits, unsigned."""
    i = metric_interval(name, values)
    bounds = bounds_of(name)
    spec = ".4g" if any(fnmatchcase(name, pattern) for pattern in COSTS) else \
        ".4f" if bounds is not None and bounds[0] >= 0 else "+.4f"
    if len(values) < 2:
        return f"{i['mean']:{spec}}"
    return f"{i['mean']:{spec}} [{i['low']:{spec}}, {i['high']:{spec}}]" + _outliers(values, spec)


def _fraction(name: str, values: list[float], seeds: int) -> dict:
    i = seed_interval(values, bounds=RATIO)
    out = {name: f"{i['mean']:.3f}"}
    if seeds > 1:
        out[f"{name} 95% CI"] = f"[{i['low']:.3f}, {i['high']:.3f}]" + _outliers(values, ".3f")
    return out


def _outliers(values: list[float], spec: str) -> str:
    """The per-seed values, as ' (seeds: a b c)', when one seed stands apart; else nothing."""
    return f" (seeds: {seed_values(values, spec)})" if has_outlier(values) else ""
