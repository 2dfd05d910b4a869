"""Typed schema of the whole configuration, registered in Hydra's ConfigStore.

`conf/config.yaml` extends `base_config`, so every YAML file and command-line override
is merged onto these dataclasses: an unknown key or a value of the wrong type fails at
compose time with Hydra's own message, before any TensorFlow is imported. Range checks
that a type cannot express live in `src/validate.py`.

This module must stay free of TensorFlow: `main.py --help` imports it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from src.schema_hns import HnsConfig
from src.schema_tree import TreeConfig


@dataclass
class ProcedureConfig:
    name: str = "train"


DROPOUT_KEYS = ("dropout", "input_dropout")  # ModelConfig's optional rate overrides


@dataclass
class ModelConfig:
    name: str = "lenet"
    init: str = "default"  # default (Keras) | paper (the seeds' initialisation)
    dropout: Optional[float] = None  # hinton MLPs: hidden-layer dropout rate; null = the architecture's own
    input_dropout: Optional[float] = None  # hinton MLPs: dropout on the input pixels; null = the architecture's own


@dataclass
class DatasetConfig:
    name: str = "mnist_sample"
    path: Optional[str] = None  # a file or folder to load instead of the default source
    split_seed: int = 0  # fixed across run seeds so every run shares one test split
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    num_samples: int = 2000  # synthetic only
    image_shape: list[int] = field(default_factory=lambda: [28, 28, 1])  # synthetic only
    num_classes: int = 10  # synthetic only


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64  # the seeds' batch size
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd | rmsprop | adamw
    lr_schedule: str = "cosine"  # cosine (decay to 0 over the run) | constant
    val_split: float = 0.1
    early_stopping: int = 0  # patience in epochs on val_loss; 0 = off
    max_steps: Optional[int] = None  # stop each epoch after this many steps (smoke runs)


@dataclass
class TeacherConfig:
    path: Optional[str] = None  # a run folder or any .keras file; else the run store
    epochs: Optional[int] = None  # train the teacher this long (null = train.epochs, like the student)


@dataclass
class DistillConfig:
    temperature: float = 4.0
    ce_weight: float = 0.1  # hard-label cross-entropy at T=1
    kd_weight: float = 0.9  # soft-target term at T
    t2_scale: bool = True  # multiply the soft term by T^2 (Hinton et al. 2015)
    soft_loss: str = "kl"  # kl | ce
    data: str = "dataset"  # dataset | reconstructed
    objective: Optional[str] = None  # which reconstruction, with data=reconstructed
    data_path: Optional[str] = None  # a data.npz (or its run folder) to distill on instead
    cache_teacher: bool = True
    baseline: bool = True  # also train the student from scratch for kd_gain


@dataclass
class StatsConfig:
    layers: Optional[list[str]] = None  # null = every hidden pre-activation plus the logits
    temperature: float = 8.0  # the logits are divided by it before their statistics
    max_cov_dim: int = 2048  # full covariance up to this many units, diagonal above
    batch_size: int = 1024
    spectral: Optional[str] = None  # null | all_layers | layer_pairs: graph-Fourier stats (set by optimize_dataset)
    spectral_keep: float = 0.1  # fraction of graph Fourier coefficients kept per class


@dataclass
class OptimizeConfig:
    objective: str = "top_layer"  # top_layer | all_layers | all_layers_dropout | spectral_all_layers | spectral_layer_pairs
    per_class: int = 6400
    batch_size: int = 64  # each batch keeps its own targets (and dropout masks)
    steps: int = 1000
    lr: Optional[float] = None  # null = per model: 0.07 fully connected, 0.09 convolutional
    init: list[float] = field(default_factory=lambda: [0.15, 0.1])  # normal(mean, std) start
    clip: bool = False  # clip inputs to [0, 1] after every step
    classes: Optional[list[int]] = None  # a shard: only these classes
    chunk_examples: int = 8192  # examples optimised together in one compiled call
    jitter: float = 1e-6  # first diagonal jitter tried when a covariance is not positive definite


@dataclass
class SuiteRow:
    label: str = ""
    overrides: list[str] = field(default_factory=list)  # command-line overrides of this row's run
    metric: str = "test_accuracy"


@dataclass
class SuiteConfig:
    title: str = ""
    reference: Optional[str] = None  # label of the row the others are divided by ("fraction of teacher")
    rows: list[SuiteRow] = field(default_factory=list)


@dataclass
class EvaluateConfig:
    path: Optional[str] = None  # a run folder or .keras file; else model from the store


@dataclass
class ReportConfig:
    procedure: Optional[str] = None
    dataset: Optional[str] = None
    model: Optional[str] = None
    format: str = "markdown"  # markdown | csv
    output: Optional[str] = None  # also write the table to this file
    sweep: Optional[str] = None  # a multirun folder: one row per job of that sweep instead of the store


@dataclass
class PathsConfig:
    runs: str = "runs"


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
    suite: SuiteConfig = field(default_factory=SuiteConfig)
    hns: HnsConfig = field(default_factory=HnsConfig)
    tree: TreeConfig = field(default_factory=TreeConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    force: bool = False
    auto_prereqs: bool = True
    deterministic: bool = False
    jit_compile: str = "auto"  # auto (XLA on GPU only) | true | false
    precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16
    augment: str = "none"  # none | shift | flip | shift_flip: train and distill steps (teacher run live)
    distribute: str = "none"  # none | mirrored (all local GPUs) | multi_worker (TF_CONFIG or Slurm)
    logical_cpus: int = 0  # split the CPU into this many devices (try distribute=mirrored without GPUs)
    optimized_metric: Optional[str] = None
    tags: list[str] = field(default_factory=list)


def register() -> None:
    """Put the schema in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore  # here, so --help can read the schema without Hydra
    ConfigStore.instance().store(name="base_config", node=Config)
