"""The sections every procedure shares: procedure, model, dataset, train, paths, and the
process-wide switches; their choice lists and range checks.

`require` and `require_choice` are the one way a section's check() refuses a setting:
a ConfigError whose message names the key, the problem and a value that works.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from src.errors import ConfigError

JIT_CHOICES = ("auto", "true", "false")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("cosine", "constant", "step")
MODEL_INITS = ("default", "paper")  # this project's networks: Keras' initialisers, or the reference code's
FILE_INITS = ("reinit", "weights")  # a network from a file (model.path): fresh weights, or the file's
KERAS_APP = "keras_app"  # model=keras_app: any keras.applications constructor (model.arch)
FACTORY = "factory"  # model=factory: a user's function (model.target)
APP_FIXED_KWARGS = ("include_top", "weights", "input_tensor", "input_shape", "classes", "pooling",
                    "classifier_activation")  # keras_app: the runner sets these constructor arguments itself
GEOMETRIC_AUGMENT = ("shift", "flip", "shift_flip", "crop", "crop_flip")
AUGMENT = ("none", *GEOMETRIC_AUGMENT, "mixup", *(f"{kind}_mixup" for kind in GEOMETRIC_AUGMENT))
MIXUP_PER = ("example", "batch")  # what one mixup draw covers (src/augment.py Mixup)
REPORT_FORMATS = ("markdown", "csv")
LOGGERS = ("tensorboard", "csv", "mlflow", "wandb", "none")
WANDB_MODES = ("online", "offline")
COLOR_MODES = ("auto", "grayscale", "rgb")
STREAM_CHOICES = ("auto", "true", "false")  # dataset.stream (docs/data.md#data-bigger-than-memory)  # dataset.color_mode; auto = rgb when any image has colour
# A user's own data (docs/data.md): each source and the dataset.* settings only it reads.
USER_DATA = {"folder": ("path", "image_size", "color_mode", "class_names", "test_fraction", "skip_unreadable"),
             "npz": ("path", "test_fraction"),
             "tfds": ("tfds_name", "data_dir", "image_size", "color_mode", "test_fraction")}
WEIGHT_DECAY_PROCEDURES = ("train", "distill", "suite")  # the procedures whose fit applies train.weight_decay
DROPOUT_KEYS = ("dropout", "input_dropout")  # ModelConfig's optional rate overrides
CHOICES = {"jit_compile": JIT_CHOICES, "precision": PRECISIONS, "distribute": DISTRIBUTE, "augment": AUGMENT,
           "mixup_per": MIXUP_PER, "train.optimizer": OPTIMIZERS, "train.lr_schedule": LR_SCHEDULES,
           "model.init": MODEL_INITS + FILE_INITS, "report.format": REPORT_FORMATS,
           "logger": LOGGERS, "dataset.color_mode": COLOR_MODES,
           "dataset.stream": STREAM_CHOICES}  # key -> its allowed values (main.py --help)


def validation_twin(metric: str, test_figures: tuple[str, ...]) -> str | None:
    """The validation metric to optimise instead of `metric` when `metric` is measured on
    the test split: every test_* metric, and the figures a section names in its
    TEST_FIGURES, whose twin is val_ + the name."""
    if metric.startswith("test_"):
        return "val_" + metric[len("test_"):]
    return "val_" + metric if metric in test_figures else None


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def require_choice(value, choices: tuple[str, ...], key: str) -> None:
    require(value in choices, f"{key}={value!r} is not one of {', '.join(choices)}")


def jit_setting(cfg) -> str:
    """jit_compile as auto/true/false, whether it came as a string or a YAML boolean."""
    return str(cfg.jit_compile).lower()


@dataclass
class ProcedureConfig:
    name: str = "train"


@dataclass
class ModelConfig:
    """A network, as the teacher (`model`) or the student (`student`): one of this project's
    by name, a .keras file's architecture (path), any keras.applications constructor
    (name keras_app) or a user's function (name factory). docs/models.md"""
    name: str = "lenet"
    init: str = "default"  # default = Keras'; paper = the reference code's; with path: reinit (= default) or weights
    dropout: Optional[float] = None  # hinton MLPs: hidden-layer dropout rate; null = the architecture's own
    input_dropout: Optional[float] = None  # hinton MLPs: dropout on the input pixels; null = the architecture's own
    path: Optional[str] = None  # a .keras file (or run folder) whose architecture this is; name is then not read
    arch: Optional[str] = None  # keras_app: the keras.applications constructor, e.g. MobileNetV3Small
    weights: Optional[str] = None  # keras_app: null = random, imagenet (from ~/.keras/models), or a weights file
    target: Optional[str] = None  # factory: package.module.function(input_shape, num_classes, **kwargs) -> keras.Model
    # factory: the function's keyword arguments; keras_app: further constructor arguments (+model.kwargs.alpha=0.75)
    kwargs: dict[str, Any] = field(default_factory=dict)


