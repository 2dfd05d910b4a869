"""deploy: export a run's models and measure what each costs to run.

    python main.py procedure=deploy                       # the distill run of this config (the main job's)
    python main.py procedure=deploy model=lenet student=lenet_half distill.temperature=4
    python main.py procedure=deploy deploy.path=runs/mnist_sample/train/lenet-<hash>
    python main.py procedure=deploy deploy.path=/some/where/model.keras deploy.int8=dynamic

The models: the teacher, the scratch baseline and the distilled student of this config's
distill run (produced first when missing and auto_prereqs=true), or the run or .keras
file deploy.path names (a distill run brings its teacher and baseline). Each gets a
SavedModel, LiteRT float32 and int8 (calibrated on training-split examples), and ONNX when
the extra is installed, each checked against the Keras model on the test split; then
parameters, MACs, file sizes, batch-1 latency and test accuracy. The method: src/deploy
and docs/deploy.md.
"""
from __future__ import annotations

import contextlib
import logging
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from procedures._inputs import data_key, load_data
from procedures._upstream import model_label, upstream, upstream_config, upstream_run
from src import runtime
from src.artifacts import check_fits, load_model, resolve_model_file
from src.deploy import bundle
from src.deploy import summary as deploy_summary
from src.errors import ArtifactError, ConfigError
from src.runstore import Run, file_digest, is_done, locate, produced_runs, read_json
from src.schema.deploy import ONNX_MODULES, onnx_setting
from src.tables import print_summary

log = logging.getLogger(__name__)
REPORT = {"deploy": {
    "settings": ["model.name", "student.name", "deploy.path", "deploy.int8", "distill.quantize"],
    "metrics": ["student_test_accuracy", "student_int8_test_accuracy", "int8_retained", "student_macs",
                "student_tflite_bytes", "student_int8_bytes", "student_tflite_ms", "student_int8_ms", "size_ratio",
                "speedup", "qat_gain"]}}


def run(cfg: DictConfig) -> dict:
    distill_run = None if cfg.deploy.path else upstream("distill").artifact(upstream_config(cfg, "distill"))
    threads = _one_thread() if distill_run is None or distill_run.is_done() else 0  # before TensorFlow's first op
    runtime.setup(cfg)
    data = load_data(cfg)
    if cfg.deploy.calibration > len(data.x_train):
        raise ConfigError(f"deploy.calibration={cfg.deploy.calibration}: the training split of {data.name} has only "
                          f"{len(data.x_train)} examples; fix: deploy.calibration={len(data.x_train)} or fewer")
    files = sources(cfg, produce=True)
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _deploy(cfg, out, data, files, threads), "deploy")
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


HEADLINE = ("size_ratio", "speedup", "int8_retained", "int8_scheme", "student_int8_test_accuracy", "student_tflite_ms",
            "student_int8_ms", "student_tflite_bytes", "student_int8_bytes", "student_macs", "teacher_macs")


def deployed(cfg: DictConfig) -> dict:
    """What distill.deploy=true adds to a distill run's figures: the deploy run's headline
    metrics and its folder (deploy_run)."""
    metrics = run(cfg)
    return {"deploy_run": str(produced_runs()[-1]), **{k: metrics[k] for k in HEADLINE if k in metrics}}


def sources(cfg: DictConfig, produce: bool = False) -> dict[str, Path]:
    """The .keras file of each model to deploy, by role: deploy.path (a distill run brings
    its teacher and scratch baseline), else this config's distill run: produced first
    when missing and `produce` and auto_prereqs=true, else refused."""
    if cfg.deploy.path:
        folder = Path(cfg.deploy.path).expanduser()
        if folder.is_dir() and is_done(folder) and not (folder / "model.keras").exists():
            made_by = OmegaConf.select(OmegaConf.load(folder / "config.yaml"), "procedure.name")
            raise ArtifactError(f"deploy.path={cfg.deploy.path}: that {made_by} run has no model.keras; give a train "
                                "or distill run, or a .keras file")
        if folder.is_dir() and is_done(folder) and folder.parent.name == "distill":
            return _distill_models(folder)
        return {"model": resolve_model_file(folder, "deploy.path")}
    config = upstream_config(cfg, "distill", {"distill.deploy": False})
    fix = "run `python main.py procedure=distill ...` with the same settings first, or give deploy.path=<a run or .keras>"
    run = upstream_run("distill", config, why="procedure=deploy", fix=fix) if produce \
        else upstream("distill").artifact(config)
    if not run.is_done():
        raise ArtifactError(f"procedure=deploy needs the finished distill run {run.dir}: {fix}")
    return _distill_models(run.dir)


def _distill_models(folder: Path) -> dict[str, Path]:
    metrics = read_json(folder / "metrics.json")
    found = {"teacher": resolve_model_file(metrics["teacher_source"], "the distill run's teacher")}
    if metrics.get("scratch_run"):
        found["scratch"] = resolve_model_file(metrics["scratch_run"], "the distill run's scratch baseline")
    found["student"] = resolve_model_file(folder, "the distilled student")
    return found


