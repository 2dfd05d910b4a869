"""Running a LiteRT model through `ai_edge_litert` (the successor of tf.lite.Interpreter):
batched predictions for accuracy, one-example calls for latency, and the ops of an int8
model that still compute in float."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from src.errors import ConfigError

EXTRA = "pip install -e '.[deploy]'"
FLOAT_PLUMBING = ("QUANTIZE", "DEQUANTIZE", "DELEGATE")  # the converter's own float<->int8 edges


def interpreter(model: Path | bytes, threads: int = 1):
    """A LiteRT interpreter for a .tflite file or flatbuffer, on `threads` CPU threads."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ConfigError(f"LiteRT exports need ai-edge-litert, which is not installed: {EXTRA}") from None
    if isinstance(model, (bytes, bytearray)):
        return Interpreter(model_content=bytes(model), num_threads=threads)
    return Interpreter(model_path=str(model), num_threads=threads)


class LiteRTModel:
    """A .tflite classifier as a function of float inputs in [0, 1] to float logits: an
    int8 input is quantised and an int8 output dequantised with the scale and zero point
    the file stores, as any program using the file must do."""

    def __init__(self, model: Path | bytes, threads: int = 1):
        self.interpreter = interpreter(model, threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = 1

    def _resize(self, batch: int) -> None:
        if batch != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self.batch = batch

    def quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return np.asarray(x, np.float32)
        scale, zero = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)

    def call(self, q: np.ndarray) -> np.ndarray:
        """One invocation on already quantised inputs of the current batch size."""
        self.interpreter.set_tensor(self.input["index"], q)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero = self.output["quantization"]
        return (y.astype(np.float32) - zero) * scale

    def predict(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        parts = []
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            self._resize(len(chunk))
            parts.append(self.dequantize(self.call(self.quantize(chunk))))
        return np.concatenate(parts) if parts else np.zeros((0, int(self.output["shape"][-1])), np.float32)


def float_ops(model: bytes) -> list[tuple[str, str]]:
    """(op, output tensor name) of every op of a LiteRT model that computes on float32
    activations, the converter's quantise/dequantise edges excepted: in a model asked to
    be integer-only, these are the ops it had no int8 kernel for."""
    runner = interpreter(model)
    runner.allocate_tensors()
    tensors = runner.get_tensor_details()
    found = []
    for op in runner._get_ops_details():
        if op["op_name"] in FLOAT_PLUMBING:
            continue
        outputs = [tensors[i] for i in op["outputs"] if i >= 0]
        if any(t["dtype"] == np.float32 for t in outputs):
            found.append((op["op_name"], outputs[0]["name"]))
    return found


def layer_of(tensor: str, layer_names: list[str]) -> str | None:
    """The Keras layer a converted tensor came from: its name is a path such as
    'functional_1/my_layer_1/Sin' (Keras appends _1 inside the traced call)."""
    parts = tensor.split(";")[0].split("/")
    for name in sorted(layer_names, key=len, reverse=True):
        if any(part in (name, f"{name}_1") for part in parts):
            return name
    return None
