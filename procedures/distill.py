"""distill: Hinton et al. (2015) knowledge distillation of `model` (the teacher) into
`student`, on the training split or on data reconstructed without it (data-free).

    python main.py                                   # convnet -> hinton800 at T=8 on mnist_sample
    python main.py procedure=distill model=hinton1200 student=hinton800 dataset=fashion_mnist
    python main.py procedure=distill teacher.path=/some/where/teacher.keras student=lenet_half
    python main.py procedure=distill model=keras_app model.arch=MobileNetV3Small student.path=my_student.keras

The teacher comes from the store (trained first when missing) or teacher.path. Its
logits on the training data are computed once and cached, so an epoch costs only the
student's passes. The same student trained from scratch with the same settings is the
baseline (distill.baseline). Evaluation is on the real test split, true labels, T=1.
The method: src/kd and docs/distill.md.
"""
from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

import datasets
from procedures._inputs import build_model, data_key, load_data, network_key, network_name, optimizer_for
from procedures._upstream import (Teacher, baseline_run, model_identity, model_label, paired_gain,
                                  teacher_architecture, teacher_row, upstream, upstream_config, upstream_run,
                                  stored_teacher_outputs, upstream_teacher)
from src import runtime
from src.deploy import summary as deploy_summary
from src.artifacts import check_layers, load_model
from src.augment import augment_for, augment_key
from src.deploy.quantize import quantization_aware
from src.errors import ArtifactError
from src.fit import Fitter
from src.kd.features import check_feature_pairs, make_feature_loss
from src.kd.loss import make_loss
from src.kd.scores import gap_recovered, split_metrics, with_teacher_logits
from src.optim import steps_per_epoch
from src.runstore import Run, file_digest, locate
from src.schema.kd import FEATURE_METHODS, METHOD_SECTIONS
from src.tables import print_summary

log = logging.getLogger(__name__)
LOSS_KEYS = ("temperature", "ce_weight", "kd_weight", "t2_scale", "soft_loss", "data")
REPORT = {"distill": {
    "settings": ["model.name", "student.name", "distill.method", "distill.temperature", "distill.ce_weight",
                 "distill.kd_weight", "distill.data"],
    "metrics": ["val_accuracy", "val_kd_gain", "test_accuracy", "teacher_test_accuracy", "scratch_test_accuracy",
                "kd_gain", "agreement", "gap_recovered", "teacher_outputs"]}}


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "distill", "student": network_key(cfg.student, "student"), "dataset": data_key(cfg),
           "train": cfg.train,
           "distill": loss_key(cfg.distill), "seed": cfg.seed, "precision": cfg.precision,
           "teacher": model_identity(cfg, cfg.teacher.path), "augment": augment_key(cfg)}
    if _stores_outputs(cfg):  # the teacher's logits read from the store, rounded to teacher.outputs
        key["teacher_outputs"] = cfg.teacher.outputs
    if cfg.distill.quantize != "none":  # a quantisation-aware student is another student
        key["quantize"] = cfg.distill.quantize
    if cfg.distill.data == "reconstructed":
        key["reconstructed"] = sorted(file_digest(path) for path in _reconstructed_files(cfg))
    name = f"{network_name(cfg.student)}-from-{model_label(cfg, cfg.teacher.path)}"
    return locate(cfg.paths.runs, cfg.dataset.name, "distill", name, key)


def loss_key(kd) -> dict:
    """The distill.* settings that shape the loss; a method's own settings only when it is used."""
    key = {k: kd[k] for k in LOSS_KEYS}
    if kd.method != "hinton" or kd.standardize:
        key.update(method=kd.method, standardize=kd.standardize)
        if kd.method in METHOD_SECTIONS:
            key[kd.method] = kd[METHOD_SECTIONS[kd.method]]
    return key


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)
    if cfg.distill.data_path:  # a user's file is read and checked before anything is trained
        _reconstructed_data(cfg, data)
    _check_networks(cfg, data)
    teacher = upstream_teacher(cfg, data)
    scratch = baseline_run(cfg, "train", {"model": dict(cfg.student)}, "the distill baseline (student from scratch)") \
        if cfg.distill.baseline else None
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _distill(cfg, out, data, teacher, scratch), "distill")
    if cfg.distill.deploy:  # export and measure the three models (procedure=deploy, docs/deploy.md)
        metrics = {**metrics, **upstream("deploy").deployed(upstream_config(cfg, "deploy"))}
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """The teacher, the scratch baseline and the distilled student; the paired gain."""
    m = metrics
    rows = [teacher_row(cfg, **{"val acc": m.get("teacher_val_accuracy"), "test acc": m["teacher_test_accuracy"],
                                "agreement with teacher": 1.0})]
    if "scratch_test_accuracy" in m:
        rows.append({"model": f"student {network_name(cfg.student)} from scratch",
                     "val acc": m.get("scratch_val_accuracy"),
                     "test acc": m["scratch_test_accuracy"], "agreement with teacher": m["scratch_agreement"]})
    rows.append({"model": f"student {network_name(cfg.student)} distilled", "val acc": m.get("val_accuracy"),
                 "test acc": m["test_accuracy"], "agreement with teacher": m["agreement"]})
    notes = []
    if m.get("kd_gain") is not None:
        recovered = m.get("gap_recovered")
        notes.append(f"kd_gain {m['kd_gain']:+.4f}" + (f" (validation {m['val_kd_gain']:+.4f})"
                                                      if m.get("val_kd_gain") is not None else "")
                     + (f", gap recovered {recovered:.0%}" if recovered is not None
                        else ", teacher no better than scratch: no gap to recover"))
    if "deploy_run" in m:
        notes.append(deploy_summary.headline_note(m))
    return rows, notes


