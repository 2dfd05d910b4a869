"""One model's deploy bundle: staged (every conversion done in memory, an integer-only
int8 model checked to be integer-only) before anything is written, then written, then
checked against the Keras model and measured.

Files, in the model's folder:
    model.keras                the Keras model measured
    saved_model/               model.export(): the TensorFlow Serving / TF.js / converter input
    model_float32.tflite       LiteRT, no quantisation
    model_<scheme>.tflite      LiteRT, deploy.int8 (model_int8.tflite for full integer)
    model.onnx                 when ONNX is on
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from src.deploy import costs, latency
from src.deploy.export import convert, export_onnx, publish, staged_saved_model
from src.deploy.litert import LiteRTModel, float_ops, layer_of
from src.errors import ArtifactError, ConfigError
from src.fit import predict_logits
from src.runstore import atomic_write

QUANTIZED_FILE = {"full": "model_int8.tflite", "dynamic": "model_dynamic_int8.tflite",
                  "float16": "model_float16.tflite"}


@dataclass(frozen=True)
class Plan:
    """What every model of a deploy run gets: the deploy.* settings, resolved."""

    scheme: str  # deploy.int8
    calibration: np.ndarray  # training-split inputs for the full-integer ranges
    onnx: bool
    tolerance: float
    warmup: int
    calls: int


@dataclass
class Staged:
    role: str
    model: keras.Model
    saved_model: Path
    float32: bytes
    quantized: bytes


def stage(role: str, model: keras.Model, parent: Path, plan: Plan, stack: contextlib.ExitStack) -> Staged:
    """Every conversion of `model`, in memory (the SavedModel in a hidden folder under
    `parent`, removed when `stack` closes unless published)."""
    saved = stack.enter_context(staged_saved_model(model, parent))
    staged = Staged(role, model, saved, convert(saved, "float32"), convert(saved, plan.scheme, plan.calibration))
    if plan.scheme == "full":
        check_integer_only(role, model, staged.quantized)
    return staged


def check_integer_only(role: str, model: keras.Model, content: bytes) -> None:
    """A one-line error naming the first layer the converter left in float32 (it has no
    int8 kernel), with the two schemes that take it."""
    found = float_ops(content)
    if not found:
        return
    op, tensor = found[0]
    layer = layer_of(tensor, [layer.name for layer in _layers(model)]) or tensor
    raise ConfigError(f"deploy.int8=full: the {role}'s layer '{layer}' ({op}) has no int8 kernel in LiteRT, so "
                      f"{model.name} cannot run integer-only; fix: deploy.int8=dynamic (int8 weights, float "
                      "activations) or deploy.int8=float16")


def _layers(model: keras.Model) -> list:
    out = []
    for layer in model.layers:
        out += _layers(layer) if isinstance(layer, keras.Model) else [layer]
    return out


def write(staged: Staged, folder: Path, plan: Plan) -> dict[str, Path]:
    """The bundle's files, each written to a temporary name and renamed."""
    files = {"keras": folder / "model.keras", "saved_model": folder / "saved_model",
             "tflite": folder / "model_float32.tflite", "int8": folder / QUANTIZED_FILE[plan.scheme]}
    atomic_write(files["keras"], lambda tmp: staged.model.save(tmp))
    publish(staged.saved_model, files["saved_model"])
    atomic_write(files["tflite"], lambda tmp: tmp.write_bytes(staged.float32))
    atomic_write(files["int8"], lambda tmp: tmp.write_bytes(staged.quantized))
    if plan.onnx:
        files["onnx"] = export_onnx(staged.model, folder / "model.onnx")
    return files


def measure(model: keras.Model, files: dict[str, Path], x: np.ndarray, y: np.ndarray,
            teacher_logits: np.ndarray | None, plan: Plan) -> tuple[dict, np.ndarray]:
    """The model's figures (docs/deploy.md#what-each-number-means-and-how-it-is-measured) and its Keras logits on x.
    A float export whose logits differ from Keras' by more than the tolerance is an error."""
    logits = predict_logits(model, x)
    scale = max(1.0, float(np.max(np.abs(logits)))) if len(logits) else 1.0
    count = costs.count_macs(model)
    out = {"params": int(model.count_params()), "macs": int(count.total), **_scores("", logits, y, teacher_logits)}
    if count.uncounted:
        out["macs_uncounted"] = count.uncounted
    exported = {"saved_model": _saved_model_logits(files["saved_model"], x),
                "tflite": LiteRTModel(files["tflite"]).predict(x)}
    if "onnx" in files:
        onnx_model = latency.onnx_session(files["onnx"])
        exported["onnx"] = onnx_model.run(None, {onnx_model.get_inputs()[0].name: np.asarray(x, np.float32)})[0]
    for fmt, values in exported.items():
        error = float(np.max(np.abs(values - logits)) / scale) if len(x) else 0.0
        if error > plan.tolerance:
            raise ArtifactError(f"the {fmt} export of {model.name} differs from the Keras model by {error:.2e} "
                                f"(relative to its largest logit), above deploy.tolerance={plan.tolerance:g}: the "
                                "export is wrong; report it with the model")
        out[f"{fmt}_error"] = error
    quantized = LiteRTModel(files["int8"]).predict(x)
    out.update(_scores("int8_", quantized, y, teacher_logits))
    out["int8_float_agreement"] = _agreement(quantized, logits)
    for fmt, path in files.items():
        out[f"{fmt}_bytes"] = costs.size_bytes(path)
    calls = {"keras": latency.keras_call(model, x), "tflite": latency.litert_call(files["tflite"], x),
             "int8": latency.litert_call(files["int8"], x)}
    if "onnx" in files:
        calls["onnx"] = latency.onnx_call(files["onnx"], x)
    for fmt, call in calls.items():
        timed = latency.measure(call, plan.warmup, plan.calls)
        out[f"{fmt}_ms"], out[f"{fmt}_p90_ms"] = timed["median_ms"], timed["p90_ms"]
    return out, logits


def _scores(prefix: str, logits: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray | None) -> dict:
    out = {f"{prefix}test_accuracy": float(np.mean(np.argmax(logits, -1) == y)) if len(y) else None}
    if teacher_logits is not None:
        out[f"{prefix}agreement"] = _agreement(logits, teacher_logits)
    return out


def _agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    return float(np.mean(np.argmax(a, -1) == np.argmax(b, -1))) if len(a) else None


def _saved_model_logits(folder: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import tensorflow as tf
    loaded = tf.saved_model.load(str(folder))  # held: its functions refer to its variables
    parts = [np.asarray(loaded.serve(tf.constant(x[i:i + batch]))) for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros((0,), np.float32)
