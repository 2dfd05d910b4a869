"""Deploying a model, the pipeline of procedures/deploy.py (docs/deploy.md):

    export.py    SavedModel (model.export), LiteRT conversions from it, ONNX
    litert.py    running a .tflite file (ai_edge_litert): batched logits, float ops of an int8 model
    bundle.py    one model: stage every conversion, write the files, check them against Keras, measure
    costs.py     parameters, MACs per layer (checked against TensorFlow's profiler), bytes on disk
    latency.py   batch-1 CPU latency: warm-up, median and 90th percentile of many calls
    quantize.py  quantisation-aware training: fake-quantised weights and activations (distill.quantize)
    frontier.py  the accuracy-cost frontier of a width sweep: its points and its figure
    summary.py   the summary table and its headline ("N x smaller and M x faster")
"""
