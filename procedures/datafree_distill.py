"""datafree_distill: a generator and the student trained together against the frozen
teacher (DAFL, or the adversarial DFAD), no real training data anywhere.

    python main.py procedure=datafree_distill                              # lenet -> lenet_half, DAFL
    python main.py procedure=datafree_distill generator=adversarial
    python main.py procedure=datafree_distill teacher.path=/some/where/teacher.keras student=hinton800

Nothing is chosen on real data: the run trains for generator.epochs with the method's
published settings and keeps the last student. Each epoch records the teacher-student
agreement on a fixed pool of freshly generated inputs (the data-free signal) and a grid
of generated samples. The real test split gives the final figure only. The teacher comes
from the store (trained first when missing) or teacher.path. The method: src/datafree/generator.py.
"""
from __future__ import annotations

import logging
import time

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

import models
from procedures._inputs import build_model, data_key, load_data, network_key, network_name
from procedures._upstream import (Teacher, model_identity, model_label, teacher_architecture, teacher_row,
                                  upstream_teacher)
from src import runtime
from src.artifacts import check_layers
from src.checkpoint import TrainingState, seed_states
from src.datafree.generator import (DAFL_BN_EPSILON, DEFAULT_BN_EPSILON, GeneratorDistiller, build_generator,
                                    check_shape)
from src.datafree.plots import sample_grid_png
from src.fit import predict_logits
from src.kd.scores import split_metrics, with_teacher_logits
from src.loop import EpochLoop
from src.optim import make_optimizer
from src.runstore import Run, locate
from src.tables import print_summary

log = logging.getLogger(__name__)
REPORT = {"datafree_distill": {
    "settings": ["model.name", "student.name", "generator.method", "generator.epochs", "generator.batch_size"],
    "metrics": ["test_accuracy", "teacher_test_accuracy", "fraction_of_teacher", "generated_agreement",
                "generated_classes", "epochs", "train_seconds"]}}


def settings(cfg: DictConfig) -> dict:
    """generator.*: the method, its published settings (conf/generator) and the budget,
    with the feature layer the config names (given or declared by the teacher's network),
    so that runs whose activation loss reads different layers never share a result."""
    gen = OmegaConf.to_container(cfg.generator, resolve=True)
    del gen["published"]  # always the method's own (the schema checks): not a setting of its own
    gen["feature_layer"] = named_feature_layer(cfg)
    return gen


def named_feature_layer(cfg: DictConfig) -> str | None:
    """The teacher layer of DAFL's activation loss as far as the config names it:
    generator.feature_layer, else the layer the teacher's network declares for DAFL (its
    LeNet-5 family: fc1_relu, the 120 features DAFL's code reads). None when neither
    names one, or for a teacher given by path, whose network the config does not name:
    the layer is then the output layer's input, found on the loaded teacher. Only DAFL
    reads the layer, so the adversarial method keeps what was given."""
    if cfg.generator.feature_layer or cfg.generator.method != "dafl" or cfg.teacher.path:
        return cfg.generator.feature_layer
    return models.dafl_feature_layer(cfg.model.name)


def feature_layer(cfg: DictConfig, teacher: keras.Model) -> str:
    """The teacher layer the run reads its features from: the one the config names, else
    the input of the teacher's output layer (its penultimate features)."""
    return named_feature_layer(cfg) or _output_input_layer(teacher)


def artifact(cfg: DictConfig) -> Run:
    key = {"procedure": "datafree_distill", "student": network_key(cfg.student, "student"), "dataset": data_key(cfg),
           "generator": settings(cfg),
           "teacher": model_identity(cfg, cfg.teacher.path), "seed": cfg.seed, "precision": cfg.precision}
    name = f"{network_name(cfg.student)}-from-{model_label(cfg, cfg.teacher.path)}-{cfg.generator.method}"
    return locate(cfg.paths.runs, cfg.dataset.name, "datafree_distill", name, key)


def run(cfg: DictConfig) -> dict:
    runtime.setup(cfg)
    data = load_data(cfg)  # shapes and class names; its test split for the final figure only
    check_shape(data.input_shape)
    build_model(cfg.student, data, cfg.seed, "student")  # a student that cannot be built is refused before any work
    if cfg.generator.feature_layer:
        check_layers(teacher_architecture(cfg, data), [cfg.generator.feature_layer], "the teacher",
                     "generator.feature_layer")
    teacher = upstream_teacher(cfg, data)
    features = feature_layer(cfg, teacher.model)
    out = artifact(cfg)
    metrics = out.produce(cfg, lambda: _distill(cfg, out, data, teacher, features), "datafree_distill")
    print_summary(*summary(cfg, metrics), out.dir)
    return metrics


def summary(cfg: DictConfig, metrics: dict) -> tuple[list[dict], list[str]]:
    """The teacher and the student; what the run kept and the data-free signals."""
    m = metrics
    rows = [teacher_row(cfg, **{"test acc": m["teacher_test_accuracy"]}),
            {"model": f"student {network_name(cfg.student)}, {cfg.generator.method} (no data)",
             "test acc": m["test_accuracy"]}]
    notes = [f"fraction of the teacher {m['fraction_of_teacher']:.3f}; agreement on generated inputs "
             f"{m['generated_agreement']:.3f} (the last epoch's student: nothing chosen on real data)"]
    if m.get("missing_classes"):  # the data-free sign of a collapsed generator: agreement stays high
        classes = m["generated_classes"] + m["missing_classes"]
        notes.append(f"warning: the teacher sees only {m['generated_classes']} of {classes} classes in the generated "
                     f"pool: the student saw no example of the other {m['missing_classes']} (the generator collapsed)")
    return rows, notes