def _check_networks(cfg: DictConfig, data) -> None:
    """The student builds and, for a feature method, every named layer exists and each
    pair can be matched, before a teacher or baseline is trained (architectures are built
    for the check; a teacher file is loaded). A teacher the store trains is checked by its
    train run, before that run starts."""
    student = build_model(cfg.student, data, cfg.seed, "student")
    if cfg.distill.method not in FEATURE_METHODS:
        return
    names, teacher = cfg.distill.features, teacher_architecture(cfg, data)
    check_layers(student, list(names.student_layers), "the student", "distill.features.student_layers")
    check_layers(teacher, list(names.teacher_layers), "the teacher", "distill.features.teacher_layers")
    check_feature_pairs(student, teacher, cfg.distill)


def _reconstructed_files(cfg: DictConfig) -> list[Path]:
    """The data.npz file(s) to distill on: distill.data_path, else the store's
    optimize_dataset run for distill.objective (or shards of it that cover every class),
    produced first when missing and auto_prereqs=true."""
    if cfg.distill.data_path:
        path = Path(cfg.distill.data_path).expanduser()
        path = path / "data.npz" if path.is_dir() else path
        if not path.is_file():
            raise ArtifactError(f"distill.data_path={cfg.distill.data_path}: no data.npz there; give the data.npz "
                                f"of an optimize_dataset run (or its folder)")
        return [path]
    source = upstream_config(cfg, "optimize_dataset", {"optimize.objective": cfg.distill.objective,
                                                       "optimize.classes": None})
    found = upstream("optimize_dataset").reconstruction_files(source)
    if found:
        return found
    return [upstream_run("optimize_dataset", source, why="distill.data=reconstructed").file("data.npz")]


def _reconstructed_data(cfg: DictConfig, data: datasets.Dataset) -> tuple[datasets.Dataset, str]:
    """The reconstructed data set and where it came from; refused when its inputs do not
    have the shape of the data set the student is tested on."""
    paths = _reconstructed_files(cfg)
    fake = datasets.load({"name": "reconstructed", "path": [str(p) for p in paths],
                          "split_seed": cfg.dataset.split_seed}, val_split=cfg.train.val_split)
    if fake.input_shape != data.input_shape:
        raise ArtifactError(f"reconstructed data {paths[0]} has inputs of shape {fake.input_shape} but dataset "
                            f"{data.name} (which the student is tested on) has {data.input_shape}")
    where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} shards in {paths[0].parent.parent}"
    return fake, f"reconstructed {where}"


def _training_data(cfg: DictConfig, data: datasets.Dataset) -> tuple[dict, dict, str]:
    """(train arrays, validation arrays, description): real or reconstructed inputs."""
    if cfg.distill.data == "dataset":
        return data.train, data.val, f"{data.name} training split"
    fake, source = _reconstructed_data(cfg, data)
    return fake.train, fake.val, source


def _caches_teacher(cfg: DictConfig) -> bool:
    """The teacher's logits are computed once, not at every step: no augmentation or mixup
    changes the inputs, and the loss reads logits only."""
    return cfg.distill.cache_teacher and cfg.augment == "none" and cfg.distill.method not in FEATURE_METHODS


def _stores_outputs(cfg: DictConfig) -> bool:
    """Cached logits on the real splits come from the store (shared by every student)."""
    return _caches_teacher(cfg) and cfg.distill.data == "dataset"


