"""Typed `deploy.*` settings (exporting a model and measuring its cost, src/deploy) and their checks."""
from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec
from typing import Optional

from src.schema.core import require, require_choice
from src.schema.kd import FEATURE_METHODS

INT8_SCHEMES = ("full", "dynamic", "float16")  # deploy.int8: docs/deploy.md#int8
ONNX_CHOICES = ("auto", "true", "false")
QUANTIZE = ("none", "int8")  # distill.quantize: quantisation-aware distillation
# measured on the test split: a sweeper chooses by validation figures instead
TEST_FIGURES = ("qat_gain", "int8_retained", "student_int8_test_accuracy")
CHOICES = {"deploy.int8": INT8_SCHEMES, "deploy.onnx": ONNX_CHOICES}
DEPLOY_EXTRA = "pip install -e '.[deploy]'"
ONNX_EXTRA = "pip install -e '.[onnx]'"
ONNX_MODULES = ("tf2onnx", "onnx", "onnxruntime")


@dataclass
class DeployConfig:
    path: Optional[str] = None  # a finished train or distill run, or a .keras file; null = this config's distill run
    calibration: int = 256  # training-split examples the full-integer int8 model is calibrated on
    int8: str = "full"  # full = integer-only int8; dynamic = int8 weights only; float16 = float16 weights
    onnx: str = "auto"  # auto = when the onnx extra is installed; true = required; false = never
    tolerance: float = 1e-4  # a float export's largest |logit difference| from Keras, relative to the largest |logit|
    warmup: int = 20  # untimed batch-1 calls before timing
    calls: int = 200  # timed batch-1 calls per model and format (median and 90th percentile)


def onnx_setting(cfg) -> str:
    """deploy.onnx as auto/true/false, whether it came as a string or a YAML boolean."""
    return str(cfg.deploy.onnx).lower()


def wants_deploy(cfg) -> bool:
    return cfg.procedure.name == "deploy" or bool(cfg.distill.deploy)


def check(cfg) -> None:
    """Raise ConfigError naming the first deploy.* (or distill.quantize) setting that cannot work."""
    d = cfg.deploy
    require_choice(d.int8, INT8_SCHEMES, "deploy.int8")
    require_choice(onnx_setting(cfg), ONNX_CHOICES, "deploy.onnx")
    require(d.calibration >= 1, f"deploy.calibration={d.calibration}: at least 1 training example (e.g. 256)")
    require(d.tolerance > 0, f"deploy.tolerance={d.tolerance}: must be > 0 (e.g. 1e-4)")
    require(d.warmup >= 0 and d.calls >= 1, f"deploy.warmup={d.warmup}, deploy.calls={d.calls}: warm-up >= 0 and "
                                            "at least 1 timed call (e.g. deploy.calls=200)")
    require_choice(cfg.distill.quantize, QUANTIZE, "distill.quantize")
    require(cfg.distill.quantize == "none" or cfg.distill.method not in FEATURE_METHODS,
            f"distill.quantize=int8 trains through the student's logits; distill.method={cfg.distill.method} also "
            "reads its inner layers: use distill.method=hinton, dkd or dist, or distill.quantize=none")
    if not wants_deploy(cfg):
        return
    require(find_spec("ai_edge_litert") is not None,
            f"{'procedure=deploy' if cfg.procedure.name == 'deploy' else 'distill.deploy=true'}: LiteRT exports need "
            f"ai-edge-litert, which is not installed: {DEPLOY_EXTRA}")
    missing = [m for m in ONNX_MODULES if find_spec(m) is None]
    require(onnx_setting(cfg) != "true" or not missing,
            f"deploy.onnx=true needs the onnx extra ({', '.join(missing)} missing): {ONNX_EXTRA}; "
            "or deploy.onnx=false")
