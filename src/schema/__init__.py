"""The typed configuration, registered in Hydra's ConfigStore, and its checks.

`conf/config.yaml` extends `base_config`, so every YAML file and command-line override
is merged onto these dataclasses: an unknown key or a value of the wrong type fails at
compose time with Hydra's own message, before any TensorFlow is imported. `validate`
then runs each section's check() for what a type cannot express (epochs=0, ...).

One module per section, each holding its dataclasses, the lists of allowed choices
(imported from here by the code that implements them) and its check():

    core      procedure, model, dataset, train, suite, evaluate, report, paths, logger
    kd        teacher, distill
    datafree  stats, optimize, generator
    hns       hns
    tree      tree
    deploy    deploy (and distill.deploy, distill.quantize)

The schema is flat over all procedures: every run's config carries every section, even
those its procedure ignores, so that an upstream config can be derived from any config
by changing a few keys (procedures/_upstream.upstream_config).

This package must stay free of TensorFlow: `main.py --help` imports it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from src.schema import core, datafree, deploy, hns, kd, tree
from src.schema.core import (DatasetConfig, EvaluateConfig, LoggerConfig, ModelConfig, PathsConfig,
                             ProcedureConfig, ReportConfig, SuiteConfig, TrainConfig, jit_setting, require,
                             validation_twin)
from src.schema.datafree import GeneratorConfig, OptimizeConfig, StatsConfig
from src.schema.deploy import DeployConfig
from src.schema.hns import HnsConfig
from src.schema.kd import DistillConfig, TeacherConfig
from src.schema.tree import TreeConfig

__all__ = ["Config", "jit_setting", "optimized_metrics", "register", "validate"]


@dataclass
class Config:
    procedure: ProcedureConfig = field(default_factory=ProcedureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    student: ModelConfig = field(default_factory=lambda: ModelConfig(name="lenet_half"))
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    hns: HnsConfig = field(default_factory=HnsConfig)
    tree: TreeConfig = field(default_factory=TreeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    force: bool = False
    auto_prereqs: bool = True
    deterministic: bool = False
    jit_compile: str = "auto"  # auto = XLA on GPU only
    precision: str = "float32"
    augment: str = "none"  # training-time augmentation inside the compiled step (src/augment.py)
    mixup_alpha: float = 1.0  # augment=*mixup: the blend weight ~ Beta(alpha, alpha) (Zhang et al.'s CIFAR value)
    mixup_per: str = "example"  # augment=*mixup: example = a weight and a random partner each (Zhang et al.);
    # batch = one weight, the batch rolled by one as partners (Beyer et al.)
    distribute: str = "none"  # mirrored = all local GPUs; multi_worker = TF_CONFIG or Slurm
    logical_cpus: int = 0  # split the CPU into this many devices (try distribute=mirrored without GPUs)
    optimized_metric: Any = None  # a metric name, or a list of them (one per Optuna direction)
    tags: list[str] = field(default_factory=list)


SECTIONS = (core, kd, datafree, hns, tree, deploy)
# Figures measured on the test split that a sweeper must not choose by (besides test_*),
# each section naming its own; the validation twin of each is val_ + its name.
TEST_FIGURES = tuple(name for section in SECTIONS for name in getattr(section, "TEST_FIGURES", ()))


def validate(cfg) -> None:
    """Raise ConfigError naming the first setting that cannot work, section by section."""
    for section in SECTIONS:
        section.check(cfg)
    for metric in optimized_metrics(cfg.optimized_metric):
        twin = validation_twin(metric, TEST_FIGURES)
        require(twin is None, f"optimized_metric={metric} is measured on the test split, which only reports "
                              f"the final figure: optimise optimized_metric={twin} (the validation split) instead")


def optimized_metrics(value) -> list[str]:
    """optimized_metric as a list of names: [] for null, [name] for one, the list for several."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    require(names is not None and len(names) > 0 and all(isinstance(n, str) and n for n in names),
            f"optimized_metric={value}: a metric name (e.g. val_accuracy) or a list of them "
            "(e.g. [val_accuracy,student_params], one per hydra.sweeper.direction)")
    require(len(set(names)) == len(names), f"optimized_metric={list(names)}: a metric is named twice")
    return [str(n) for n in names]


def register() -> None:
    """Put the schema in Hydra's ConfigStore, and every `conf/model` option into the
    `student` group too, so a model is configured once and usable in both roles (idempotent)."""
    from pathlib import Path

    from hydra.core.config_store import ConfigStore  # here, so --help can read the schema without Hydra
    from omegaconf import OmegaConf
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    for option in sorted((Path(__file__).resolve().parents[2] / "conf" / "model").glob("*.yaml")):
        store.store(group="student", name=option.stem, node=OmegaConf.load(option))