def network_kind(m) -> str:
    """What builds the network of a model section (also one a stored config.yaml records):
    "file", KERAS_APP, FACTORY or "registry"."""
    if m.get("path"):
        return "file"
    return m.get("name") if m.get("name") in (KERAS_APP, FACTORY) else "registry"


def check_network(m, group: str) -> None:
    """The settings of one model section fit its kind of network: each key is read by one
    kind only, so a key the network would ignore is refused rather than silently dropped."""
    kind = network_kind(m)
    require_choice(m.init, MODEL_INITS + FILE_INITS, f"{group}.init")
    for key in DROPOUT_KEYS:
        rate = m[key]
        require(rate is None or 0.0 <= rate < 1.0, f"{group}.{key}={rate}: a dropout rate in [0, 1), or null")
        require(rate is None or kind == "registry",
                f"{group}.{key}={rate}: only this project's networks (hinton1200, hinton800) have a dropout "
                f"setting; a {kind} network has its own: set {group}.{key}=null")
    require(kind == "file" or m.init in MODEL_INITS,
            f"{group}.init={m.init} applies to a network from a file: give {group}.path=FILE.keras, "
            f"or {group}.init=default")
    require(kind in ("file", "registry") or m.init == "default",
            f"{group}.init={m.init}: a {kind} network starts as its " +
            ("weights setting says" if kind == KERAS_APP else "function builds it") + f": set {group}.init=default")
    require(kind != "file" or m.init != "paper",
            f"{group}.init=paper is this project's initialisation of its own networks: a network from "
            f"{group}.path starts from fresh weights ({group}.init=reinit) or the file's ({group}.init=weights)")
    owners = {"arch": KERAS_APP, "weights": KERAS_APP, "target": FACTORY}
    for key, owner in owners.items():
        require(m[key] is None or kind == owner,
                f"{group}.{key}={m[key]} applies to {group}={owner}" +
                (f", not to a network from {group}.path: drop {group}.{key}" if kind == "file"
                 else f": add {group}={owner}, or drop {group}.{key}"))
    require(not m.kwargs or kind in (KERAS_APP, FACTORY),
            f"{group}.kwargs applies to {group}={KERAS_APP} or {group}={FACTORY}: drop {group}.kwargs")
    if kind == KERAS_APP:
        require(bool(m.arch), f"{group}={KERAS_APP} needs {group}.arch=NAME, a keras.applications constructor "
                              f"(e.g. {group}.arch=MobileNetV3Small)")
        fixed = sorted(set(m.kwargs) & set(APP_FIXED_KWARGS))
        require(not fixed, f"{group}.kwargs.{fixed[0] if fixed else ''}: the runner sets "
                           f"{', '.join(APP_FIXED_KWARGS)} itself: drop it")
    if kind == FACTORY:
        require(bool(m.target) and "." in m.target,
                f"{group}.target={m.target}: {group}={FACTORY} needs {group}.target=package.module.function, a "
                f"function (input_shape, num_classes, **kwargs) -> keras.Model on the import path")


