"""Typed `stats.*` (compute_stats) and `optimize.*` (optimize_dataset) settings of
data-free distillation (src/datafree), their choice lists and checks."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from src.schema.core import require, require_choice

LAYERWISE_OBJECTIVES = ("top_layer", "all_layers", "all_layers_dropout")
SPECTRAL_GRAPHS = {"spectral_all_layers": "all_layers", "spectral_layer_pairs": "layer_pairs"}  # objective -> graph
BATCHNORM = "batchnorm"  # DeepInversion's objective: the teacher's BatchNorm statistics, no stats run
OBJECTIVES = LAYERWISE_OBJECTIVES + tuple(SPECTRAL_GRAPHS) + (BATCHNORM,)
SPECTRAL_MODES = tuple(SPECTRAL_GRAPHS.values())
LAYER_WEIGHTINGS = ("equal", "width")
GENERATOR_METHODS = ("dafl", "adversarial")  # conf/generator/<method>.yaml holds each one's published settings
GENERATOR_STUDENT_OPTIMIZERS = ("adam", "sgd")
CHOICES = {"optimize.objective": OBJECTIVES, "optimize.layer_weighting": LAYER_WEIGHTINGS,
           "stats.spectral": SPECTRAL_MODES, "generator (group)": GENERATOR_METHODS}


@dataclass
class StatsConfig:
    layers: Optional[list[str]] = None  # null = every hidden pre-activation plus the logits
    temperature: float = 8.0  # the logits are divided by it before their statistics
    max_cov_dim: int = 2048  # full covariance up to this many units, diagonal above
    batch_size: int = 1024
    spectral: Optional[str] = None  # a spectral graph: its graph-Fourier stats too (set by optimize_dataset)
    spectral_keep: float = 0.1  # fraction of graph Fourier coefficients kept per class


@dataclass
class OptimizeConfig:
    objective: str = "top_layer"
    per_class: int = 6400
    batch_size: int = 64  # each batch keeps its own targets (and dropout masks)
    steps: int = 1000
    lr: Optional[float] = None  # null = per model: 0.07 fully connected, 0.09 convolutional
    init: list[float] = field(default_factory=lambda: [0.15, 0.1])  # normal(mean, std) start
    clip: bool = False  # clip inputs to [0, 1] after every step
    classes: Optional[list[int]] = None  # a shard: only these classes
    chunk_examples: int = 8192  # examples optimised together in one compiled call
    jitter: float = 1e-6  # first diagonal jitter tried when a covariance is not positive definite
    layer_weighting: str = "equal"  # equal = every layer's mean counts alike; width = 1/units (the reference code's)
    out_of_band: float = 0.0  # spectral: weight of the energy outside the kept coefficients (1 = the paper's vertex-domain loss)
    bn_weight: float = 10.0  # batchnorm: weight of the BN-statistics term beside the CE (DeepInversion's CIFAR value)
    # image priors (src/datafree/priors.py), with every objective; 0 / false = off
    tv_l1: float = 0.0
    tv_l2: float = 0.0  # DeepInversion's CIFAR value: 2.5e-5 (taken over each batch, as DeepInversion's)
    l2: float = 0.0
    roll: int = 0  # the teacher sees the inputs rolled by up to this many pixels, anew at each step (CIFAR: 2)
    flip: bool = False  # and mirrored left-right half of the time (not for digits or clothes)


@dataclass
class GeneratorConfig:
    """procedure=datafree_distill (src/datafree/generator.py). The method and its published
    settings come together from the group conf/generator (generator=dafl|adversarial)."""
    method: str = MISSING
    published: str = MISSING  # the conf/generator option the settings below come from
    steps_per_epoch: int = MISSING
    lr: float = MISSING  # the generator's Adam
    student_optimizer: str = MISSING
    student_lr: float = MISSING
    student_steps: int = MISSING  # student steps per generator step
    epochs: int = 10  # a CPU budget; the papers' MNIST budgets: experiment=dafl_gpu, dfad_gpu
    batch_size: int = 128  # DAFL and DFAD: 512 on MNIST
    latent_dim: int = 100
    width: int = 32  # channels of the generator's first conv (the second has half); the papers': 128
    oh: float = 1.0  # dafl: one-hot loss weight
    a: float = 0.1  # dafl: activation loss weight
    ie: float = 5.0  # dafl: information-entropy loss weight
    temperature: float = 1.0  # dafl: the student's KD temperature
    # dafl: the teacher layer of the activation loss. null = the one the teacher's network declares
    # (the LeNets: fc1_relu, 120 units, DAFL's features), else (any other network, or teacher.path)
    # the output layer's input
    feature_layer: Optional[str] = None
    pool: int = 1024  # generated inputs (fixed noise) on which teacher-student agreement is measured each epoch


def check(cfg) -> None:
    """Raise ConfigError naming the first stats.* or optimize.* setting that cannot work."""
    st = cfg.stats
    require(st.temperature > 0, f"stats.temperature={st.temperature}: must be > 0 (the paper uses 8)")
    require(st.max_cov_dim >= 1 and st.batch_size >= 1, "stats.max_cov_dim and stats.batch_size must be >= 1")
    require(st.spectral is None or st.spectral in SPECTRAL_MODES,
            f"stats.spectral={st.spectral}: null, {' or '.join(SPECTRAL_MODES)}")
    require(0 < st.spectral_keep <= 1,
            f"stats.spectral_keep={st.spectral_keep}: a fraction in (0, 1] (the paper keeps 0.1)")
    op = cfg.optimize
    require_choice(op.objective, OBJECTIVES, "optimize.objective")
    require(op.per_class >= 1 and op.batch_size >= 1 and op.steps >= 1,
            "optimize.per_class, optimize.batch_size and optimize.steps must be >= 1")
    require(op.lr is None or op.lr > 0, f"optimize.lr={op.lr}: must be > 0 or null (per model)")
    require(len(op.init) == 2 and op.init[1] >= 0, f"optimize.init={list(op.init)}: give [mean, std] with std >= 0")
    require(op.chunk_examples >= op.batch_size, "optimize.chunk_examples must be at least optimize.batch_size")
    require(op.jitter > 0, "optimize.jitter must be > 0")
    require_choice(op.layer_weighting, LAYER_WEIGHTINGS, "optimize.layer_weighting")
    require(min(op.tv_l1, op.tv_l2, op.l2, op.bn_weight) >= 0,
            "optimize.tv_l1, optimize.tv_l2, optimize.l2 and optimize.bn_weight are weights: each must be >= 0")
    require(op.roll >= 0, f"optimize.roll={op.roll}: a number of pixels >= 0")
    gen = cfg.generator
    require_choice(gen.method, GENERATOR_METHODS, "generator.method")
    require(gen.method == gen.published,
            f"generator.method={gen.method} with the {gen.published} settings: choose a method and its published "
            f"settings together, generator={gen.method}")
    require(min(gen.epochs, gen.batch_size, gen.latent_dim, gen.pool) >= 1 and gen.width >= 2,
            "generator.epochs, batch_size, latent_dim and pool must be >= 1, generator.width >= 2")
    for key in ("steps_per_epoch", "student_steps"):
        require(gen[key] >= 1, f"generator.{key}={gen[key]}: >= 1")
    for key in ("lr", "student_lr"):
        require(gen[key] > 0, f"generator.{key}={gen[key]}: > 0")
    require_choice(gen.student_optimizer, GENERATOR_STUDENT_OPTIMIZERS, "generator.student_optimizer")
    require(gen.temperature > 0, f"generator.temperature={gen.temperature}: must be > 0")
    require(op.out_of_band >= 0, f"optimize.out_of_band={op.out_of_band}: a weight >= 0 (0 = only the kept "
                                 f"coefficients, 1 = the paper's vertex-domain loss)")
