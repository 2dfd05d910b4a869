"""Batch-1 CPU latency of one model in one format: warm-up calls, then the median and the
90th percentile of many timed calls, each a whole request (input in, output out).

- LiteRT: an `ai_edge_litert` interpreter on one thread (XNNPACK, its default CPU path);
- ONNX: an onnxruntime InferenceSession on one intra-op and one inter-op thread;
- Keras: the model's call traced once by tf.function for a fixed batch-1 input, the
  result copied to NumPy. TensorFlow's thread pools are fixed when TensorFlow starts:
  the deploy procedure asks for one thread before its first op, and the metrics record
  whether it got it (`keras_threads`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np


def measure(call: Callable[[], object], warmup: int, calls: int) -> dict:
    """{"median_ms", "p90_ms"} of `calls` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return {"median_ms": float(np.median(times) * 1e3), "p90_ms": float(np.percentile(times, 90) * 1e3)}


def keras_call(model, x: np.ndarray) -> Callable[[], object]:
    import tensorflow as tf
    function = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    inputs = tf.constant(x[:1])
    return lambda: function(inputs).numpy()


def litert_call(path: Path, x: np.ndarray) -> Callable[[], object]:
    from src.deploy.litert import LiteRTModel
    runner = LiteRTModel(path, threads=1)
    runner._resize(1)
    q = runner.quantize(x[:1])
    return lambda: runner.dequantize(runner.call(q))


def onnx_call(path: Path, x: np.ndarray) -> Callable[[], object]:
    onnx_model = onnx_session(path)
    name, inputs = onnx_model.get_inputs()[0].name, np.asarray(x[:1], np.float32)
    return lambda: onnx_model.run(None, {name: inputs})[0]


def onnx_session(path: Path):
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
