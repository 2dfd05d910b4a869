"""procedure=deploy on a small distill run: the exports, read back by a program that knows
nothing of the runner, reproduce the reported accuracies; bad inputs are one-line errors
before any export; a failed export leaves no finished run."""
from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

import keras
import numpy as np
import pytest

from procedures import deploy
from procedures._inputs import load_data
from src.errors import ArtifactError, ConfigError
from src.runstore import is_done
from src.schema import validate
from tests.conftest import SMOKE, compose_config

ONNX = all(find_spec(m) for m in ("tf2onnx", "onnx", "onnxruntime"))
FAST = ["procedure=deploy", "model=lenet", "student=lenet_half", "distill.temperature=4", "deploy.calls=5",
        "deploy.warmup=1", "deploy.calibration=32"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy") / "runs"


def _cfg(store, *overrides):
    return compose_config(*SMOKE, f"paths.runs={store}", *FAST, *overrides)


@pytest.fixture(scope="module")
def deployed(store):
    cfg = _cfg(store)
    metrics = deploy.run(cfg)
    return cfg, metrics, deploy.artifact(cfg).dir


OUTSIDE = r'''
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

def litert(path, x):
    it = Interpreter(model_path=path, num_threads=1)
    inp = it.get_input_details()[0]
    it.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(inp["dtype"])
    it.set_tensor(inp["index"], x)
    it.invoke()
    return it.get_tensor(out["index"])  # argmax is the same before and after dequantising

data = np.load(sys.argv[2])
x, y = data["x"], data["y"]
found = {}
for role in ("teacher", "scratch", "student"):
    folder = sys.argv[1] + "/" + role
    found[role + "_tflite"] = float(np.mean(np.argmax(litert(folder + "/model_float32.tflite", x), -1) == y))
    found[role + "_int8"] = float(np.mean(np.argmax(litert(folder + "/model_int8.tflite", x), -1) == y))
    if len(sys.argv) > 3:
        import onnxruntime
        onnx_model = onnxruntime.InferenceSession(folder + "/model.onnx", providers=["CPUExecutionProvider"])
        logits = onnx_model.run(None, {onnx_model.get_inputs()[0].name: x})[0]
        found[role + "_onnx"] = float(np.mean(np.argmax(logits, -1) == y))
print(json.dumps(found))
'''


def _outside(deployed, tmp_path, *extra) -> tuple[dict, float]:
    """What the outside program finds on the test split, and one image's share of it."""
    cfg, _, folder = deployed
    data = load_data(cfg)
    np.savez(tmp_path / "test.npz", x=data.x_test, y=data.y_test)
    (tmp_path / "outside.py").write_text(OUTSIDE)
    args = [sys.executable, str(tmp_path / "outside.py"), str(folder), str(tmp_path / "test.npz"), *extra]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True, cwd=tmp_path).stdout), \
        1.0 / len(data.y_test)


def test_a_program_that_knows_nothing_of_the_runner_reproduces_the_accuracies(deployed, tmp_path):
    metrics = deployed[1]
    found, one = _outside(deployed, tmp_path)  # a tie between two logits may break the other way: one image
    for role in ("teacher", "scratch", "student"):
        assert abs(found[f"{role}_tflite"] - metrics[f"{role}_test_accuracy"]) <= one
        assert abs(found[f"{role}_int8"] - metrics[f"{role}_int8_test_accuracy"]) <= one


@pytest.mark.skipif(not ONNX, reason="the ONNX round trip needs the onnx extra (tf2onnx, onnx, onnxruntime): "
                                     "pip install -e '.[onnx]'")
def test_onnxruntime_reproduces_the_accuracies(deployed, tmp_path):
    metrics = deployed[1]
    found, one = _outside(deployed, tmp_path, "onnx")
    for role in ("teacher", "scratch", "student"):
        assert abs(found[f"{role}_onnx"] - metrics[f"{role}_test_accuracy"]) <= one
        assert metrics[f"{role}_onnx_error"] <= deployed[0].deploy.tolerance


def test_the_run_holds_every_export_and_reports_every_figure(deployed):
    cfg, m, folder = deployed
    assert is_done(folder) and (folder / "labels.txt").read_text().splitlines() == [f"class_{d}" for d in range(10)]
    for role in ("teacher", "scratch", "student"):
        names = {"model.keras", "saved_model", "model_float32.tflite", "model_int8.tflite", *(["model.onnx"] * ONNX)}
        assert names <= {p.name for p in (folder / role).iterdir()}
        assert m[f"{role}_int8_bytes"] < m[f"{role}_tflite_bytes"] / 2.5  # int8 weights: about a quarter
        assert m[f"{role}_tflite_error"] <= cfg.deploy.tolerance and m[f"{role}_saved_model_error"] <= cfg.deploy.tolerance
        assert 0 <= m[f"{role}_int8_float_agreement"] <= 1 and m[f"{role}_tflite_p90_ms"] >= m[f"{role}_tflite_ms"] > 0
    assert m["teacher_macs"] > m["student_macs"] and m["size_ratio"] > 1
    assert m["int8_retained"] == pytest.approx(m["student_int8_test_accuracy"] / m["student_test_accuracy"])


