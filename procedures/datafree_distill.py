"""datafree_distill: a generator and the student trained together against the frozen
teacher (DAFL, or the adversarial DFAD / ZSKT variant), no real training data anywhere.

    python main.py procedure=datafree_distill                              # lenet -> lenet_half, DAFL
    python main.py procedure=datafree_distill generator.method=adversarial
    python main.py procedure=datafree_distill teacher.path=/some/where/teacher.keras student=hinton800

Nothing is chosen on real data: the run trains for generator.epochs with the method's
published settings and keeps the last student. Each epoch records the teacher-student
agreement on a fixed pool of freshly generated inputs (the data-free signal) and a grid
of generated samples. The real test split gives the final figure only. The teacher comes
from the store (trained first when missing) or teacher.path. The method: src/datafree/generator.py.
"""
from __future__ import annotations

import logging
import math
import time

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import models
from procedures._upstream import build_model, load_data, teacher_name, upstream
from src import runtime
from src.datafree.generator import DAFL_BN_EPSILON, DEFAULT_BN_EPSILON, GeneratorDistiller, build_generator
from src.datafree.plots import sample_grid_png
from src.datafree.taps import check_layers
from src.errors import TrainingDiverged
from src.fit import STEPS_PER_CALL, TrainingState, make_optimizer, predict_logits, report_epoch
from src.kd.scores import split_metrics, with_teacher_logits
from src.runstore import Run, atomic_write, locate
from src.schema.datafree import GENERATOR_DEFAULTS, generator_setting
from src.tables import format_table
from src.tracking import writes_tensorboard

log = logging.getLogger(__name__)


def settings(cfg: DictConfig) -> dict:
    """generator.*, with every null replaced by the method's published value."""
    gen = OmegaConf.to_container(cfg.generator, resolve=True)
    for key in GENERATOR_DEFAULTS[gen["method"]]:
        gen[key] = generator_setting(cfg.generator, key)
    return gen


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "datafree_distill", "student": cfg.student, "dataset": cfg.dataset, "generator": settings(cfg),
           "teacher": upstream("train").model_identity(cfg, cfg.teacher.path), "seed": cfg.seed,
           "precision": cfg.precision}
    name = f"{cfg.student.name}-from-{teacher_name(cfg, cfg.teacher.path)}-{cfg.generator.method}"
    return locate(cfg.paths.runs, cfg.dataset.name, "datafree_distill", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)  # shapes and class names; its test split for the final figure only
    teacher, source = upstream("train").trained_model(cfg, data, cfg.teacher.path, "teacher")
    feature_layer = cfg.generator.feature_layer or _output_input_layer(teacher)
    check_layers(teacher, [feature_layer])
    run_ = artifact(cfg)
    metrics = run_.produce(cfg, lambda: _distill(cfg, run_, data, teacher, source, feature_layer), "datafree_distill")
    _print_summary(cfg, metrics, run_)
    return metrics


def _output_input_layer(teacher: keras.Model) -> str:
    """The layer feeding the output layer: the teacher's penultimate features."""
    output = teacher.get_layer(models.output_layer(teacher))
    return output.input._keras_history.operation.name


def _distill(cfg: DictConfig, run_: Run, data, teacher, source: str, feature_layer: str) -> dict:
    gen = OmegaConf.create(settings(cfg))
    runtime.seed_everything(cfg.seed)
    epsilon = DAFL_BN_EPSILON if gen.method == "dafl" else DEFAULT_BN_EPSILON
    generator = build_generator(gen.latent_dim, data.input_shape, gen.width, epsilon)
    student = build_model(cfg.student, data, cfg.seed)
    trainer = GeneratorDistiller(generator, student, teacher, gen, feature_layer=feature_layer, seed=cfg.seed,
                                 generator_optimizer=keras.optimizers.Adam(gen.lr),
                                 student_optimizer=make_optimizer(gen.student_optimizer, gen.student_lr),
                                 jit_compile=runtime.use_xla(cfg))
    pool = tf.constant(np.random.default_rng([cfg.seed, 1]).normal(size=(gen.pool, gen.latent_dim)), tf.float32)
    log.info("datafree_distill %s -> %s (%s, %d epochs x %d steps of %d generated inputs, features of %s)",
             teacher.name, cfg.student.name, gen.method, gen.epochs, gen.steps_per_epoch, gen.batch_size, feature_layer)
    started = time.perf_counter()
    history, resumed = _fit(trainer, teacher, pool, gen, run_, data.class_names)
    seconds = time.perf_counter() - started
    atomic_write(run_.file("model.keras"), lambda tmp: student.save(tmp))
    atomic_write(run_.file("generator.keras"), lambda tmp: generator.save(tmp))
    test = split_metrics(student, with_teacher_logits(teacher, {"x": data.x_test, "y": data.y_test}), "test")
    metrics = {**test, "fraction_of_teacher": test["test_accuracy"] / max(test["teacher_test_accuracy"], 1e-12),
               "generated_agreement": history[-1]["generated_agreement"],
               "generated_classes": history[-1]["generated_classes"],
               "missing_classes": len(data.class_names) - history[-1]["generated_classes"], "epochs": len(history),
               "resumed_from_epoch": resumed, "train_seconds": seconds, "teacher_source": source,
               "generated_per_second": len(history) * gen.steps_per_epoch * gen.batch_size / max(seconds, 1e-9),
               "selection": "none: the last epoch's student (no real data chosen on)"}
    run_.finish(metrics, ["model.keras", "generator.keras", "history.csv"])
    return metrics


