"""Typed `teacher.*` and `distill.*` settings (knowledge distillation, src/kd) and their checks."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from src.schema.core import AUGMENT, require, require_choice
from src.schema.datafree import OBJECTIVES

SOFT_LOSSES = ("kl", "ce")
METHODS = ("hinton", "dkd", "dist", "fitnet", "at")  # docs/distill.md, "Methods"
FEATURE_METHODS = ("fitnet", "at")  # add a loss on named layers to the hinton term
METHOD_SECTIONS = {"dkd": "dkd", "dist": "dist", "fitnet": "features", "at": "features"}  # a method's own settings
STANDARDIZABLE = ("hinton", "dkd", "fitnet", "at")  # distill.standardize applies to these (to the logit term)
DISTILL_DATA = ("dataset", "reconstructed")
TEST_FIGURES = ("kd_gain", "agreement")  # on the test split: a sweeper chooses by val_<name>
CHOICES = {"distill.method": METHODS, "distill.soft_loss": SOFT_LOSSES, "distill.data": DISTILL_DATA}

@dataclass
class TeacherConfig:
    path: Optional[str] = None  # a run folder or any .keras file; else the run store
    epochs: Optional[int] = None  # train the teacher this long (null = train.epochs, like the student)
    augment: Optional[str] = None  # train the teacher with this augmentation (null = augment, like the student)
    outputs: str = "float16"  # its logits kept in the store for every student: float16 or float32


@dataclass
class DkdConfig:
    """Decoupled KD (Zhao et al. 2022); the reference code's defaults."""
    alpha: float = 1.0  # weight of the target-class term TCKD
    beta: float = 8.0  # weight of the non-target term NCKD (the reference uses 2-8 per pair)
    warmup: int = 20  # epochs over which the KD term ramps up linearly (epoch / warmup); 0 = off


@dataclass
class DistRelationConfig:
    """DIST (Huang et al. 2022): weights of its two Pearson-relation terms."""
    inter: float = 1.0  # per example, across classes
    intra: float = 1.0  # per class, across the batch


@dataclass
class FeatureConfig:
    """fitnet / at: the layer pairs whose outputs are matched, in order."""
    teacher_layers: list[str] = field(default_factory=list)  # e.g. [conv2_relu]
    student_layers: list[str] = field(default_factory=list)  # as many, e.g. [conv2_relu]
    weight: Optional[float] = None  # null = the reference's: fitnet 100, at 1000


@dataclass
class DistillConfig:
    method: str = "hinton"  # the soft term (docs/distill.md)
    standardize: bool = False  # logit standardisation (Sun et al. 2024) before the soft term: hinton, dkd
    dkd: DkdConfig = field(default_factory=DkdConfig)
    dist: DistRelationConfig = field(default_factory=DistRelationConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    temperature: float = 4.0
    ce_weight: float = 0.1  # hard-label cross-entropy at T=1
    kd_weight: float = 0.9  # soft-target term at T
    t2_scale: bool = True  # multiply the soft term by T^2 (Hinton et al. 2015)
    soft_loss: str = "kl"
    data: str = "dataset"  # reconstructed = data.npz of optimize_dataset
    objective: Optional[str] = None  # which reconstruction, with data=reconstructed
    data_path: Optional[str] = None  # a data.npz (or its run folder) to distill on instead
    cache_teacher: bool = True
    baseline: bool = True  # also train the student from scratch for kd_gain
    deploy: bool = False  # then export and measure teacher, baseline and student (procedure=deploy, docs/deploy.md)
    quantize: str = "none"  # int8 = quantisation-aware: the student trains with fake-quantised weights and activations


def check(cfg) -> None:
    """Raise ConfigError naming the first teacher.* or distill.* setting that cannot work."""
    require(cfg.teacher.epochs is None or cfg.teacher.epochs >= 1,
            f"teacher.epochs={cfg.teacher.epochs}: at least 1, or null to train the teacher for train.epochs")
    if cfg.teacher.augment is not None:
        require_choice(cfg.teacher.augment, AUGMENT, "teacher.augment")
    require_choice(cfg.teacher.outputs, ("float16", "float32"), "teacher.outputs")
    kd = cfg.distill
    require(kd.temperature > 0, f"distill.temperature={kd.temperature}: must be > 0 (Hinton et al. use 1..20; try 4)")
    require(kd.ce_weight >= 0 and kd.kd_weight >= 0, "distill.ce_weight and distill.kd_weight must be >= 0")
    require(kd.ce_weight + kd.kd_weight > 0, "distill.ce_weight and distill.kd_weight are both 0: the student would "
                                             "learn nothing (set distill.kd_weight=1)")
    require_choice(kd.soft_loss, SOFT_LOSSES, "distill.soft_loss")
    require_choice(kd.method, METHODS, "distill.method")
    require(not kd.standardize or kd.method in STANDARDIZABLE,
            f"distill.standardize=true applies to distill.method={' or '.join(STANDARDIZABLE)}, not {kd.method}: "
            "set distill.standardize=false")
    require(kd.dkd.alpha >= 0 and kd.dkd.beta >= 0, "distill.dkd.alpha and distill.dkd.beta must be >= 0")
    require(kd.dkd.warmup >= 0, f"distill.dkd.warmup={kd.dkd.warmup}: epochs >= 0 (0 = no warm-up)")
    require(kd.dist.inter >= 0 and kd.dist.intra >= 0, "distill.dist.inter and distill.dist.intra must be >= 0")
    require(kd.method != "dist" or cfg.distribute == "none",
            f"distill.method=dist with distribute={cfg.distribute}: its intra-class term is a statistic of the "
            "whole batch, which each replica would see only a share of; use distribute=none")
    if kd.method in FEATURE_METHODS:
        f = kd.features
        require(len(f.teacher_layers) > 0 and len(f.teacher_layers) == len(f.student_layers),
                f"distill.method={kd.method} needs layer pairs: distill.features.teacher_layers=[...] and "
                "distill.features.student_layers=[...] of the same length (e.g. [conv2_relu] and [conv2_relu])")
        require(f.weight is None or f.weight >= 0, f"distill.features.weight={f.weight}: must be >= 0, or null")
    require(kd.method in ("hinton", *FEATURE_METHODS) or kd.soft_loss == "kl",
            f"distill.soft_loss={kd.soft_loss} applies to distill.method=hinton, fitnet, at: set distill.soft_loss=kl")
    require_choice(kd.data, DISTILL_DATA, "distill.data")
    if kd.data == "reconstructed":
        require(kd.objective is not None or kd.data_path is not None,
                "distill.data=reconstructed needs distill.objective=... (which reconstruction, e.g. top_layer or "
                "all_layers) or distill.data_path=/path/to/data.npz")
        if kd.objective is not None:
            require_choice(kd.objective, OBJECTIVES, "distill.objective")