def _output_input_layer(teacher: keras.Model) -> str:
    """The layer feeding the output layer: the teacher's penultimate features."""
    output = teacher.get_layer(models.output_layer(teacher))
    return output.input._keras_history.operation.name


def _distill(cfg: DictConfig, out: Run, data, teacher: Teacher, features: str) -> dict:
    gen = cfg.generator
    runtime.seed_everything(cfg.seed)
    epsilon = DAFL_BN_EPSILON if gen.method == "dafl" else DEFAULT_BN_EPSILON
    generator = build_generator(gen.latent_dim, data.input_shape, gen.width, epsilon)
    student = build_model(cfg.student, data, cfg.seed, "student")
    trainer = GeneratorDistiller(generator, student, teacher.model, gen, feature_layer=features, seed=cfg.seed,
                                 generator_optimizer=keras.optimizers.Adam(gen.lr),
                                 student_optimizer=make_optimizer(gen.student_optimizer, gen.student_lr),
                                 jit_compile=runtime.use_xla(cfg))
    pool = tf.constant(np.random.default_rng([cfg.seed, 1]).normal(size=(gen.pool, gen.latent_dim)), tf.float32)
    log.info("datafree_distill %s -> %s (%s, %d epochs x %d steps of %d generated inputs, features of %s, %d units)",
             teacher.label, network_name(cfg.student), gen.method, gen.epochs, gen.steps_per_epoch, gen.batch_size,
             features, teacher.model.get_layer(features).output.shape[-1])
    history, resumed, seconds = _fit(trainer, teacher.model, pool, gen, out, data.class_names)
    out.save_model(student)
    out.save_model(generator, "generator.keras")
    test = split_metrics(student, with_teacher_logits(teacher.model, data.test), "test")
    last = history[-1]
    metrics = {**test, "fraction_of_teacher": test["test_accuracy"] / max(test["teacher_test_accuracy"], 1e-12),
               "generated_agreement": last["generated_agreement"], "generated_classes": last["generated_classes"],
               "missing_classes": len(data.class_names) - last["generated_classes"], "epochs": len(history),
               "resumed_from_epoch": resumed, "train_seconds": seconds, "teacher_source": teacher.source,
               "generated_per_second": _generated(gen, len(history) - resumed) / max(seconds, 1e-9),
               "selection": "none: the last epoch's student (no real data chosen on)"}
    out.finish(metrics)
    return metrics


def _generated(gen, epochs: int) -> int:
    """Inputs the generator drew in `epochs` epochs: a DAFL iteration draws one batch, an
    adversarial one a batch per student step and one for the generator step."""
    per_iteration = 1 if gen.method == "dafl" else gen.student_steps + 1
    return epochs * gen.steps_per_epoch * gen.batch_size * per_iteration


def _fit(trainer: GeneratorDistiller, teacher, pool: tf.Tensor, gen, out: Run, class_names):
    """The generator's epochs in the engine's EpochLoop: each chunk is `count` compiled
    steps of fresh noise; each epoch ends with the data-free measures on the fixed pool and
    a checkpoint of both models, both optimizers and the noise state.
    Returns (history, the epoch resumed from, seconds)."""
    started = time.perf_counter()
    parts = tf.train.Checkpoint(generator=trainer.generator, student=trainer.student, noise=trainer.noise)
    optimizers = tf.train.Checkpoint(generator=trainer.generator_optimizer, student=trainer.student_optimizer)
    random = seed_states(trainer.student, trainer.generator)  # dropout's streams, beside the noise generator's
    loop = EpochLoop(TrainingState(parts, optimizers, out, random), trainer.metric_names, fix="Lower generator.lr")
    history = loop.restore()
    resumed = loop.state.epoch
    loop.run(history, gen.epochs, gen.steps_per_epoch, lambda epoch, start, count: trainer.steps(count),
             end_epoch=lambda epoch, row: _pool_measures(trainer, teacher, pool, epoch, out, class_names))
    return history, resumed, time.perf_counter() - started


def _pool_measures(trainer: GeneratorDistiller, teacher, pool: tf.Tensor, epoch: int, out: Run,
                   class_names) -> dict:
    """On the fixed pool of generated inputs: the student's agreement with the teacher and
    the spread of the teacher's classes; a grid of them by the teacher's class."""
    x = trainer.generate(pool).numpy()
    teacher_classes = np.argmax(predict_logits(teacher, x), axis=-1)
    student_classes = np.argmax(predict_logits(trainer.student, x), axis=-1)
    sample_grid_png(x, teacher_classes, list(class_names), out.file(f"samples/epoch-{epoch:03d}.png"),
                    f"generated, epoch {epoch}: rows by the teacher's class")
    counts = np.bincount(teacher_classes, minlength=len(class_names))
    return {"generated_agreement": float(np.mean(teacher_classes == student_classes)),
            "generated_classes": int(np.count_nonzero(counts))}
