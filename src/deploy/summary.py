"""procedure=deploy's summary: one row per model and one for the int8 model (accuracy,
agreement with the teacher, parameters, MACs, file sizes, batch-1 latency), and the
headline a practitioner reads first."""
from __future__ import annotations

from pathlib import Path

ROLES = ("teacher", "scratch", "student")  # a distill run's models, in table order; "model" for one file


def headline(m: dict) -> dict:
    """The student against the teacher: how many times smaller (LiteRT float32 file) and
    faster (LiteRT float32, batch 1, median); the share of its accuracy int8 keeps."""
    out = {}
    if "teacher_tflite_bytes" in m and "student_tflite_bytes" in m:
        out["size_ratio"] = m["teacher_tflite_bytes"] / m["student_tflite_bytes"]
        out["speedup"] = m["teacher_tflite_ms"] / m["student_tflite_ms"]
    if "scratch_test_accuracy" in m and "student_test_accuracy" in m:  # paired by seed, as distill's
        out["kd_gain"] = m["student_test_accuracy"] - m["scratch_test_accuracy"]
    role = "student" if "student_test_accuracy" in m else "model"
    if m.get(f"{role}_test_accuracy"):
        out["int8_retained"] = m[f"{role}_int8_test_accuracy"] / m[f"{role}_test_accuracy"]
    return out


def table(metrics: dict, names: dict[str, str], tolerance: float) -> tuple[list[dict], list[str]]:
    """The rows (each model named by `names[role]`) and the notes under them."""
    m, onnx = metrics, metrics.get("onnx")
    roles = [r for r in (*ROLES, "model") if f"{r}_test_accuracy" in m]
    rows = []
    for role in roles:
        rows.append(_row(m, role, names[role], "", onnx))
    last = "student" if "student" in roles else roles[-1]
    rows.append(_row(m, last, f"{names[last]} {_scheme(m['int8_scheme'])}", "int8_", onnx))
    notes = [headline_note(m)]
    errors = [m.get(f"{r}_{f}_error") for r in roles for f in ("saved_model", "tflite", "onnx")]
    errors = [e for e in errors if e is not None]
    notes.append(f"exports match Keras on {m['test_examples']} test images: largest logit difference {max(errors):.1e} "
                 f"of the largest logit (tolerance {tolerance:g}); {_scheme(m['int8_scheme'])} agrees with "
                 f"float on {m[f'{last}_int8_float_agreement']:.2%}, calibrated on {m['calibration_examples']} "
                 f"training examples")
    keras_threads = "1 thread" if m["keras_threads"] == 1 else "TensorFlow's default threads"
    notes.append(f"latency: batch 1, median (90th percentile) of {m['latency_calls']} calls, LiteRT and ONNX on 1 "
                 f"thread, Keras on {keras_threads}")
    if m.get("qat_gain") is not None:
        notes.append(f"qat_gain {m['qat_gain']:+.4f}: quantisation-aware int8 {m['student_int8_test_accuracy']:.4f} "
                     f"against post-training int8 {m['ptq_int8_test_accuracy']:.4f}")
    return rows, notes


def _row(m: dict, role: str, label: str, prefix: str, onnx: bool) -> dict:
    row = {"model": label, "test acc": m[f"{role}_{prefix}test_accuracy"],
           "agreement with teacher": m.get(f"{role}_{prefix}agreement", 1.0 if role == "teacher" else None),
           "params": m[f"{role}_params"], "MACs": m[f"{role}_macs"],
           ".keras KB": None if prefix else _kb(m[f"{role}_keras_bytes"]),
           ".tflite KB": _kb(m[f"{role}_int8_bytes" if prefix else f"{role}_tflite_bytes"]),
           "Keras ms": None if prefix else _ms(m, f"{role}_keras"),
           "LiteRT ms": _ms(m, f"{role}_int8" if prefix else f"{role}_tflite")}
    if onnx:
        row["ONNX ms"] = None if prefix else _ms(m, f"{role}_onnx")
    return row


def headline_note(m: dict) -> str:
    """"the student is N x smaller and M x faster than the teacher at batch 1; int8 keeps X of its accuracy"."""
    keeps = f"{_scheme(m['int8_scheme'])} keeps {m['int8_retained']:.1%} of its accuracy" \
        if m.get("int8_retained") is not None else ""
    if "size_ratio" not in m:
        return keeps
    return (f"the student is {_times(m['size_ratio'], 'smaller', 'larger')} and "
            f"{_times(m['speedup'], 'faster', 'slower')} than the teacher at batch 1 (LiteRT float32); {keeps}")


def _times(ratio: float, better: str, worse: str) -> str:
    """"2.4 x faster", or for a ratio below 1 the other way round ("1.1 x larger")."""
    return f"{ratio:.1f} x {better}" if ratio >= 1 else f"{1 / ratio:.1f} x {worse}"


def _scheme(scheme: str) -> str:
    return {"full": "int8", "dynamic": "dynamic-range int8", "float16": "float16"}[scheme]


def _kb(size: int) -> str:
    return f"{size / 1024:.1f}"


def _ms(m: dict, prefix: str) -> str:
    return f"{m[f'{prefix}_ms']:.3f} ({m[f'{prefix}_p90_ms']:.3f})"


def display(source: str | None) -> str:
    """A model file's name in the table: its run folder's for a run's model.keras."""
    return Path(source).parent.name if source and Path(source).name == "model.keras" else Path(source or "").name