def _fit(trainer: GeneratorDistiller, teacher, pool: tf.Tensor, gen, run_: Run, class_names) -> tuple[list, int]:
    """The epoch loop: compiled steps, the progress bar, the data-free per-epoch measures,
    history.csv and a checkpoint of both models, both optimizers and the noise state."""
    parts = tf.train.Checkpoint(generator=trainer.generator, student=trainer.student, noise=trainer.noise)
    optimizers = tf.train.Checkpoint(generator=trainer.generator_optimizer, student=trainer.student_optimizer)
    state = TrainingState(parts, optimizers, run_)
    history = state.restore()
    resumed = state.epoch
    if resumed:
        log.info("resuming from the checkpoint of epoch %d in %s", resumed, run_.dir)
    writer = tf.summary.create_file_writer(str(run_.file("tensorboard"))) if writes_tensorboard() else None
    while state.epoch < gen.epochs:
        epoch = state.epoch + 1
        print(f"Epoch {epoch}/{gen.epochs}", flush=True)
        bar = keras.utils.Progbar(gen.steps_per_epoch, stateful_metrics=trainer.metric_names)
        totals = dict.fromkeys(trainer.metric_names, 0.0)
        for done in range(0, gen.steps_per_epoch, STEPS_PER_CALL):
            count = min(STEPS_PER_CALL, gen.steps_per_epoch - done)
            for name, value in trainer.steps(count).items():
                totals[name] += float(value)
            if not all(math.isfinite(v) for v in totals.values()):
                raise TrainingDiverged(f"a loss became NaN/Inf in epoch {epoch}; the last good checkpoint (epoch "
                                       f"{state.epoch}) is kept in {run_.dir}. Lower generator.lr")
            bar.update(done + count, [(k, v / (done + count)) for k, v in totals.items()])
        row = {"epoch": epoch, **{k: v / gen.steps_per_epoch for k, v in totals.items()}}
        row.update(_pool_measures(trainer, teacher, pool, epoch, run_, class_names))
        history.append(row)
        state.epoch = epoch
        report_epoch(row, 1, writer)
        state.save(history)
    return history, resumed


def _pool_measures(trainer: GeneratorDistiller, teacher, pool: tf.Tensor, epoch: int, run_: Run,
                   class_names) -> dict:
    """On the fixed pool of generated inputs: the student's agreement with the teacher and
    the spread of the teacher's classes; a grid of them by the teacher's class."""
    x = trainer.generate(pool).numpy()
    teacher_classes = np.argmax(predict_logits(teacher, x), axis=-1)
    student_classes = np.argmax(predict_logits(trainer.student, x), axis=-1)
    path = run_.file(f"samples/epoch-{epoch:03d}.png")
    atomic_write(path, lambda tmp: sample_grid_png(x, teacher_classes, list(class_names), tmp,
                                                   f"generated, epoch {epoch}: rows by the teacher's class"))
    counts = np.bincount(teacher_classes, minlength=len(class_names))
    return {"generated_agreement": float(np.mean(teacher_classes == student_classes)),
            "generated_classes": int(np.count_nonzero(counts))}


def _print_summary(cfg: DictConfig, m: dict, run_: Run) -> None:
    rows = [{"model": f"teacher {teacher_name(cfg, cfg.teacher.path)}", "test acc": m["teacher_test_accuracy"]},
            {"model": f"student {cfg.student.name}, {cfg.generator.method} (no data)", "test acc": m["test_accuracy"]}]
    print(format_table(rows).rstrip(), flush=True)
    print(f"fraction of the teacher {m['fraction_of_teacher']:.3f}; agreement on generated inputs "
          f"{m['generated_agreement']:.3f} (the last epoch's student: nothing chosen on real data)\n"
          f"artifacts: {run_.dir}", flush=True)
    if m.get("missing_classes"):  # the data-free sign of a collapsed generator: agreement stays high
        classes = m["generated_classes"] + m["missing_classes"]
        print(f"warning: the teacher sees only {m['generated_classes']} of {classes} classes in the generated pool: "
              f"the student saw no example of the other {m['missing_classes']} (the generator collapsed)", flush=True)
