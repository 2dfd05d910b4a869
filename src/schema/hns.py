"""Typed `hns.*` settings of the hns_train procedure (Hide-and-Seek), and their range checks.

Training length, batch size, learning rate and optimizer are the shared `train.*` keys;
everything specific to Hide-and-Seek is here. TensorFlow-free.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import II

from src.schema.core import require, require_choice

log = logging.getLogger(__name__)

ESTIMATORS = ("st1", "st2", "sa", "reinforce")
MONITORS = ("classification", "total")
SELECTIONS = ("val_fii", "last")
HNS_INITS = ("scratch", "pretrained_hider", "pretrained_seeker", "pretrained_both")
HIDERS = ("hider_small", "hider_large")
SEEKERS = ("seeker_small", "seeker_large", "seeker_resnet")
HNS_MODES = ("joint", "realx")
TEST_FIGURES = ("fii", "fidelity", "interpretability")  # on the test split: a sweeper chooses by val_<name>
CHOICES = {"hns.mode": HNS_MODES, "hns.estimator": ESTIMATORS, "hns.monitor": MONITORS, "hns.select": SELECTIONS,
           "hns.init": HNS_INITS, "hns.hider": HIDERS, "hns.seeker": SEEKERS}


@dataclass
class HnsConfig:
    hider: str = "hider_small"
    seeker: str = "seeker_small"
    mask_channels: int = 1  # 1 = one mask broadcast over the colour channels; else one per input channel
    stochastic: Optional[bool] = None  # false: threshold at 0.5 (BDN); true: Bernoulli sample (BSN); null: true iff an estimator is set
    estimator: Optional[str] = None  # gradient through a stochastic mask (null = st1 when stochastic)
    rate: Optional[float] = None  # sa only: slope grows by this fraction per epoch (null = 0.5, the method's default)
    slope_max: float = 1000.0  # sa only: the slope stops growing here (a float32 sigmoid saturates anyway)
    alpha: Optional[float] = None  # weight of the classification loss; null = adaptive (start at 1, lower on stagnation)
    alpha_step: float = 0.05  # adaptive: how much alpha is lowered at a time
    alpha_min: float = 0.05  # adaptive: alpha is never lowered below this
    monitor: str = "classification"  # adaptive: the loss watched for stagnation
    patience: int = 100  # adaptive: training steps without improvement before alpha is lowered
    smoothing: float = 0.9  # adaptive: EMA factor on the monitored per-step loss (0 = raw per-step values)
    min_delta: float = 0.01  # adaptive: a smaller fall of the monitored EMA is no improvement
    keep_alpha_weights: bool = True  # adaptive: keep the weights reached at every alpha (alpha_weights/)
    select: str = "val_fii"  # adaptive: the result is the kept-alpha or final weights chosen on validation FII (one-standard-error rule); or last
    logit_penalty: float = 0.001  # adds logit_penalty * mean(a^2) of the hider's logits a, so its sigmoid cannot saturate
    init: str = "scratch"  # which parts start from their pretraining stage
    hider_path: Optional[str] = None  # a hider .keras file (or hns hider run folder) instead of the store's
    seeker_path: Optional[str] = None  # a seeker .keras file (or hns seeker run folder) instead of the store's
    pretrain_epochs: int = II("train.epochs")  # epochs of the pretraining stages (hider, seeker, evaluators)
    baseline: Optional[float] = None  # seeker test accuracy for fidelity; null = the pretrained seeker's (made if needed)
    figures_per_class: int = 4  # test images (with masks) per class in masks.png
    evalx: bool = True  # score the masks with the EVAL-X evaluator (and the code-free control masks of their sparsity)
    evalx_keep: List[float] = field(default_factory=lambda: [0.5])  # EVAL-X's keep rate; [low, high]: one per image, uniform
    evalx_seed: Optional[int] = 0  # s: EVAL-X trained with seed 2s, realx's judge 2s+1; null = the run's seed (per-seed evaluators)
    mode: str = "joint"  # joint: hider and seeker trained together; realx: the seeker is the EVAL-X evaluator, frozen


def binary_layer(h) -> tuple[bool, str | None]:
    """(stochastic, estimator) as they will run: naming an estimator implies a stochastic
    layer (so `hns.estimator=st1,st2,sa,reinforce` sweeps estimators), a stochastic layer
    without one uses st1 (the method's default), a deterministic layer has none."""
    stochastic = h.stochastic if h.stochastic is not None else h.estimator is not None
    if not stochastic:
        return False, None
    return True, h.estimator or "st1"


def layer_name(h) -> str:
    """The binary layer as run names and summaries show it: its estimator, or "det"."""
    stochastic, estimator = binary_layer(h)
    return estimator if stochastic else "det"


def pretrained_parts(h) -> list[str]:
    """The parts ("hider", "seeker") that hns.init starts from pretrained weights."""
    return [part for part in ("hider", "seeker") if h.init in (f"pretrained_{part}", "pretrained_both")]


def mode_applies(h, mode: str) -> bool:
    """Whether hns.mode=`mode` accepts the other hns.* settings of h: realx's seeker is the
    EVAL-X evaluator, so a seeker of its own (hns.init, seeker_path, baseline) does not apply."""
    return mode == "joint" or ("seeker" not in pretrained_parts(h) and h.seeker_path is None
                               and h.baseline is None)


def check(cfg) -> None:
    """Raise ConfigError naming the first hns.* setting that cannot work; warn about ignored ones."""
    h = cfg.hns
    if h.estimator is not None:
        require_choice(h.estimator, ESTIMATORS, "hns.estimator")
    require_choice(h.monitor, MONITORS, "hns.monitor")
    require_choice(h.init, HNS_INITS, "hns.init")
    require_choice(h.hider, HIDERS, "hns.hider")
    require_choice(h.seeker, SEEKERS, "hns.seeker")
    require(h.alpha is None or 0.0 <= h.alpha <= 1.0,
            f"hns.alpha={h.alpha}: must be in [0, 1] (1 = classification only), or null for the adaptive schedule")
    require(0.0 < h.alpha_step <= 1.0, f"hns.alpha_step={h.alpha_step}: must be in (0, 1] (e.g. 0.05, the default)")
    require(0.0 <= h.alpha_min < 1.0, f"hns.alpha_min={h.alpha_min}: must be in [0, 1) (e.g. 0.05)")
    require(h.patience >= 1, f"hns.patience={h.patience}: training steps, must be >= 1 (e.g. 100, the default)")
    require(0.0 <= h.smoothing < 1.0, f"hns.smoothing={h.smoothing}: an EMA factor in [0, 1) (0 = no smoothing)")
    require(h.min_delta >= 0.0, f"hns.min_delta={h.min_delta}: must be >= 0 (0 = any fall counts as improvement)")
    require_choice(h.select, SELECTIONS, "hns.select")
    require(h.logit_penalty >= 0.0, f"hns.logit_penalty={h.logit_penalty}: must be >= 0 (0 = off, the plain method; default 0.001)")
    require(h.mask_channels >= 1, f"hns.mask_channels={h.mask_channels}: 1 (shared mask) or the input's channel count")
    require(h.rate is None or h.rate >= 0.0, f"hns.rate={h.rate}: the slope's growth per epoch must be >= 0 (e.g. 0.5)")
    require(h.slope_max >= 1.0, f"hns.slope_max={h.slope_max}: must be >= 1 (the slope starts at 1)")
    require(h.pretrain_epochs >= 1, f"hns.pretrain_epochs={h.pretrain_epochs}: must be >= 1 (default: train.epochs)")
    require(h.baseline is None or 0.0 < h.baseline <= 1.0,
            f"hns.baseline={h.baseline}: a test accuracy in (0, 1], or null to use the pretrained seeker's")
    require(h.figures_per_class >= 0, "hns.figures_per_class must be >= 0")
    keep = list(h.evalx_keep)
    require(len(keep) in (1, 2) and all(0.0 < k <= 1.0 for k in keep) and keep == sorted(keep),
            f"hns.evalx_keep={keep}: one keep rate in (0, 1] or a range [low, high] (e.g. [0.5], or [0.02,0.5] "
            f"to cover sparse masks)")
    require(h.evalx_seed is None or h.evalx_seed >= 0,
            f"hns.evalx_seed={h.evalx_seed}: a seed >= 0, or null to train the evaluators with each run's seed")
    require_choice(h.mode, HNS_MODES, "hns.mode")
    require(mode_applies(h, h.mode),
            f"hns.mode=realx: the seeker is the EVAL-X evaluator (and F is against its accuracy), so hns.init="
            f"{h.init}, hns.seeker_path and hns.baseline do not apply: use hns.init=scratch or pretrained_hider")
    if cfg.procedure.name != "hns_train":
        return
    stochastic, estimator = binary_layer(h)
    require(cfg.distribute == "none" or (h.alpha is not None and estimator != "reinforce"),
            f"distribute={cfg.distribute} with hns_train: the adaptive alpha watches a batch loss and the REINFORCE "
            f"baseline is a batch statistic, which each replica would take on its own share of the batch; train on "
            f"one device (distribute=none), or with a constant hns.alpha and another estimator")
    if h.rate is not None and estimator != "sa":
        layer = f"estimator {estimator}" if stochastic else "a deterministic layer (hns.stochastic=false)"
        log.warning("hns.rate=%s is ignored with %s: only hns.estimator=sa anneals a slope", h.rate, layer)
    if h.estimator is not None and not stochastic:
        log.warning("hns.estimator=%s is ignored with a deterministic layer (hns.stochastic=false): "
                    "set hns.stochastic=true to use it", h.estimator)
    adaptive, defaults = ("alpha_step", "alpha_min", "patience"), HnsConfig()
    if h.alpha is not None and any(getattr(h, k) != getattr(defaults, k) for k in adaptive):
        log.warning("hns.alpha=%s is constant: hns.alpha_step, hns.alpha_min and hns.patience are ignored", h.alpha)
    if cfg.train.early_stopping:
        log.warning("train.early_stopping is ignored by hns_train: alpha changes the loss during training, "
                    "so validation loss is no stopping criterion")
