"""Exports of a Keras model: a SavedModel (`model.export`), LiteRT flatbuffers converted
from that SavedModel (the converter's Keras-model path is broken on Keras 3), and ONNX
(`model.export(format="onnx")`, through tf2onnx).

LiteRT schemes (`deploy.int8`):
    float32   no quantisation
    full      integer-only int8: weights per channel, activations per tensor calibrated on
              training-split examples, int8 input and output (what integer-only
              accelerators and microcontrollers run)
    dynamic   int8 weights, float activations (no calibration)
    float16   float16 weights, float activations
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import keras
import numpy as np

SCHEMES = ("float32", "full", "dynamic", "float16")
for _chatty in ("tensorflow", "tf2onnx"):  # "Assets written to ...", the ONNX optimiser's per-pass counts
    logging.getLogger(_chatty).setLevel(logging.WARNING)


@contextlib.contextmanager
def staged_saved_model(model: keras.Model, parent: Path) -> Iterator[Path]:
    """A SavedModel of `model` in a hidden temporary folder under `parent`, removed on exit
    unless it was moved away (see `publish`)."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".stage-", dir=parent))
    try:
        model.export(str(folder / "saved_model"), format="tf_saved_model", verbose=False)
        yield folder / "saved_model"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(staged: Path, final: Path) -> Path:
    """Move a staged folder into place in one rename (a previous copy is replaced); the
    stage is on the same file system, under the run's folder."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, final)
    return final


def convert(saved_model: Path, scheme: str, calibration: np.ndarray | None = None) -> bytes:
    """The LiteRT flatbuffer of a SavedModel under `scheme` (SCHEMES); `full` needs the
    calibration inputs, fed one example at a time as the converter asks."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if scheme != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if scheme == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if scheme == "full":
        examples = np.asarray(calibration, dtype="float32")
        converter.representative_dataset = lambda: ([examples[i:i + 1]] for i in range(len(examples)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def export_onnx(model: keras.Model, path: Path) -> Path:
    """`model` as ONNX at `path` (written to a temporary name, then renamed)."""
    model(np.zeros((1, *model.input_shape[1:]), "float32"))  # Keras refuses to export a model never called
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        model.export(str(tmp), format="onnx", verbose=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