def artifact(cfg: DictConfig) -> Run:
    """Keyed by the content of the models it exports (a re-trained model gets new exports),
    the data, the seed (which calibration examples) and the deploy.* settings."""
    files = sources(cfg)
    settings = {k: v for k, v in OmegaConf.to_container(cfg.deploy, resolve=True).items() if k != "path"}
    key = {"procedure": "deploy", "models": {role: file_digest(path) for role, path in files.items()},
           "dataset": data_key(cfg), "seed": cfg.seed, "deploy": settings, "onnx": _wants_onnx(cfg)}
    if cfg.deploy.path:
        name = Path(cfg.deploy.path).expanduser().name.removesuffix(".keras")
    else:
        name = f"{cfg.student.name}-from-{model_label(cfg, cfg.teacher.path)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "deploy", name, key)


def _wants_onnx(cfg: DictConfig) -> bool:
    setting = onnx_setting(cfg)
    return setting == "true" or (setting == "auto" and all(find_spec(m) for m in ONNX_MODULES))


def _one_thread() -> int:
    """Ask TensorFlow for one intra-op and one inter-op thread, which it takes only before
    its first op: 1 when granted, 0 (its default pools) when it had started already."""
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    return tf.config.threading.get_intra_op_parallelism_threads()


def _deploy(cfg: DictConfig, out: Run, data, files: dict[str, Path], threads: int) -> dict:
    d = cfg.deploy
    order = np.random.default_rng(cfg.seed).permutation(len(data.x_train))[:d.calibration]
    plan = bundle.Plan(scheme=d.int8, calibration=data.x_train[np.sort(order)], onnx=_wants_onnx(cfg),
                       tolerance=d.tolerance, warmup=d.warmup, calls=d.calls)
    loaded = {}
    for role, path in files.items():
        loaded[role] = load_model(path, f"the {role}")
        check_fits(loaded[role], data.input_shape, data.num_classes, data.name, f"the {role}")
    log.info("deploy %s: SavedModel, LiteRT float32 and %s%s; int8 calibrated on %d training examples",
             ", ".join(f"{role} {model.name}" for role, model in loaded.items()), d.int8,
             ", ONNX" if plan.onnx else "", d.calibration)
    with contextlib.ExitStack() as stack:  # every conversion first: a model that cannot convert stops here
        staged = {role: bundle.stage(role, model, out.dir, plan, stack) for role, model in loaded.items()}
        written = {role: bundle.write(staged[role], out.dir / role, plan) for role in staged}
    metrics: dict = {"int8_scheme": d.int8, "quantize": cfg.distill.quantize, "calibration_examples": int(d.calibration), "latency_calls": d.calls,
                     "keras_threads": threads, "onnx": plan.onnx, "test_examples": len(data.x_test)}
    teacher_logits = None
    for role, model in loaded.items():
        figures, logits = bundle.measure(model, written[role], data.x_test, data.y_test, teacher_logits, plan)
        teacher_logits = logits if role == "teacher" else teacher_logits
        metrics.update({f"{role}_{name}": value for name, value in figures.items()})
        metrics[f"{role}_source"] = str(files[role])
    metrics.update(deploy_summary.headline(metrics))
    if cfg.distill.quantize != "none" and not cfg.deploy.path:
        _add_qat_gain(cfg, metrics)
    atomic_labels(out, data.class_names)
    out.finish(metrics)
    return metrics


def atomic_labels(out: Run, class_names) -> None:
    """labels.txt: one class name per line, in the order of the models' outputs."""
    out.write("labels.txt", lambda tmp: tmp.write_text("".join(f"{name}\n" for name in class_names)))


def _add_qat_gain(cfg: DictConfig, metrics: dict) -> None:
    """qat_gain: the quantisation-aware student's int8 test accuracy minus the int8
    accuracy of the plain distilled student of the same seed (post-training int8): a
    paired gain, so src.stats gives the interval of the difference."""
    log.info("qat_gain needs the post-training int8 student of the same settings: deploying it")
    baseline = upstream("deploy").run(upstream_config(cfg, "deploy", {"distill.quantize": "none",
                                                                      "distill.deploy": False}))
    metrics["ptq_int8_test_accuracy"] = baseline["student_int8_test_accuracy"]
    metrics["qat_gain"] = metrics["student_int8_test_accuracy"] - baseline["student_int8_test_accuracy"]
    metrics["ptq_run"] = str(produced_runs()[-1])


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """One row per model and one for the student's int8 model (src/deploy/summary.py)."""
    names = {"teacher": f"teacher {cfg.model.name}", "scratch": f"student {cfg.student.name} from scratch",
             "student": f"student {cfg.student.name} distilled",
             "model": f"model {deploy_summary.display(metrics.get('model_source'))}"}
    return deploy_summary.table(metrics, names, cfg.deploy.tolerance)
