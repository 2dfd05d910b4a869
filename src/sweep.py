"""Reading a Hydra sweep folder back: one row per job, the swept keys as columns, the
mean, spread and 95% interval over seeds of each setting when seeds were swept, and a
plot of the headline metric against each swept key (`report report.sweep=<folder>`).

Each job folder holds Hydra's `.hydra/overrides.yaml` (what the job was given) and the
`result.json` that main.py writes when the job finishes; a job without it failed or is
still running, and shows as such.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf

from src.errors import ConfigError
from src.runstore import read_json
from src.schema import optimized_metrics
from src.stats import excludes_zero, has_outlier, is_paired, metric_interval
from src.tables import is_number, seed_values


def job_folders(sweep: Path) -> list[Path]:
    """Job folders of a sweep, in job order (Hydra names them 0, 1, ...; Optuna too)."""
    sweep = Path(sweep)
    if not sweep.is_dir():
        raise ConfigError(f"report.sweep={sweep}: no such folder (a sweep folder looks like multirun/<date>/<time>)")
    jobs = [p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml")]
    if not jobs:
        raise ConfigError(f"report.sweep={sweep}: no job folders with .hydra/overrides.yaml in it; "
                          f"give the folder Hydra printed for the multirun")
    return sorted(jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def _overrides(job: Path) -> dict[str, str]:
    pairs = OmegaConf.load(job / ".hydra" / "overrides.yaml")
    return dict(item.lstrip("+~").split("=", 1) for item in pairs if "=" in item)


def collect(sweep: Path, headline_of: Callable[[str], str | None] = lambda procedure: None
            ) -> tuple[list[dict], list[str], list[str]]:
    """(rows, swept keys, headline metrics). Swept keys: those whose value differs between
    jobs, plus the sweeper's own parameters (an Optuna key may repeat a value). The
    headlines are the sweep's optimized_metric (every metric of a list, the first leading),
    else [headline_of(procedure)] (what the procedure declares), else [test_accuracy]."""
    jobs = job_folders(sweep)
    given = [_overrides(job) for job in jobs]
    keys = list(dict.fromkeys(k for g in given for k in g))
    sampled = set(_sweeper_params(jobs[0]))
    swept = [k for k in keys if k in sampled or len({g.get(k) for g in given}) > 1]
    rows, headlines = [], []
    for job, overrides in zip(jobs, given):
        row = {"job": job.name, **{k: overrides.get(k) for k in swept}}
        result_file = job / "result.json"
        if result_file.is_file():
            result = read_json(result_file)
            row["status"] = "done"
            row["procedure"] = result["procedure"]
            row.update(result["metrics"])
            row["run"] = result.get("run")
            config = OmegaConf.load(job / ".hydra" / "config.yaml")
            headlines = headlines or optimized_metrics(config.get("optimized_metric")) or [_default_headline(
                headline_of(result["procedure"]), result["metrics"])]
        else:
            row["status"] = "failed or running"
        rows.append(row)
    return rows, swept, [h for h in headlines if h]


def over_seeds(rows: list[dict], swept: list[str], metrics: list[str], headline: str) -> list[dict]:
    """When `seed` is swept: one row per setting of the other swept keys, over its finished
    seeds. Every numeric metric gets its mean; the headline and the paired gains (every
    `*_gain`, src.stats.is_paired) also get the standard deviation and the 95% interval
    (src.stats.metric_interval: inside the metric's bounds), and a gain says whether its
    interval excludes 0. A flag (e.g. hns_train's `collapsed`) counts the seeds it was true
    for. Empty when no seed was swept. See _summarise for missing values and outliers."""
    if "seed" not in swept:
        return []
    keys = [k for k in swept if k != "seed"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] == "done":
            groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    summary = []
    for setting, members in groups.items():
        out = {**{k: parse_value(v) for k, v in zip(keys, setting)}, "seeds": len(members)}
        for name in metrics:
            out.update(_summarise(name, [m.get(name) for m in members], with_interval=name == headline or is_paired(name)))
        summary.append(out)
    return summary


def _summarise(name: str, values: list, with_interval: bool) -> dict:
    """One metric over the seeds of a setting. A seed without the metric (None) does not
    hide the others: the summary is over the seeds that have it, and `<name> missing`
    counts the rest. When one seed stands apart (src.stats.has_outlier), `<name> seeds`
    lists the per-seed values beside the mean."""
    present = [v for v in values if v is not None]
    missing = {f"{name} missing": len(values) - len(present)} if len(present) < len(values) else {}
    if present and all(isinstance(v, bool) for v in present):
        return {f"{name} (seeds)": sum(present), **missing}
    if not present or not all(is_number(v) for v in present):
        return {}
    interval = metric_interval(name, present)
    out = {f"{name} mean": interval["mean"]}
    if with_interval:
        out.update({f"{name} std": interval["std"], f"{name} ci95 low": interval["low"],
                    f"{name} ci95 high": interval["high"]})
    if with_interval and is_paired(name):
        verdict = excludes_zero(interval)
        out[f"{name} vs 0"] = {True: "excludes 0", False: "includes 0", None: "one seed"}[verdict]
    if has_outlier(present):
        out[f"{name} seeds"] = seed_values(present)
    return {**out, **missing}


def _sweeper_params(job: Path) -> list[str]:
    """Keys a sweeper plugin samples (hydra.sweeper.params, e.g. Optuna's search space)."""
    path = job / ".hydra" / "hydra.yaml"
    params = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper.params", default=None) if path.is_file() else None
    return list(params or [])


def _default_headline(declared: str | None, metrics: dict) -> str | None:
    for name in (declared, "test_accuracy"):
        if name in metrics:
            return name
    return next(iter(metrics), None)


def row_overrides(command_line: list[str], row: list[str]) -> list[str]:
    """The overrides that compose one row of a suite: the command line's (a preset
    included), less procedure= and every key the row sets, then the row's."""
    replaced = tuple(o.split("=", 1)[0] + "=" for o in row if "=" in o)
    return [o for o in command_line if not o.startswith(("procedure=", *replaced))] + list(row)


def parse_value(text):
    """An override's value as int or float when it is one (so tables round it), else as given."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            pass
    return text


def plot(rows: list[dict], swept: list[str], metric: str, path: Path) -> Path | None:
    """One panel per swept key: the metric of every finished job against the key's value
    (numeric keys on a numeric axis, others as categories)."""
    from src.plots import plt, save_figure
    done = [r for r in rows if r.get(metric) is not None]
    if not done or not swept:
        return None
    figure, axes = plt.subplots(1, len(swept), figsize=(4 * len(swept), 3.4), squeeze=False, sharey=True,
                                constrained_layout=True)
    for axis, key in zip(axes[0], swept):
        values = [r[key] for r in done]
        numbers = [parse_value(v) for v in values]
        if all(isinstance(n, (int, float)) for n in numbers):
            axis.scatter(numbers, [r[metric] for r in done])
            if len(set(numbers)) > 2 and min(numbers) > 0 and max(numbers) / min(numbers) >= 16:
                axis.set_xscale("log", base=2)
        else:
            categories = list(dict.fromkeys(values))
            axis.scatter([categories.index(v) for v in values], [r[metric] for r in done])
            axis.set_xticks(range(len(categories)), categories, rotation=30)
        axis.set_xlabel(key)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric)
    figure.suptitle(f"{metric} over {len(done)} jobs")
    return save_figure(figure, path)
