"""Distribution strategies and precision policies in this process, proven on CPU (no GPU
here): the mirrored strategy's fallback on one device, mixed precision, XLA, and the
distribute choice. Runs on several devices or processes are tests/e2e/test_distribute.py's.
"""
from __future__ import annotations

import pytest

from tests.conftest import stored_accuracy


def test_mirrored_with_one_device_warns_and_runs_without_a_strategy(caplog):
    from src.runtime import make_strategy
    with caplog.at_level("WARNING"):
        assert make_strategy("mirrored") is None  # this test process has one CPU device
    assert "distribute=mirrored with a single device" in caplog.text


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_smoke(make_cfg, precision):
    """A train run under each mixed policy finishes with a finite loss; float16 wraps the
    optimizer in loss scaling, and the saved model computes in the policy's dtype."""
    import keras

    from procedures import train
    cfg = make_cfg("procedure=train", f"precision={precision}")
    try:
        metrics = train.run(cfg)
        assert metrics["test_accuracy"] == pytest.approx(stored_accuracy(cfg, train.artifact(cfg).dir), abs=1e-3)
        assert metrics["final_loss"] == metrics["final_loss"]  # not NaN
        from src.optim import make_optimizer
        wrapped = isinstance(make_optimizer("adam", 1e-3), keras.optimizers.LossScaleOptimizer)
        assert wrapped == (precision == "mixed_float16")
        model = keras.models.load_model(train.artifact(cfg).file("model.keras"))
        assert model.layers[-1].compute_dtype == precision.split("_")[1]
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_xla_path_runs_on_cpu(make_cfg):
    """jit_compile=true (the GPU default under auto) compiles the fit loop with XLA here too:
    the procedures ask for it, and the compiled step then has an XLA program."""
    import keras
    import numpy as np
    import tensorflow as tf

    from src import runtime
    from src.fit import Fitter
    from src.optim import make_optimizer
    from src.losses import classifier_loss
    assert runtime.use_xla(make_cfg("jit_compile=true")) and not runtime.use_xla(make_cfg("jit_compile=false"))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    data = {"x": np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), "y": np.arange(32) % 3}
    fitter = Fitter(model, classifier_loss(model), make_optimizer("adam", 1e-2), jit_compile=True)
    result = fitter.fit(data, epochs=2, batch_size=8, seed=0, verbose=0)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    indices = tf.constant(np.arange(16, dtype=np.int32).reshape(2, 8))
    hlo = fitter.train_function.experimental_get_compiler_ir({k: tf.constant(v) for k, v in data.items()}, indices)()
    assert "HloModule" in hlo


def test_distribute_choice_is_checked(make_cfg):
    from src.errors import ConfigError
    from src.schema import validate
    with pytest.raises(ConfigError, match="distribute='tpu' is not one of none, mirrored, multi_worker"):
        validate(make_cfg("distribute=tpu"))
