"""report: one table of every finished run in the store (nothing is trained).

    python main.py procedure=report
    python main.py procedure=report report.procedure=distill report.format=csv
    python main.py procedure=report report.dataset=fashion_mnist report.output=results.md
    python main.py procedure=report report.sweep=multirun/2026-11-22/10-00-00-000000
"""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src import sweep
from src.runstore import atomic_write, finished_runs, read_json
from src.tables import format_table

log = logging.getLogger(__name__)

# The settings and metrics each procedure's rows show, in column order. A procedure not
# listed here shows every scalar metric it wrote.
SETTINGS = {
    "train": ["model.name", "train.epochs", "train.lr", "train.batch_size"],
    "evaluate": ["model.name", "evaluate.path"],
    "distill": ["model.name", "student.name", "distill.temperature", "distill.ce_weight", "distill.kd_weight",
                "distill.data"],
    "hns_train": ["hns.mode", "hns.hider", "hns.seeker", "hns.stochastic", "hns.estimator", "hns.rate", "hns.alpha",
                  "hns.init", "train.epochs", "train.batch_size"],
    "hns_seeker": ["hns.seeker", "train.epochs", "train.batch_size"],
    "hns_hider": ["hns.hider", "hns.mask_channels", "train.epochs"],
    "tree_distill": ["model.name", "tree.depth", "tree.labels", "tree.temperature"],
}
METRICS = {
    "train": ["val_accuracy", "test_accuracy", "epochs", "train_seconds"],
    "evaluate": ["test_accuracy", "test_loss"],
    "distill": ["val_accuracy", "val_kd_gain", "test_accuracy", "teacher_test_accuracy", "scratch_test_accuracy",
                "kd_gain", "agreement", "gap_recovered"],
    "hns_train": ["val_fii", "fii", "test_accuracy", "baseline", "fidelity", "interpretability", "fir", "collapsed",
                  "mask_only_accuracy", "chance_accuracy", "support_mask_only_accuracy", "swap_mask_class",
                  "swap_image_class", "support_swap_mask_class", "support_swap_image_class", "evalx_fii",
                  "evalx_accuracy", "evalx_fidelity", "selected", "final_fii", "test_accuracy_sampled", "interpretability_sampled",
                  "train_hidden", "final_alpha", "epochs"],
    "hns_seeker": ["val_accuracy", "test_accuracy", "epochs", "train_seconds"],
    "hns_hider": ["test_bce", "test_mse", "epochs"],
    "tree_distill": ["val_accuracy", "val_distill_gain", "test_accuracy", "hard_test_accuracy", "sklearn_test_accuracy", "teacher_test_accuracy",
                     "distill_gain", "agreement", "seconds_per_epoch"],
}


def collect(cfg: DictConfig) -> list[dict]:
    """One dict per finished run that passes the report.* filters."""
    wanted = cfg.report
    rows = []
    for folder in finished_runs(cfg.paths.runs):
        config = OmegaConf.load(folder / "config.yaml")
        procedure = folder.parent.name
        if wanted.procedure and procedure != wanted.procedure:
            continue
        if wanted.dataset and config.dataset.name != wanted.dataset:
            continue
        if wanted.model and config.model.name != wanted.model:
            continue
        metrics = read_json(folder / "metrics.json")
        row = {"procedure": procedure, "dataset": config.dataset.name, "seed": config.seed}
        for key in SETTINGS.get(procedure, ["model.name"]):
            row[key] = OmegaConf.select(config, key)
        names = METRICS.get(procedure) or [k for k, v in metrics.items() if isinstance(v, (int, float))]
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
    rows, swept, headline = sweep.collect(folder)
    table = format_table([_sweep_columns(row, swept, headline) for row in rows], cfg.report.format)
    summary = sweep.over_seeds(rows, swept, _metric_names(rows, headline), headline) if headline else []
    if summary:  # a second table: the mean over seeds of every setting
        table += "\n" + format_table(summary, cfg.report.format)
    _emit(cfg, table)
    figure = sweep.plot(rows, swept, headline, folder / f"sweep_{headline}.png") if headline else None
    if figure:
        log.info("%s against %s: %s", headline, ", ".join(swept), figure)
    finished = [r for r in rows if r["status"] == "done"]
    return {"runs": len(finished), "jobs": len(rows), "swept": swept, "headline": headline,
            "figure": str(figure) if figure else None}


def _metric_names(rows: list[dict], headline: str | None) -> list[str]:
    """The metrics a sweep's rows show: its procedure's usual ones, headline first."""
    done = next((r for r in rows if r.get("procedure")), {})
    names = METRICS.get(done.get("procedure"), [k for k in done if k not in ("job", "status", "run", "procedure")])
    return list(dict.fromkeys([headline, *names] if headline else names))


def _sweep_columns(row: dict, swept: list[str], headline: str | None) -> dict:
    """job, swept keys, status, then the procedure's usual metrics (headline first)."""
    names = _metric_names([row], headline)
    fixed = {"job": row["job"], **{k: sweep.parse_value(row[k]) for k in swept}, "status": row["status"]}
    return {**fixed, **{n: row.get(n) for n in names if n not in fixed}, "run": row.get("run")}


def _emit(cfg: DictConfig, table: str) -> None:
    print(table, end="", flush=True)
    if cfg.report.output:
        atomic_write(Path(cfg.report.output), lambda tmp: tmp.write_text(table))
        log.info("report written to %s", cfg.report.output)
