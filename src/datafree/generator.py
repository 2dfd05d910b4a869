"""Generator-based data-free distillation: a generator and the student trained together
against the frozen teacher, no real data anywhere.

    dafl         (Chen et al., ICCV 2019) the generator makes inputs the teacher treats
                 like its training images: L_G = oh * CE(argmax t, t) - a * mean |f|
                 + ie * sum_k p_k log10 p_k (p the batch-mean teacher softmax, f the
                 teacher's features); the student learns KL(p_T || q_T) on the same
                 batch, cut off from the generator's gradient. Both step every iteration.
    adversarial  (DFAD, Fang et al. 2019) the generator
                 maximises the teacher-student discrepancy D = mean |s - t| (logits), the
                 student minimises it: `student_steps` student steps on fresh batches, then
                 one generator step.

The generator is DAFL's (dense -> 2 x [nearest upsampling, conv 3x3, BatchNorm,
LeakyReLU 0.2] -> conv 3x3), always run in training mode (batch statistics), with the
BatchNorm epsilon of 0.8 that DAFL's PyTorch code passes positionally (DFAD's copy has
the default). Its last layer is a sigmoid: this project's teachers take inputs in [0, 1],
where DAFL's took mean/std-standardised ones (its tanh + affine-free BatchNorm).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from src.errors import ConfigError
from src.losses import agreement, soft_target_loss

DAFL_BN_EPSILON, DEFAULT_BN_EPSILON = 0.8, 1e-3


def check_shape(input_shape: tuple) -> None:
    """The generator doubles a (H/4, W/4) map twice: refuse other sizes before any work."""
    if input_shape[0] % 4 or input_shape[1] % 4:
        raise ConfigError(f"procedure=datafree_distill: the generator doubles a (H/4, W/4) map twice; inputs of "
                          f"shape {tuple(input_shape)} are not divisible by 4 (use e.g. dataset=mnist_conv for 32x32, "
                          "or dataset.image_size=[32,32] for a folder or tfds data set)")


def build_generator(latent_dim: int, input_shape: tuple, width: int, bn_epsilon: float) -> keras.Model:
    """z [batch, latent_dim] -> images of input_shape (H and W divisible by 4), in [0, 1]."""
    check_shape(input_shape)
    height, width_px, channels = input_shape
    z = keras.Input((latent_dim,), name="noise")
    x = keras.layers.Dense(width * (height // 4) * (width_px // 4), name="project")(z)
    x = keras.layers.Reshape((height // 4, width_px // 4, width))(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="project_bn")(x)
    for i, filters in enumerate((width, width // 2), start=1):
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=bn_epsilon, name=f"conv{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv{i}_act")(x)
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="image")(x)
    return keras.Model(z, x, name="generator")


def dafl_losses(teacher_logits: tf.Tensor, features: tf.Tensor, *, oh: float, a: float, ie: float) -> dict:
    """DAFL's three generator losses and their weighted sum ("generator_loss")."""
    logits = tf.cast(teacher_logits, tf.float32)
    pseudo = tf.argmax(logits, axis=-1, output_type=tf.int32)
    one_hot = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=pseudo, logits=logits))
    activation = -tf.reduce_mean(tf.abs(tf.cast(features, tf.float32)))
    mean_probs = tf.reduce_mean(tf.nn.softmax(logits, axis=-1), axis=0)
    info_entropy = tf.reduce_sum(mean_probs * tf.math.log(mean_probs) / tf.math.log(10.0))
    return {"one_hot": one_hot, "activation": activation, "info_entropy": info_entropy,
            "generator_loss": oh * one_hot + a * activation + ie * info_entropy}


def discrepancy(student_logits: tf.Tensor, teacher_logits: tf.Tensor) -> tf.Tensor:
    """DFAD's D: the mean absolute difference of the logits over batch and classes."""
    return tf.reduce_mean(tf.abs(tf.cast(student_logits, tf.float32) - tf.cast(teacher_logits, tf.float32)))


class GeneratorDistiller:
    """The compiled steps of one method: `steps(count)` runs `count` iterations in one
    call and returns the sums of their metrics. Noise comes from a tf.random.Generator
    (checkpointed with the models, so a resumed run draws what it would have drawn)."""

    def __init__(self, generator: keras.Model, student: keras.Model, teacher: keras.Model, gen, *,
                 generator_optimizer, student_optimizer, feature_layer: str, seed: int, jit_compile: bool = False):
        self.generator, self.student, self.gen = generator, student, gen
        self.taps = keras.Model(teacher.inputs, [teacher.outputs[0], teacher.get_layer(feature_layer).output])
        self.generator_optimizer, self.student_optimizer = generator_optimizer, student_optimizer
        generator_optimizer.build(generator.trainable_variables)
        student_optimizer.build(student.trainable_variables)
        self.noise = tf.random.Generator.from_seed(seed)
        step = self._dafl_step if gen.method == "dafl" else self._adversarial_step
        self.metric_names = list(self._metric_names())
        self._step = step
        self._steps = tf.function(self._steps_py, jit_compile=jit_compile)

    def _metric_names(self):
        if self.gen.method == "dafl":
            return ("loss", "generator_loss", "one_hot", "activation", "info_entropy", "agreement")
        return ("loss", "generator_discrepancy", "agreement")

    def _latent(self) -> tf.Tensor:
        return self.noise.normal([self.gen.batch_size, self.gen.latent_dim])

    def _dafl_step(self) -> dict:
        with tf.GradientTape() as generator_tape, tf.GradientTape() as student_tape:
            x = self.generator(self._latent(), training=True)
            teacher_logits, features = self.taps(x, training=False)
            out = dafl_losses(teacher_logits, features, oh=self.gen.oh, a=self.gen.a, ie=self.gen.ie)
            student_logits = self.student(tf.stop_gradient(x), training=True)
            kd = soft_target_loss(tf.cast(student_logits, tf.float32), tf.stop_gradient(teacher_logits),
                                  self.gen.temperature)
        self._apply(self.generator_optimizer, generator_tape, out["generator_loss"], self.generator)
        self._apply(self.student_optimizer, student_tape, kd, self.student)
        return {**out, "loss": kd, "agreement": agreement(student_logits, teacher_logits)}

    def _adversarial_step(self) -> dict:
        for _ in range(self.gen.student_steps):
            x = tf.stop_gradient(self.generator(self._latent(), training=True))
            teacher_logits, _ = self.taps(x, training=False)
            with tf.GradientTape() as tape:
                student_logits = self.student(x, training=True)
                loss = discrepancy(student_logits, teacher_logits)
            self._apply(self.student_optimizer, tape, loss, self.student)
        with tf.GradientTape() as tape:
            x = self.generator(self._latent(), training=True)
            teacher_logits, _ = self.taps(x, training=False)
            against = discrepancy(self.student(x, training=True), teacher_logits)
            maximised = -against
        self._apply(self.generator_optimizer, tape, maximised, self.generator)
        return {"loss": loss, "generator_discrepancy": against,
                "agreement": agreement(student_logits, teacher_logits)}

    @staticmethod
    def _apply(optimizer, tape, loss, model) -> None:
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)

    def _steps_py(self, count: tf.Tensor) -> dict:
        totals = {name: tf.constant(0.0) for name in self.metric_names}
        for _ in tf.range(count):
            out = self._step()
            totals = {name: totals[name] + tf.cast(out[name], tf.float32) for name in totals}
        return totals

    def steps(self, count: int) -> dict:
        return self._steps(tf.constant(count))

    def generate(self, latent: tf.Tensor) -> tf.Tensor:
        return self.generator(latent, training=True)
