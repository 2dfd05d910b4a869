"""What a model costs to run, counted from its layers: parameters and multiply-accumulates.

A multiply-accumulate (MAC) is one product added to a sum; FLOPs = 2 x MACs for
convolutions and matrix products, which is what TensorFlow's profiler reports for
Conv2D/MatMul ops (tests/deploy/test_costs.py checks the two agree on this project's
networks). Counted per example, per layer type:

    Dense                 out_elements x in_features      (applied to every position of a >2-D input)
    Conv1D/2D/3D          out_elements x kernel_volume x in_channels / groups   (strides and padding
                          enter through the output size)
    DepthwiseConv1D/2D    out_positions x in_channels x depth_multiplier x kernel_volume
    SeparableConv1D/2D    its depthwise part + out_positions x in_channels x depth_multiplier x filters
    Conv1D/2D/3DTranspose in_positions x kernel_volume x in_channels x filters
    BatchNormalization    0: at inference it is an affine map that converters fold into the
                          preceding convolution or Dense layer (LiteRT does)
    pooling, activations, Add, Flatten, Dropout, ...   0

Bias additions are not MACs. A layer of another type that holds weights is listed as
uncounted rather than guessed at; nested models are walked layer by layer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import keras

L = keras.layers
SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
TRANSPOSE = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
FREE = (L.BatchNormalization,)  # weights, but no MACs at inference (folded)


@dataclass
class MacCount:
    """MACs per example of a model: the total, each layer's, and the weighted layers not counted."""

    total: int = 0
    per_layer: dict[str, int] = field(default_factory=dict)
    uncounted: list[str] = field(default_factory=list)  # "name (Type)"


def _volume(shape) -> int:
    return int(math.prod(int(d) for d in shape))


def layer_macs(layer: keras.layers.Layer, in_shape: tuple, out_shape: tuple) -> int | None:
    """MACs per example of one call of `layer` (shapes without the batch axis); None for a
    weighted layer type this module does not count."""
    if isinstance(layer, L.Dense):
        return _volume(out_shape) * int(in_shape[-1])
    if isinstance(layer, SEPARABLE):
        positions, channels = _volume(out_shape[:-1]), int(in_shape[-1]) * layer.depth_multiplier
        return positions * channels * _volume(layer.kernel_size) + positions * channels * layer.filters
    if isinstance(layer, DEPTHWISE):
        return _volume(out_shape[:-1]) * int(in_shape[-1]) * layer.depth_multiplier * _volume(layer.kernel_size)
    if isinstance(layer, TRANSPOSE):
        return _volume(in_shape[:-1]) * _volume(layer.kernel_size) * int(in_shape[-1]) * layer.filters
    if isinstance(layer, CONV):
        return _volume(out_shape) * _volume(layer.kernel_size) * int(in_shape[-1]) // layer.groups
    if isinstance(layer, FREE) or not layer.weights:
        return 0
    return None


def count_macs(model: keras.Model, batch: int = 1) -> MacCount:
    """MACs of `model` on a batch of `batch` examples (per example for batch=1)."""
    count = MacCount()
    _walk(model, count)
    count.total *= batch
    count.per_layer = {name: macs * batch for name, macs in count.per_layer.items()}
    return count


def _walk(model: keras.Model, count: MacCount) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            _walk(layer, count)
            continue
        if isinstance(layer, L.InputLayer):
            continue
        nodes = [n for n in getattr(layer, "_inbound_nodes", []) if n.input_tensors and n.output_tensors]
        if not nodes:
            if layer.weights and not isinstance(layer, FREE):
                count.uncounted.append(f"{layer.name} ({type(layer).__name__})")
            continue
        for node in nodes:
            macs = layer_macs(layer, tuple(node.input_tensors[0].shape[1:]), tuple(node.output_tensors[0].shape[1:]))
            if macs is None:
                count.uncounted.append(f"{layer.name} ({type(layer).__name__})")
                break
            if macs:
                count.per_layer[layer.name] = count.per_layer.get(layer.name, 0) + macs
                count.total += macs


def size_bytes(path: Path) -> int:
    """Bytes on disk of a file, or of every file below a folder (a SavedModel)."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


PROFILED_MAC_OPS = ("Conv2D", "Conv3D", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3",
                    "DepthwiseConv2dNative", "Conv2DBackpropInput")  # ops whose FLOPs are 2 x MACs


def profiled_flops(model: keras.Model, batch: int = 1) -> dict[str, int]:
    """FLOPs by op type that TensorFlow's profiler counts on the model's inference graph
    for a batch of `batch` (variables frozen to constants, as tf.compat.v1.profiler needs):
    the independent count `count_macs` is checked against."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph
    from tensorflow.python.profiler import model_analyzer, option_builder

    spec = tf.TensorSpec([batch, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    _, graph_def = convert_variables_to_constants_v2_as_graph(function)
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        options = option_builder.ProfileOptionBuilder(
            option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build()
        profile = model_analyzer.profile(graph, options=options)
        kinds = {op.name: op.type for op in graph.get_operations()}
    flops: dict[str, int] = {}

    def walk(node) -> None:
        for child in node.children:
            walk(child)
        if node.float_ops and node.name in kinds:
            flops[kinds[node.name]] = flops.get(kinds[node.name], 0) + int(node.float_ops)
    walk(profile)
    return flops
