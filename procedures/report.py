"""report: one table of every finished run in the store (nothing is trained).

    python main.py procedure=report
    python main.py procedure=report report.procedure=distill report.format=csv
    python main.py procedure=report report.dataset=fashion_mnist report.output=results.md
    python main.py procedure=report report.sweep=multirun/2026-11-22/10-00-00-000000
"""
from __future__ import annotations

import contextlib

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from procedures._inputs import network_name
from procedures._upstream import upstream
from src import sweep
from src.runstore import atomic_write, finished_runs, read_json
from src.tables import format_table

log = logging.getLogger(__name__)


def columns(procedure: str, folder_name: str | None = None) -> dict:
    """The settings and metrics a procedure's rows show, in column order, and the headline
    of its sweeps when it is not test_accuracy, as the procedure module declares them
    (REPORT, keyed by the run-store folder it writes: hns_train also writes its stages').
    Empty when it declares none for that folder: every scalar then."""
    if not (Path(__file__).parent / f"{procedure}.py").exists():
        return {}
    return getattr(upstream(procedure), "REPORT", {}).get(folder_name or procedure, {})


def _setting(config: DictConfig, key: str):
    """A run's setting; a network's name as its summaries show it (the keras.applications
    architecture, the factory's function, the file's name) rather than keras_app or factory."""
    section, _, field = key.partition(".")
    if field == "name" and section in ("model", "student") and OmegaConf.select(config, section) is not None:
        with contextlib.suppress(KeyError, AttributeError):  # a run recorded before a kind existed: its name
            return network_name(OmegaConf.select(config, section))
    return OmegaConf.select(config, key)


def collect(cfg: DictConfig) -> list[dict]:
    """One dict per finished run that passes the report.* filters."""
    wanted = cfg.report
    rows = []
    for folder in finished_runs(cfg.paths.runs):
        config = OmegaConf.load(folder / "config.yaml")
        procedure = folder.parent.name  # the folder: a procedure, or a stage of one (hns_seeker)
        if wanted.procedure and procedure != wanted.procedure:
            continue
        if wanted.dataset and config.dataset.name != wanted.dataset:
            continue
        if wanted.model and config.model.name != wanted.model:
            continue
        metrics = read_json(folder / "metrics.json")
        row = {"procedure": procedure, "dataset": config.dataset.name, "seed": config.seed}
        declared = columns(config.procedure.name, procedure)
        for key in declared.get("settings", ["model.name"]):
            row[key] = _setting(config, key)
        names = declared.get("metrics") or [k for k, v in metrics.items() if isinstance(v, (int, float))]
        row.update({name: metrics.get(name) for name in names})
        row["run"] = str(folder)
        rows.append(row)
    return rows


def run(cfg: DictConfig) -> dict:
    if cfg.report.sweep:
        return run_sweep(cfg)
    rows = collect(cfg)
    if not rows:
        log.warning("no finished runs under %s match the filters: run a procedure first, "
                    "or point paths.runs at another store", Path(cfg.paths.runs).resolve())
        return {"runs": 0}
    _emit(cfg, format_table(rows, cfg.report.format))
    return {"runs": len(rows)}


def run_sweep(cfg: DictConfig) -> dict:
    """One row per job of a Hydra sweep folder, and the headline metric plotted against
    each swept key (<sweep>/sweep_<metric>.png)."""
    folder = Path(cfg.report.sweep)
    rows, swept, headlines = sweep.collect(folder, lambda procedure: columns(procedure).get("headline"))
    headline = headlines[0] if headlines else None
    table = format_table([_sweep_columns(row, swept, headlines) for row in rows], cfg.report.format)
    summary = sweep.over_seeds(rows, swept, _metric_names(rows, headlines), headline) if headline else []
    if summary:  # a second table: the mean over seeds of every setting
        table += "\n" + format_table(summary, cfg.report.format)
    _emit(cfg, table)
    figure = sweep.plot(rows, swept, headline, folder / f"sweep_{headline}.png") if headline else None
    if figure:
        log.info("%s against %s: %s", headline, ", ".join(swept), figure)
    finished = [r for r in rows if r["status"] == "done"]
    return {"runs": len(finished), "jobs": len(rows), "swept": swept, "headline": headline,
            "figure": str(figure) if figure else None}


def _metric_names(rows: list[dict], headlines: list[str]) -> list[str]:
    """The metrics a sweep's rows show: the headlines (every optimized metric), then its
    procedure's usual ones."""
    done = next((r for r in rows if r.get("procedure")), {})
    names = columns(done["procedure"]).get("metrics") if done else None
    names = names or [k for k in done if k not in ("job", "status", "run", "procedure")]
    return list(dict.fromkeys([*headlines, *names]))


def _sweep_columns(row: dict, swept: list[str], headlines: list[str]) -> dict:
    """job, swept keys, status, then the headlines and the procedure's usual metrics."""
    names = _metric_names([row], headlines)
    fixed = {"job": row["job"], **{k: sweep.parse_value(row[k]) for k in swept}, "status": row["status"]}
    return {**fixed, **{n: row.get(n) for n in names if n not in fixed}, "run": row.get("run")}


def _emit(cfg: DictConfig, table: str) -> None:
    print(table, end="", flush=True)
    if cfg.report.output:
        atomic_write(Path(cfg.report.output), lambda tmp: tmp.write_text(table))
        log.info("report written to %s", cfg.report.output)
