"""Range and consistency checks that run before TensorFlow is imported.

Types and unknown keys are already checked by the schema at compose time; this catches
values a type cannot express (epochs=0, val_split=1.5, ...).
"""
from __future__ import annotations

from src import schema_hns, schema_tree
from src.errors import ConfigError
from src.schema import DROPOUT_KEYS

JIT_CHOICES = ("auto", "true", "false")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
AUGMENT = ("none", "shift", "flip", "shift_flip")  # src/augment.py (kept TF-free here)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SOFT_LOSSES = ("kl", "ce")
DISTILL_DATA = ("dataset", "reconstructed")
REPORT_FORMATS = ("markdown", "csv")
OBJECTIVES = ("top_layer", "all_layers", "all_layers_dropout", "spectral_all_layers", "spectral_layer_pairs")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choice(value: str, choices: tuple[str, ...], key: str) -> None:
    _check(value in choices, f"{key}={value!r} is not one of {', '.join(choices)}")


def jit_setting(cfg) -> str:
    """jit_compile as auto/true/false, whether it came as a string or a YAML boolean."""
    return str(cfg.jit_compile).lower()


def validate(cfg) -> None:
    """Raise ConfigError naming the first setting that cannot work."""
    t = cfg.train
    _check(t.epochs >= 1, f"train.epochs={t.epochs}: needs at least 1 epoch (e.g. train.epochs=10)")
    _check(t.batch_size >= 1, f"train.batch_size={t.batch_size}: must be a positive number (e.g. train.batch_size=128)")
    _check(t.lr > 0, f"train.lr={t.lr}: the learning rate must be > 0 (e.g. train.lr=0.001)")
    _check(0.0 <= t.val_split < 1.0, f"train.val_split={t.val_split}: must be in [0, 1) (a fraction of the training split, e.g. 0.1)")
    _check(t.early_stopping >= 0, f"train.early_stopping={t.early_stopping}: patience in epochs, 0 = off")
    _check(not (t.early_stopping and t.val_split == 0),
           "train.early_stopping needs a validation split: set train.val_split (e.g. 0.1) or train.early_stopping=0")
    _check(t.max_steps is None or t.max_steps >= 1, f"train.max_steps={t.max_steps}: must be >= 1 or null")
    _choice(t.optimizer, OPTIMIZERS, "train.optimizer")
    _choice(t.lr_schedule, ("cosine", "constant"), "train.lr_schedule")
    _check(cfg.teacher.epochs is None or cfg.teacher.epochs >= 1,
           f"teacher.epochs={cfg.teacher.epochs}: at least 1, or null to train the teacher for train.epochs")
    _choice(jit_setting(cfg), JIT_CHOICES, "jit_compile")
    _choice(cfg.precision, PRECISIONS, "precision")
    _choice(cfg.distribute, DISTRIBUTE, "distribute")
    _choice(cfg.augment, AUGMENT, "augment")
    _check(cfg.logical_cpus >= 0, f"logical_cpus={cfg.logical_cpus}: 0 (off) or the number of CPU devices to make")
    for group in ("model", "student"):
        _choice(cfg[group].init, ("default", "paper"), f"{group}.init")
        for key in DROPOUT_KEYS:
            rate = cfg[group][key]
            _check(rate is None or 0.0 <= rate < 1.0, f"{group}.{key}={rate}: a dropout rate in [0, 1), or null")
    d = cfg.dataset
    for key in ("train_limit", "test_limit"):
        value = d[key]
        _check(value is None or value >= 1, f"dataset.{key}={value}: must be >= 1 or null")
    kd = cfg.distill
    _check(kd.temperature > 0, f"distill.temperature={kd.temperature}: must be > 0 (Hinton et al. use 1..20; try 4)")
    _check(kd.ce_weight >= 0 and kd.kd_weight >= 0, "distill.ce_weight and distill.kd_weight must be >= 0")
    _check(kd.ce_weight + kd.kd_weight > 0, "distill.ce_weight and distill.kd_weight are both 0: the student would learn nothing (set distill.kd_weight=1)")
    _choice(kd.soft_loss, SOFT_LOSSES, "distill.soft_loss")
    _choice(kd.data, DISTILL_DATA, "distill.data")
    _choice(cfg.report.format, REPORT_FORMATS, "report.format")
    st = cfg.stats
    _check(st.temperature > 0, f"stats.temperature={st.temperature}: must be > 0 (the paper uses 8)")
    _check(st.max_cov_dim >= 1 and st.batch_size >= 1, "stats.max_cov_dim and stats.batch_size must be >= 1")
    _check(st.spectral in (None, "all_layers", "layer_pairs"),
           f"stats.spectral={st.spectral}: null, all_layers or layer_pairs")
    _check(0 < st.spectral_keep <= 1, f"stats.spectral_keep={st.spectral_keep}: a fraction in (0, 1] (the paper keeps 0.1)")
    op = cfg.optimize
    _choice(op.objective, OBJECTIVES, "optimize.objective")
    if kd.data == "reconstructed" and kd.objective is not None:
        _choice(kd.objective, OBJECTIVES, "distill.objective")
    _check(op.per_class >= 1 and op.batch_size >= 1 and op.steps >= 1,
           "optimize.per_class, optimize.batch_size and optimize.steps must be >= 1")
    _check(op.lr is None or op.lr > 0, f"optimize.lr={op.lr}: must be > 0 or null (per model)")
    _check(len(op.init) == 2 and op.init[1] >= 0, f"optimize.init={list(op.init)}: give [mean, std] with std >= 0")
    _check(op.chunk_examples >= op.batch_size, "optimize.chunk_examples must be at least optimize.batch_size")
    _check(op.jitter > 0, "optimize.jitter must be > 0")
    schema_hns.check(cfg)
    schema_tree.check(cfg)
