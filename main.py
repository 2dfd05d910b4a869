"""Entry point: compose conf/ with Hydra, then run procedures.<procedure.name>.run(cfg).

    python main.py                                   # the main job
    python main.py procedure=train model=lenet dataset=fashion_mnist
    python main.py -m procedure=train model=lenet,lenet_half seed=0,1

No TensorFlow is imported here, so `--help` and `--cfg job` answer at once; the
procedure module imports it when it runs.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

from src import cli  # noqa: E402  (imports neither Hydra nor TensorFlow)

if __name__ == "__main__" and cli.wants_quick_help(sys.argv[1:]):
    cli.print_and_exit()

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src import runstore, tracking
from src.errors import ConfigError, RunnerError
from src.schema import optimized_metrics, register, validate

register()
log = logging.getLogger("main")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one procedure; return its headline metric for sweepers (optimized_metric)."""
    before = len(runstore.produced_runs())
    try:
        validate(cfg)
        runstore.check_writable(cfg.paths.runs)
        tracking.configure(cfg)
        procedure = importlib.import_module(f"procedures.{cfg.procedure.name}")
        metrics = procedure.run(cfg)
        write_job_result(cfg, metrics)
        return headline(cfg, metrics)
    except RunnerError as error:
        log.error("%s: %s", type(error).__name__, error)
        sys.exit(2)
    finally:  # the runs this job finished, even when a later one failed
        tracking.mirror(cfg, runstore.produced_runs()[before:], job_position())


def job_position() -> tracking.Job:
    """This job's output folder, and its sweep folder and number in a multirun."""
    if not HydraConfig.initialized():
        return tracking.Job()
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    return tracking.Job(output_dir=hydra_cfg.runtime.output_dir, sweep_dir=hydra_cfg.sweep.dir if multirun else None,
                        number=hydra_cfg.job.num if multirun else None)


def headline(cfg: DictConfig, metrics: dict) -> float | list[float] | None:
    """What a sweeper optimises (optimized_metric): one number, or one per metric of a list;
    None when none is asked for."""
    names = optimized_metrics(cfg.optimized_metric)
    missing = [name for name in names if name not in metrics]
    if missing:
        known = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise ConfigError(f"optimized_metric={missing[0]} is not a metric of procedure "
                          f"{cfg.procedure.name}; it reports: {known}")
    values = [float(metrics[name]) for name in names]
    if isinstance(cfg.optimized_metric, str):
        return values[0]
    return values or None


def write_job_result(cfg: DictConfig, metrics: dict) -> None:
    """<hydra output dir>/result.json: this job's scalar metrics and run folder, which
    `report report.sweep=<sweep dir>` reads to tabulate a whole sweep."""
    if not HydraConfig.initialized():
        return
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, bool)) or v is None}
    produced = runstore.produced_runs()
    runstore.write_json(os.path.join(HydraConfig.get().runtime.output_dir, "result.json"),
                        {"procedure": cfg.procedure.name, "metrics": scalars,
                         "run": str(produced[-1]) if produced else None})


if __name__ == "__main__":
    problem = cli.missing_plugin(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    main()