def test_the_summary_is_one_table_of_four_models(deployed, capsys):
    cfg, metrics, _ = deployed
    rows, notes = deploy.summary(cfg, metrics)
    assert [r["model"] for r in rows] == ["teacher lenet", "student lenet_half from scratch",
                                          "student lenet_half distilled", "student lenet_half distilled int8"]
    assert {"test acc", "agreement with teacher", "params", "MACs", ".tflite KB", "LiteRT ms"} <= set(rows[0])
    assert "x smaller and" in notes[0] and "int8 keeps" in notes[0]


def test_a_rerun_reuses_the_finished_run(deployed, store):
    cfg, metrics, folder = deployed
    assert deploy.run(_cfg(store)) == json.loads((folder / "metrics.json").read_text())


def test_deploy_path_takes_a_keras_file(deployed, store):
    _, metrics, folder = deployed
    m = deploy.run(_cfg(store, f"deploy.path={folder / 'student' / 'model.keras'}", "deploy.int8=dynamic"))
    assert m["model_test_accuracy"] == metrics["student_test_accuracy"] and "teacher_test_accuracy" not in m
    assert m["model_int8_bytes"] < m["model_tflite_bytes"]


def test_no_distill_run_and_auto_prereqs_false_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="procedure=deploy needs a finished 'distill' run.*auto_prereqs=true"):
        deploy.run(_cfg(tmp_path / "empty", "auto_prereqs=false"))


def test_a_run_without_a_model_is_refused(store, tmp_path):
    from src.runstore import locate
    run = locate(tmp_path, "synthetic", "compute_stats", "lenet", {"x": 1})
    run.start(_cfg(store, "procedure=compute_stats"))
    run.finish({})
    with pytest.raises(ArtifactError, match=r"deploy.path=.*that compute_stats run has no model.keras"):
        deploy.run(_cfg(store, f"deploy.path={run.dir}"))


def test_more_calibration_examples_than_the_training_split_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"deploy.calibration=100000: the training split .* has only \d+ examples"):
        deploy.run(_cfg(tmp_path / "runs", "deploy.calibration=100000"))
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.tflite"))


def test_a_layer_without_an_int8_kernel_is_named_before_any_export(store, tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Dense(8, name="fc")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(keras.layers.ELU(name="smooth")(x)))
    model.save(tmp_path / "elu.keras")
    cfg = _cfg(store, f"deploy.path={tmp_path / 'elu.keras'}")
    with pytest.raises(ConfigError, match=r"deploy.int8=full: the model's layer 'smooth' \(ELU\).*"
                                          r"deploy.int8=dynamic .* or deploy.int8=float16"):
        deploy.run(cfg)
    folder = deploy.artifact(cfg).dir
    assert not is_done(folder) and not [p for p in folder.rglob("*") if p.suffix in (".tflite", ".onnx", ".pb")]


def test_onnx_without_the_extra_is_refused_before_any_work(monkeypatch):
    import src.schema.deploy as schema
    monkeypatch.setattr(schema, "find_spec", lambda name: None if name == "onnxruntime" else object())
    with pytest.raises(ConfigError, match=r"deploy.onnx=true needs the onnx extra \(onnxruntime missing\): "
                                          r"pip install -e '.\[onnx\]'"):
        validate(compose_config("procedure=deploy", "deploy.onnx=true"))


def test_litert_missing_names_the_extra(monkeypatch):
    import src.schema.deploy as schema
    monkeypatch.setattr(schema, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"distill.deploy=true: LiteRT exports need ai-edge-litert.*pip install -e '.\[deploy\]'"):
        validate(compose_config("distill.deploy=true"))
    validate(compose_config())  # a distill run without deploy does not need it


def test_a_failed_export_leaves_no_finished_run(deployed, store, monkeypatch, tmp_path):
    from src.deploy import bundle

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill mid-way through measuring
    student = deployed[2] / "student" / "model.keras"
    cfg = _cfg(store, f"deploy.path={student}", "deploy.onnx=false", "deploy.calls=6")
    monkeypatch.setattr(bundle, "measure", broken)
    with pytest.raises(KeyboardInterrupt):
        deploy.run(cfg)
    assert not is_done(deploy.artifact(cfg).dir)
    monkeypatch.undo()
    assert deploy.run(cfg)["model_test_accuracy"] is not None and is_done(deploy.artifact(cfg).dir)


def test_distill_deploy_true_adds_the_headline_to_the_distill_summary(deployed, store, capsys):
    from procedures import distill
    cfg = _cfg(store, "procedure=distill", "distill.deploy=true")  # the same distill and deploy runs: reused
    metrics = distill.run(cfg)
    assert metrics["deploy_run"] == str(deployed[2]) and metrics["size_ratio"] == deployed[1]["size_ratio"]
    out = capsys.readouterr().out
    assert "kd_gain" in out and "than the teacher at batch 1 (LiteRT float32); int8 keeps" in out
