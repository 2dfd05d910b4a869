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

import hydra
from omegaconf import DictConfig

from src.errors import RunnerError
from src.schema import register
from src.validate import validate

register()
log = logging.getLogger("main")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one procedure; return its headline metric for sweepers (optimized_metric)."""
    try:
        validate(cfg)
        procedure = importlib.import_module(f"procedures.{cfg.procedure.name}")
        metrics = procedure.run(cfg)
    except RunnerError as error:
        log.error("%s: %s", type(error).__name__, error)
        sys.exit(2)
    if cfg.optimized_metric:
        return float(metrics[cfg.optimized_metric])
    return None


if __name__ == "__main__":
    main()
