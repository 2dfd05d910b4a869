"""Typed `tree.*` settings of the tree_distill procedure (soft decision tree), and their range checks.

TensorFlow-free. The tree's training settings are its own keys, so one optimizer factory
builds the tree's optimizer from them; all but `tree.epochs` and `tree.lr` interpolate
`train.*` (which also trains the teacher), so `--cfg job --resolve` shows the effective
values. `debug=smoke` sets `tree.epochs` to 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import II

from src.schema.core import LR_SCHEDULES, OPTIMIZERS, require, require_choice

BETA_MODES = ("per_node", "shared", "fixed")
PREDICT = ("max_path", "mixture")
LABELS = ("hard", "soft", "mixed")
MAX_DEPTH = 30  # 2^30 leaves: beyond any memory; the procedure also checks the real size
TEST_FIGURES = ("distill_gain",)  # on the test split: a sweeper chooses by val_<name>
CHOICES = {"tree.beta_mode": BETA_MODES, "tree.predict": PREDICT, "tree.labels": LABELS}

@dataclass
class ExplainConfig:
    index: Optional[int] = 0  # test image whose decision path is drawn; null = none
    correlation: bool = True  # also draw input x filter along the path


@dataclass
class TreeConfig:
    depth: int = 4  # levels of inner nodes: 2^depth - 1 inner nodes, 2^depth leaves
    beta: float = 1.0  # inverse temperature of the inner nodes: start value (learned) or the value (fixed)
    beta_mode: str = "per_node"  # per_node and shared are learned; fixed is not
    predict: str = "max_path"  # max_path = the leaf with the largest path probability
    penalty_strength: float = 0.1  # lambda of the balancing penalty
    penalty_decay: float = 0.5  # node weight lambda * decay^depth (the paper: 2^-depth)
    penalty_window: float = 1.0  # running-average window of the penalty at the root, in batches; x2 per level
    labels: str = "soft"  # soft = the teacher at tree.temperature (docs/tree_distill.md)
    temperature: float = 0.5  # softmax temperature of the teacher's targets; < 1 sharpens (docs/tree_distill.md#how-the-defaults-were-chosen)
    soft_weight: float = 0.5  # labels=mixed: weight of the soft targets (1 - it on the one-hot labels)
    baseline: bool = True  # also train the same tree on hard labels (a tree_distill run with labels=hard)
    sklearn: bool = True  # also fit a scikit-learn DecisionTreeClassifier with 2^depth leaves
    epochs: int = 60  # hard labels peak early, soft targets keep improving (docs/tree_distill.md#how-the-defaults-were-chosen)
    lr: float = 0.03  # chosen on validation (docs/tree_distill.md#how-the-defaults-were-chosen)
    batch_size: int = II("train.batch_size")
    early_stopping: int = II("train.early_stopping")
    optimizer: str = II("train.optimizer")
    lr_schedule: str = II("train.lr_schedule")
    lr_milestones: list[int] = II("train.lr_milestones")
    lr_decay: float = II("train.lr_decay")
    max_steps: Optional[int] = II("train.max_steps")
    gif: bool = True  # draw the tree after every epoch and assemble learning.gif
    explain: ExplainConfig = field(default_factory=ExplainConfig)


def check(cfg) -> None:
    """Raise ConfigError naming the first tree.* setting that cannot work."""
    t = cfg.tree
    require(t.depth >= 1, f"tree.depth={t.depth}: a tree needs at least one level of inner nodes (e.g. tree.depth=4)")
    require(t.depth <= MAX_DEPTH, f"tree.depth={t.depth}: 2^{t.depth} leaves cannot fit in any memory "
                                f"(use tree.depth<=12; the paper uses 8)")
    require(t.beta > 0, f"tree.beta={t.beta}: the inverse temperature must be > 0 (e.g. tree.beta=1)")
    require_choice(t.beta_mode, BETA_MODES, "tree.beta_mode")
    require_choice(t.predict, PREDICT, "tree.predict")
    require_choice(t.labels, LABELS, "tree.labels")
    require(t.penalty_strength >= 0, f"tree.penalty_strength={t.penalty_strength}: must be >= 0 (0 = no penalty)")
    require(0 < t.penalty_decay <= 1, f"tree.penalty_decay={t.penalty_decay}: must be in (0, 1] (the paper: 0.5)")
    require(t.penalty_window >= 1, f"tree.penalty_window={t.penalty_window}: a window of at least 1 batch "
                                 f"(1 = the root uses only the current batch)")
    require(t.temperature > 0, f"tree.temperature={t.temperature}: must be > 0 (e.g. tree.temperature=2)")
    require(0 <= t.soft_weight <= 1, f"tree.soft_weight={t.soft_weight}: a weight in [0, 1]")
    require(t.epochs >= 1, f"tree.epochs={t.epochs}: at least 1")
    require(t.batch_size >= 1, f"tree.batch_size={t.batch_size}: at least 1")
    require(t.lr > 0, f"tree.lr={t.lr}: must be > 0")
    require(t.early_stopping >= 0, f"tree.early_stopping={t.early_stopping}: patience in epochs (0 = off)")
    require_choice(t.optimizer, OPTIMIZERS, "tree.optimizer")
    require_choice(t.lr_schedule, LR_SCHEDULES, "tree.lr_schedule")
    require(not (t.early_stopping and cfg.train.val_split == 0),
          "tree early stopping needs a validation split: set train.val_split (e.g. 0.1) or tree.early_stopping=0")
    require(cfg.procedure.name != "tree_distill" or cfg.distribute == "none",
            f"distribute={cfg.distribute} with tree_distill: the balancing penalty's running sums are batch "
            f"statistics, and each replica would keep its own half; train the tree on one device (distribute=none)")
    index = t.explain.index
    require(index is None or index >= 0,
          f"tree.explain.index={index}: the position of a test image, >= 0 (or null for no decision-path picture)")
