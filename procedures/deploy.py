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
from src.errors import ArtifactError, ConfigError
from src.runstore import Run, file_digest, is_done, locate, produced_runs, read_json
from src.schema.deploy import ONNX_MODULES, onnx_setting
from src.tables import print_summary

log = logging.getLogger(__name__)
ROLES = ("teacher", "scratch", "student")  # a distill run's models, in table order; "model" for one file
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
    metrics.update(headline(metrics))
    if cfg.distill.quantize != "none" and not cfg.deploy.path:
        _add_qat_gain(cfg, metrics)
    atomic_labels(out, data.class_names)
    out.finish(metrics)
    return metrics


def atomic_labels(out: Run, class_names) -> None:
    """labels.txt: one class name per line, in the order of the models' outputs."""
    out.write("labels.txt", lambda tmp: tmp.write_text("".join(f"{name}\n" for name in class_names)))


def headline(m: dict) -> dict:
    """The student against the teacher: how many times smaller (LiteRT float32 file) and
    faster (LiteRT float32, batch 1, median); the share of its accuracy int8 keeps."""
    out = {}
    if "teacher_tflite_bytes" in m and "student_tflite_bytes" in m:
        out["size_ratio"] = m["teacher_tflite_bytes"] / m["student_tflite_bytes"]
        out["speedup"] = m["teacher_tflite_ms"] / m["student_tflite_ms"]
    if "scratch_test_accuracy" in m and "student_test_accuracy" in m:  # paired by seed, as distill's
        out["kd_gain"] = m["student_test_accuracy"] - m["scratch_test_accuracy"]
    role = "student" if "student_test_accuracy" in m else "model"
    if m.get(f"{role}_test_accuracy"):
        out["int8_retained"] = m[f"{role}_int8_test_accuracy"] / m[f"{role}_test_accuracy"]
    return out


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
    """One row per model and one for the student's int8 model: accuracy, agreement with the
    teacher, parameters, MACs, file sizes and batch-1 latency (median and 90th percentile)."""
    m, onnx = metrics, metrics.get("onnx")
    roles = [r for r in (*ROLES, "model") if f"{r}_test_accuracy" in m]
    names = {"teacher": f"teacher {cfg.model.name}", "scratch": f"student {cfg.student.name} from scratch",
             "student": f"student {cfg.student.name} distilled", "model": f"model {_display(m.get('model_source'))}"}
    rows = []
    for role in roles:
        rows.append(_row(m, role, names[role], "", onnx))
    last = "student" if "student" in roles else roles[-1]
    rows.append(_row(m, last, f"{names[last]} {_scheme(m['int8_scheme'])}", "int8_", onnx))
    notes = [headline_note(m)]
    errors = [m.get(f"{r}_{f}_error") for r in roles for f in ("saved_model", "tflite", "onnx")]
    errors = [e for e in errors if e is not None]
    notes.append(f"exports match Keras on {m['test_examples']} test images: largest logit difference {max(errors):.1e} "
                 f"of the largest logit (tolerance {cfg.deploy.tolerance:g}); {_scheme(m['int8_scheme'])} agrees with "
                 f"float on {m[f'{last}_int8_float_agreement']:.2%}, calibrated on {m['calibration_examples']} "
                 f"training examples")
    keras_threads = "1 thread" if m["keras_threads"] == 1 else "TensorFlow's default threads"
    notes.append(f"latency: batch 1, median (90th percentile) of {m['latency_calls']} calls, LiteRT and ONNX on 1 "
                 f"thread, Keras on {keras_threads}")
    if m.get("qat_gain") is not None:
        notes.append(f"qat_gain {m['qat_gain']:+.4f}: quantisation-aware int8 {m['student_int8_test_accuracy']:.4f} "
                     f"against post-training int8 {m['ptq_int8_test_accuracy']:.4f}")
    return rows, notes


def _row(m: dict, role: str, label: str, prefix: str, onnx: bool) -> dict:
    row = {"model": label, "test acc": m[f"{role}_{prefix}test_accuracy"],
           "agreement with teacher": m.get(f"{role}_{prefix}agreement", 1.0 if role == "teacher" else None),
           "params": m[f"{role}_params"], "MACs": m[f"{role}_macs"],
           ".keras KB": None if prefix else _kb(m[f"{role}_keras_bytes"]),
           ".tflite KB": _kb(m[f"{role}_int8_bytes" if prefix else f"{role}_tflite_bytes"]),
           "Keras ms": None if prefix else _ms(m, f"{role}_keras"),
           "LiteRT ms": _ms(m, f"{role}_int8" if prefix else f"{role}_tflite")}
    if onnx:
        row["ONNX ms"] = None if prefix else _ms(m, f"{role}_onnx")
    return row


def headline_note(m: dict) -> str:
    """"the student is N x smaller and M x faster than the teacher at batch 1; int8 keeps X of its accuracy"."""
    keeps = f"{_scheme(m['int8_scheme'])} keeps {m['int8_retained']:.1%} of its accuracy" \
        if m.get("int8_retained") is not None else ""
    if "size_ratio" not in m:
        return keeps
    return (f"the student is {_times(m['size_ratio'], 'smaller', 'larger')} and "
            f"{_times(m['speedup'], 'faster', 'slower')} than the teacher at batch 1 (LiteRT float32); {keeps}")


def _times(ratio: float, better: str, worse: str) -> str:
    """"2.4 x faster", or for a ratio below 1 the other way round ("1.1 x larger")."""
    return f"{ratio:.1f} x {better}" if ratio >= 1 else f"{1 / ratio:.1f} x {worse}"


def _scheme(scheme: str) -> str:
    return {"full": "int8", "dynamic": "dynamic-range int8", "float16": "float16"}[scheme]


def _kb(size: int) -> str:
    return f"{size / 1024:.1f}"


def _ms(m: dict, prefix: str) -> str:
    return f"{m[f'{prefix}_ms']:.3f} ({m[f'{prefix}_p90_ms']:.3f})"


def _display(source: str | None) -> str:
    return Path(source).parent.name if source and Path(source).name == "model.keras" else Path(source or "").name
