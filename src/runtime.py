"""Process-wide TensorFlow settings taken from the config: seeds, determinism, XLA,
precision. Procedures call `setup(cfg)` once, first thing."""
from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from src.validate import jit_setting  # noqa: E402

log = logging.getLogger(__name__)
logging.getLogger("absl").setLevel(logging.WARNING)  # per-epoch "Sharding callback" chatter
_determinism_on = False


def gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def use_xla(cfg) -> bool:
    """jit_compile=auto means XLA on GPU only: on this project's 2-core CPU XLA measured
    2.3x slower for hinton1200 (DESIGN.md)."""
    setting = jit_setting(cfg)
    if setting == "auto":
        return bool(gpus())
    return setting == "true"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (and Keras' own generators) in one call."""
    keras.utils.set_random_seed(int(seed))


def setup(cfg) -> None:
    """Apply seed, determinism, precision and GPU memory growth for this process."""
    global _determinism_on
    for gpu in gpus():
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth must be set before first use
            pass
    seed_everything(cfg.seed)
    if cfg.deterministic and not _determinism_on:
        tf.config.experimental.enable_op_determinism()
        _determinism_on = True
    keras.mixed_precision.set_global_policy(cfg.precision)
