"""Process-wide TensorFlow settings taken from the config: devices, distribution
strategy, seeds, determinism, XLA, precision. Procedures call `setup(cfg)` once, first
thing, before any other TensorFlow op (logical devices and multi-worker collectives
must be configured before TensorFlow initialises its devices)."""
from __future__ import annotations

import logging
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from omegaconf import open_dict  # noqa: E402

from src.schema import jit_setting  # noqa: E402

log = logging.getLogger(__name__)
logging.getLogger("absl").setLevel(logging.WARNING)  # per-epoch "Sharding callback" chatter
_determinism_on = False
_strategy_set_for: str | None = None  # the distribute setting whose strategy this process uses


def gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def use_xla(cfg) -> bool:
    """jit_compile=auto means XLA on GPU only: on a CPU, `auto` leaves XLA off;
    `true` and `false` force it either way."""
    setting = jit_setting(cfg)
    if setting == "auto":
        return bool(gpus())
    return setting == "true"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (and Keras' own generators) in one call."""
    keras.utils.set_random_seed(int(seed))


def split_cpu(count: int) -> None:
    """Expose the CPU as `count` logical devices, so that distribute=mirrored can be run
    and tested on a machine without GPUs. Only possible before TensorFlow's first op."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    if tf.config.get_logical_device_configuration(cpu) == wanted:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        log.warning("logical_cpus=%d ignored: TensorFlow had already initialised its devices in this process "
                    "(set it in a fresh process, e.g. from the command line)", count)


def make_strategy(name: str):
    """The tf.distribute strategy for distribute=<name>, or None for one device.

    mirrored: every GPU of this machine (or every logical CPU when there is no GPU).
    multi_worker: one replica set per worker; the cluster comes from TF_CONFIG, or from
    Slurm's variables when the job runs under srun.
    """
    if name == "none":
        return None
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) < 2:
            log.warning("distribute=mirrored with a single device (%s): running without a strategy. "
                        "It needs 2+ GPUs, or logical_cpus=2 to try it on a CPU.", devices[0])
            return None
        return tf.distribute.MirroredStrategy(devices)
    resolver = None
    if "TF_CONFIG" not in os.environ and "SLURM_PROCID" in os.environ:
        resolver = tf.distribute.cluster_resolver.SlurmClusterResolver()
    strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    if strategy.num_replicas_in_sync < 2:
        log.warning("distribute=multi_worker found one worker with one device (no TF_CONFIG, not under srun): "
                    "running it as a single replica")
    return strategy


def is_chief(strategy) -> bool:
    """Whether this process writes artifacts: always, except non-chief workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and resolver.task_id == 0)


def setup(cfg) -> None:
    """Apply devices, strategy, seed, determinism, precision and GPU memory growth."""
    global _determinism_on, _strategy_set_for
    for gpu in gpus():
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: growth must be set before first use
            pass
    if cfg.logical_cpus > 1:
        split_cpu(cfg.logical_cpus)
    if _strategy_set_for != cfg.distribute:  # once per process: upstream runs share it
        strategy = make_strategy(cfg.distribute)
        tf.distribute.experimental_set_strategy(strategy)  # models, optimizers and fits all use it
        _strategy_set_for = cfg.distribute
        if strategy is not None:
            log.info("distribute=%s: %d replicas in sync", cfg.distribute, strategy.num_replicas_in_sync)
    if tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
        if not is_chief(strategy):  # every worker computes; only the chief's artifacts are kept
            with open_dict(cfg):
                cfg.paths.runs = tempfile.mkdtemp(prefix="kd-runner-worker-")
    seed_everything(cfg.seed)
    if cfg.deterministic and not _determinism_on:
        tf.config.experimental.enable_op_determinism()
        _determinism_on = True
    keras.mixed_precision.set_global_policy(cfg.precision)