@dataclass
class DatasetConfig:
    name: str = "mnist_sample"
    path: Optional[str] = None  # a file or folder to load instead of the default source
    split_seed: int = 0  # fixed across run seeds so every run shares one test split
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    val_count: Optional[int] = None  # exactly this many validation examples instead of train.val_split
    num_samples: int = 2000  # synthetic only
    image_shape: list[int] = field(default_factory=lambda: [28, 28, 1])  # synthetic only
    num_classes: int = 10  # synthetic only
    image_size: Optional[list[int]] = None  # folder, tfds: resize every image to [H, W]
    color_mode: str = "auto"  # folder, tfds: auto (rgb when any image has colour), grayscale or rgb
    class_names: Optional[list[str]] = None  # folder: the class folders in label order (default: sorted)
    test_fraction: float = 0.2  # folder, npz, tfds: the per-class share carved as test when there is no test split
    skip_unreadable: bool = False  # folder: skip unreadable or empty files (counted in metrics) instead of refusing
    tfds_name: Optional[str] = None  # tfds: a data set prepared on disk, e.g. mnist or my_set/config:1.0.0
    data_dir: Optional[str] = None  # tfds: the folder it was prepared in (null: tfds' default, ~/tensorflow_datasets)
    stream: str = "auto"  # true: splits memory-mapped from the run store; auto: when over memory_budget; false
    memory_budget: Optional[str] = None  # the decoded size auto streams above: bytes, 512MB, 2GiB; null = 1/4 of RAM


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    lr_schedule: str = "cosine"  # cosine = decay to 0 over the run; step = x lr_decay at lr_milestones
    lr_milestones: list[int] = field(default_factory=list)  # lr_schedule=step: the epochs after which lr decays
    lr_decay: float = 0.1  # lr_schedule=step: the factor at each milestone
    weight_decay: float = 0.0  # train and distill: coupled L2 (PyTorch SGD's), (wd / 2) * ||w||^2 on every weight
    val_split: float = 0.1
    early_stopping: int = 0  # patience in epochs on val_loss; 0 = off
    max_steps: Optional[int] = None  # stop each epoch after this many steps (smoke runs)


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
    seeds: list[int] = field(default_factory=list)  # run every row once per seed (mean and 95% CI); [] = `seed` only
    columns: list[str] = field(default_factory=list)  # further metrics.json keys, each with its 95% CI
    figure: Optional[str] = None  # frontier = accuracy against latency and size of deploy rows (docs/deploy.md)


@dataclass
class EvaluateConfig:
    path: Optional[str] = None  # a run folder or .keras file; else model from the store


@dataclass
class ReportConfig:
    procedure: Optional[str] = None
    dataset: Optional[str] = None
    model: Optional[str] = None
    format: str = "markdown"
    output: Optional[str] = None  # also write the table to this file
    sweep: Optional[str] = None  # a multirun folder: one row per job of that sweep instead of the store


@dataclass
class PathsConfig:
    runs: str = "runs"
    sweeps: str = "multirun"  # multirun folders, and the Optuna studies of hparams_search (optuna.db)


@dataclass
class LoggerConfig:
    """Where a run's records go besides the run store (which always has history.csv)."""
    name: str = "tensorboard"
    tracking_uri: Optional[str] = None  # mlflow: null = the SQLite store <parent of paths.runs>/mlflow.db
    experiment: Optional[str] = None  # mlflow: null = the sweep folder for a multirun, else "kd-runner"
    project: Optional[str] = None  # wandb: null = "kd-runner" (a multirun sweep is a group in it)
    entity: Optional[str] = None  # wandb: null = the account's default entity
    mode: Optional[str] = None  # wandb: online | offline; null = WANDB_MODE, else online when logged in, else offline