def _distill(cfg, out: Run, data, teacher: Teacher, scratch: dict | None) -> dict:
    kd = cfg.distill
    train, val, source = _training_data(cfg, data)
    augment = augment_for(cfg)
    cached = _caches_teacher(cfg)
    stored = stored_teacher_outputs(cfg, teacher, data) if _stores_outputs(cfg) else None
    if stored is not None:
        train, val = {**train, "teacher_logits": stored["train"]}, {**val, "teacher_logits": stored["val"]}
    elif cached:
        train, val = with_teacher_logits(teacher.model, train), with_teacher_logits(teacher.model, val)
    how = f"stored ({cfg.teacher.outputs})" if stored is not None else "cached" if cached else \
        "computed per step" + (f" (augment={cfg.augment})" if augment else "")
    log.info("distill %s -> %s on %s (%s%s, T=%g, ce_weight=%g, kd_weight=%g, teacher logits %s)", teacher.label,
             network_name(cfg.student), source, kd.method, " on standardised logits" if kd.standardize else "",
             kd.temperature, kd.ce_weight, kd.kd_weight, how)
    student = build_model(cfg.student, data, cfg.seed, "student")
    optimizer = optimizer_for(cfg, len(train["x"]))
    steps = steps_per_epoch(len(train["x"]), cfg.train.batch_size, cfg.train.max_steps)
    epoch = lambda: optimizer.iterations // steps + 1  # noqa: E731  (1-indexed; resumes with the optimizer)
    if kd.method in FEATURE_METHODS:
        trained, loss = make_feature_loss(student, teacher.model, kd, augment, epoch=epoch)
    else:  # distill.quantize=int8: the student's weights trained through its fake-quantised clone
        trained = quantization_aware(student) if kd.quantize == "int8" else student
        loss = make_loss(trained, teacher.model, kd, cached, augment, epoch=epoch)
    fitter = Fitter(trained, loss, optimizer, jit_compile=runtime.use_xla(cfg), weight_decay=cfg.train.weight_decay,
                    random_sources=(augment,))
    result = fitter.fit(train, epochs=cfg.train.epochs, batch_size=cfg.train.batch_size, seed=cfg.seed, run=out,
                        val=val, early_stopping=cfg.train.early_stopping, max_steps=cfg.train.max_steps,
                        monitor="accuracy" if kd.method == "dkd" else "loss")  # DKD's loss grows in its warm-up
    out.save_model(student)
    test = {**data.test, "teacher_logits": stored["test"]} if stored is not None else \
        with_teacher_logits(teacher.model, data.test)
    held_out = split_metrics(student, with_teacher_logits(teacher.model, val), "val") if len(val["x"]) else {}
    metrics = {**split_metrics(student, test, "test"), "teacher_source": teacher.source,
               "val_accuracy": held_out.get("val_accuracy"), "val_agreement": held_out.get("val_agreement"),
               "teacher_val_accuracy": held_out.get("teacher_val_accuracy"),
               "epochs": result.epochs_run, "best_epoch": result.best_epoch, "train_seconds": result.seconds,
               "resumed_from_epoch": result.resumed_from, "train_examples": len(train["x"]),
               "teacher_outputs": how, "streamed": result.streamed_rows is not None,
               "student_params": int(student.count_params()), "teacher_params": int(teacher.model.count_params())}
    if scratch is not None:
        _add_scratch(metrics, scratch, test, same_validation=kd.data == "dataset")
    metrics["agreement"] = metrics.pop("test_agreement")
    out.finish(metrics)
    return metrics


def _add_scratch(metrics: dict, scratch: dict, test: dict, same_validation: bool) -> None:
    """The scratch student on the same test split, the paired gain over it (on the
    validation split too when the student was validated on the same real split) and the
    share of the teacher's lead recovered."""
    baseline = split_metrics(load_model(Path(scratch["dir"]), "scratch student"), test, "scratch_test")
    metrics.update(scratch_test_accuracy=baseline["scratch_test_accuracy"], scratch_run=scratch["dir"],
                   scratch_agreement=baseline["scratch_test_agreement"])
    if same_validation:
        metrics["scratch_val_accuracy"] = scratch.get("val_accuracy")
    paired_gain(metrics, {"test_accuracy": metrics["scratch_test_accuracy"], "val_accuracy": scratch.get("val_accuracy")},
                "kd", validation=same_validation)
    metrics["gap_recovered"] = gap_recovered(metrics["test_accuracy"], metrics["scratch_test_accuracy"],
                                             metrics["teacher_test_accuracy"])
