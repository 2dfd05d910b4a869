"""Feature distillation: FitNets hints (Romero et al. 2015) and attention transfer
(Zagoruyko & Komodakis 2017), on named teacher and student layers.

    fitnet  mean over all elements of (r(f_s) - f_t)^2, with r a regressor trained with the
            student that maps its feature to the teacher's shape (conv + BN + ReLU, as the
            reference code; 1x1 when the sizes match, strided or transposed when they do not)
    at      per layer pair, q = flatten(mean over channels of f^2), L2-normalised per example;
            mean over the batch and the positions of (q_s - q_t)^2 (the larger map is
            average-pooled to the smaller), summed over the pairs

Both need the teacher's features on the student's own batch, so the teacher runs live.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from src.artifacts import layer_tap
from src.errors import ConfigError
from src.losses import label_mix

NORM_EPS = 1e-12  # in the L2 normalisation of an attention map, as the reference code
DEFAULT_WEIGHTS = {"fitnet": 100.0, "at": 1000.0}  # the reference code's (RepDistiller, mdistiller)


def attention(feature: tf.Tensor) -> tf.Tensor:
    """[batch, H, W, C] -> [batch, H * W]: mean of the squared activations over channels,
    L2-normalised per example."""
    maps = tf.reduce_mean(tf.square(tf.cast(feature, tf.float32)), axis=-1)
    flat = tf.reshape(maps, [tf.shape(maps)[0], -1])
    return flat / tf.maximum(tf.norm(flat, axis=-1, keepdims=True), NORM_EPS)


def adaptive_pool_matrix(size: int, out: int) -> np.ndarray:
    """[out, size]: row i averages positions floor(i * size / out) .. ceil((i + 1) * size / out) - 1,
    the windows of PyTorch's adaptive average pooling (the reference code's)."""
    matrix = np.zeros((out, size), "float32")
    for i in range(out):
        start, stop = (i * size) // out, -(-(i + 1) * size // out)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


def _pool_to(feature: tf.Tensor, height: int) -> tf.Tensor:
    """feature [batch, H, W, C] average-pooled adaptively to [batch, height, height * W / H, C]:
    whole multiples pool by blocks, other sizes (7 to 4) by overlapping windows."""
    rows, cols = int(feature.shape[1]), int(feature.shape[2])
    width = max(1, round(cols * height / rows))
    if (rows, cols) == (height, width):
        return feature
    if rows % height == 0 and cols % width == 0 and rows // height == cols // width:
        return tf.nn.avg_pool2d(feature, rows // height, rows // height, "VALID")  # the same windows, one op
    pool_rows = tf.constant(adaptive_pool_matrix(rows, height))
    pool_cols = tf.constant(adaptive_pool_matrix(cols, width))
    return tf.einsum("ih,bhwc,jw->bijc", pool_rows, tf.cast(feature, tf.float32), pool_cols)


def attention_loss(student_feature: tf.Tensor, teacher_feature: tf.Tensor) -> tf.Tensor:
    """Mean over batch and positions of the squared difference of the attention maps."""
    if student_feature.shape.rank != 4 or teacher_feature.shape.rank != 4:
        raise ConfigError("distill.method=at needs convolutional layers ([batch, H, W, C] outputs); "
                          "pick layers before the flatten")
    height = min(int(student_feature.shape[1]), int(teacher_feature.shape[1]))
    qs = attention(_pool_to(student_feature, height))
    qt = attention(_pool_to(teacher_feature, height))
    return tf.reduce_mean(tf.square(qs - qt))


def hint_loss(regressed: tf.Tensor, teacher_feature: tf.Tensor) -> tf.Tensor:
    """Mean over every element of the squared difference (the reference code's MSE)."""
    return tf.reduce_mean(tf.square(tf.cast(regressed, tf.float32) - tf.cast(teacher_feature, tf.float32)))


def regressor(student_shape: tuple, teacher_shape: tuple, name: str) -> keras.Sequential:
    """The FitNets regressor from a student feature's shape to a teacher feature's (no batch
    dimension), built: Dense for vectors; for maps a conv (1x1 at equal size, 3x3 stride k
    when the student's map is k times larger, 4x4 transposed stride 2 when it is half)."""
    if len(student_shape) == 1 and len(teacher_shape) == 1:
        body = [keras.layers.Dense(teacher_shape[0])]
    elif len(student_shape) == 3 and len(teacher_shape) == 3:
        (hs, _, _), (ht, _, ct) = student_shape, teacher_shape
        if hs == ht:
            body = [keras.layers.Conv2D(ct, 1)]
        elif hs % ht == 0:
            body = [keras.layers.Conv2D(ct, 3, strides=hs // ht, padding="same")]
        elif 2 * hs == ht:
            body = [keras.layers.Conv2DTranspose(ct, 4, strides=2, padding="same")]
        else:
            raise ConfigError(f"distill.features: a student map of {hs}x{hs} cannot be regressed onto the teacher's "
                              f"{ht}x{ht}; pick layers of equal size, or sizes a whole factor apart")
    else:
        raise ConfigError(f"distill.features: student feature shape {student_shape} and teacher shape "
                          f"{teacher_shape} are not both vectors or both maps")
    return keras.Sequential([keras.Input(student_shape), *body, keras.layers.BatchNormalization(),
                             keras.layers.ReLU()], name=name)


def check_feature_pairs(student: keras.Model, teacher: keras.Model, kd) -> None:
    """A ConfigError before any work when a layer pair of distill.features cannot be
    matched: fitnet's regressor cannot map the student's shape to the teacher's, or at is
    given a layer that is not a map."""
    for s_name, t_name in zip(kd.features.student_layers, kd.features.teacher_layers):
        s_shape = tuple(student.get_layer(s_name).output.shape[1:])
        t_shape = tuple(teacher.get_layer(t_name).output.shape[1:])
        if kd.method == "fitnet":
            regressor(s_shape, t_shape, "check")
        elif len(s_shape) != 3 or len(t_shape) != 3:
            raise ConfigError(f"distill.method=at needs convolutional layers ([batch, H, W, C] outputs), but the "
                              f"student's {s_name} gives {s_shape} and the teacher's {t_name} {t_shape}: pick layers "
                              "before the flatten")


class StudentWithRegressors(keras.Model):
    """The student and its FitNets regressors as one trainable model, so that checkpoints
    (and resume) keep both; only the student is saved as the run's model."""

    def __init__(self, student: keras.Model, regressors: list[keras.Model]):
        super().__init__(name=f"{student.name}_with_regressors")
        self.student = student
        self.regressors = regressors
        self.built = True  # its parts are built: weights can be saved before a first call

    def call(self, x, training=False):
        return self.student(x, training=training)


def make_feature_loss(student: keras.Model, teacher: keras.Model, kd, augment=None, epoch=None):
    """(the model to train, loss_fn) for distill.method=fitnet|at: the logit loss of
    method_loss (the Hinton term at kd's weights) plus weight * the feature loss summed over
    the layer pairs. The teacher runs live on the student's (augmented) batch."""
    from src.kd.loss import method_loss
    pairs = kd.features
    teacher_taps = layer_tap(teacher, list(pairs.teacher_layers), with_logits=True)
    student_taps = layer_tap(student, list(pairs.student_layers), with_logits=True)
    weight = pairs.weight if pairs.weight is not None else DEFAULT_WEIGHTS[kd.method]
    regressors = []
    if kd.method == "fitnet":
        shapes = zip(student_taps.outputs[1:], teacher_taps.outputs[1:])
        regressors = [regressor(tuple(s.shape[1:]), tuple(t.shape[1:]), f"regressor{i}")
                      for i, (s, t) in enumerate(shapes)]
    trained = StudentWithRegressors(student, regressors) if regressors else student

    def loss_fn(batch: dict, training: bool) -> dict:
        if training and augment is not None:
            batch = augment(batch)
        teacher_logits, *teacher_features = teacher_taps(batch["x"], training=False)
        student_logits, *student_features = student_taps(batch["x"], training=training)
        out = method_loss(student_logits, teacher_logits, batch.get("y"), kd,
                          epoch=epoch() if epoch is not None else 1, mix=label_mix(batch))
        if regressors:
            terms = [hint_loss(r(f, training=training), t)
                     for r, f, t in zip(regressors, student_features, teacher_features)]
        else:
            terms = [attention_loss(f, t) for f, t in zip(student_features, teacher_features)]
        out["feature_loss"] = tf.add_n(terms)
        out["loss"] = out["loss"] + weight * out["feature_loss"]
        return out
    return trained, loss_fn