def check(cfg) -> None:
    """Raise ConfigError naming the first shared setting that cannot work."""
    t = cfg.train
    require(t.epochs >= 1, f"train.epochs={t.epochs}: needs at least 1 epoch (e.g. train.epochs=10)")
    require(t.batch_size >= 1, f"train.batch_size={t.batch_size}: must be a positive number (e.g. train.batch_size=128)")
    require(t.lr > 0, f"train.lr={t.lr}: the learning rate must be > 0 (e.g. train.lr=0.001)")
    require(0.0 <= t.val_split < 1.0,
            f"train.val_split={t.val_split}: must be in [0, 1) (a fraction of the training split, e.g. 0.1)")
    require(t.early_stopping >= 0, f"train.early_stopping={t.early_stopping}: patience in epochs, 0 = off")
    require(not (t.early_stopping and t.val_split == 0),
            "train.early_stopping needs a validation split: set train.val_split (e.g. 0.1) or train.early_stopping=0")
    require(t.max_steps is None or t.max_steps >= 1, f"train.max_steps={t.max_steps}: must be >= 1 or null")
    require_choice(t.optimizer, OPTIMIZERS, "train.optimizer")
    require_choice(t.lr_schedule, LR_SCHEDULES, "train.lr_schedule")
    require(t.lr_schedule != "step" or len(t.lr_milestones) > 0,
            "train.lr_schedule=step needs train.lr_milestones, the epochs after which the rate decays "
            "(e.g. train.lr_milestones=[150,180,210])")
    require(all(m >= 1 for m in t.lr_milestones), f"train.lr_milestones={list(t.lr_milestones)}: epochs >= 1")
    require(0 < t.lr_decay <= 1, f"train.lr_decay={t.lr_decay}: a factor in (0, 1] (e.g. 0.1)")
    require(t.weight_decay >= 0, f"train.weight_decay={t.weight_decay}: must be >= 0 (e.g. 5e-4)")
    require(t.weight_decay == 0 or cfg.procedure.name in WEIGHT_DECAY_PROCEDURES,
            f"train.weight_decay applies to procedure=train and distill, not {cfg.procedure.name}: "
            "set train.weight_decay=0")
    require_choice(jit_setting(cfg), JIT_CHOICES, "jit_compile")
    require_choice(cfg.precision, PRECISIONS, "precision")
    require_choice(cfg.distribute, DISTRIBUTE, "distribute")
    require_choice(cfg.augment, AUGMENT, "augment")
    require(cfg.mixup_alpha > 0, f"mixup_alpha={cfg.mixup_alpha}: the Beta distribution's parameter must be > 0 "
                                 "(e.g. mixup_alpha=1.0)")
    require_choice(cfg.mixup_per, MIXUP_PER, "mixup_per")
    require(cfg.logical_cpus >= 0, f"logical_cpus={cfg.logical_cpus}: 0 (off) or the number of CPU devices to make")
    for group in ("model", "student"):
        check_network(cfg[group], group)
    for key in ("train_limit", "test_limit", "val_count"):
        value = cfg.dataset[key]
        require(value is None or value >= 1, f"dataset.{key}={value}: must be >= 1 or null")
    check_dataset(cfg.dataset)
    require_choice(cfg.report.format, REPORT_FORMATS, "report.format")
    require(cfg.suite.figure in (None, "frontier"), f"suite.figure={cfg.suite.figure}: frontier, or null for none")
    require_choice(cfg.logger.name, LOGGERS, "logger")
    if cfg.logger.name == "mlflow":
        check_mlflow(cfg.logger)
    if cfg.logger.name == "wandb":
        from importlib.util import find_spec
        require(find_spec("wandb") is not None, "logger=wandb needs wandb, which is not installed: "
                                                "pip install -e '.[wandb]' (or choose logger=tensorboard)")
        require(cfg.logger.mode is None or cfg.logger.mode in WANDB_MODES,
                f"logger.mode={cfg.logger.mode}: W&B runs online or offline (null: WANDB_MODE, else online "
                "when logged in with `wandb login`, else offline)")


def check_mlflow(logger) -> None:
    """MLflow is installed, and a file store is not given to an MLflow that refuses it."""
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec
    require(find_spec("mlflow") is not None, "logger=mlflow needs MLflow, which is not installed: "
                                             "pip install -e '.[tracking]' (or choose logger=tensorboard)")
    uri = str(logger.tracking_uri or "")
    file_store = bool(uri) and (uri.startswith("file:") or "://" not in uri)
    try:
        major = int(version("mlflow").split(".")[0])
    except (PackageNotFoundError, ValueError):
        major = 0
    allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true")
    require(not file_store or major < 3 or allowed,
            f"logger.tracking_uri={uri}: MLflow {major} refuses a file store; give a SQLite file "
            "(e.g. logger.tracking_uri=sqlite:///mlflow.db; `mlflow migrate-filestore` moves runs over) "
            "or set MLFLOW_ALLOW_FILE_STORE=true")


def check_dataset(d) -> None:
    """A user's data names its files; its settings are in range and read by its source."""
    require_choice(d.color_mode, COLOR_MODES, "dataset.color_mode")
    require_choice(str(d.stream).lower(), STREAM_CHOICES, "dataset.stream")
    require(0.0 < d.test_fraction < 1.0, f"dataset.test_fraction={d.test_fraction}: the share of each class carved "
                                         "as the test split, in (0, 1) (e.g. 0.2)")
    size = list(d.image_size) if d.image_size is not None else None
    require(size is None or (len(size) == 2 and min(size) >= 1),
            f"dataset.image_size={size}: [height, width] in pixels (e.g. dataset.image_size=[64,64])")
    if d.name in ("folder", "npz"):
        require(bool(d.path), f"dataset={d.name} reads dataset.path, which is not set: "
                              f"dataset.path={'/data/photos' if d.name == 'folder' else '/data/set.npz'}")
    if d.name == "tfds":
        require(bool(d.tfds_name), "dataset=tfds reads dataset.tfds_name, which is not set: "
                                   "dataset.tfds_name=<a data set prepared on disk> dataset.data_dir=<its folder>")
    defaults = DatasetConfig()
    for key in sorted({k for keys in USER_DATA.values() for k in keys} - {"path"}):
        readers = [name for name, keys in USER_DATA.items() if key in keys]
        require(d.name in readers or d[key] == getattr(defaults, key),
                f"dataset.{key} applies to dataset={'|'.join(readers)}, not {d.name}: remove dataset.{key}")
