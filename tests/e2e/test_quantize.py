"""distill.quantize=int8 with distill.deploy=true in one command: the quantisation-aware
student is a run of its own, deployed, and compared with the post-training int8 of the
plain distilled student of the same seed (qat_gain)."""
from __future__ import annotations

import pytest

from procedures import distill

pytestmark = pytest.mark.e2e


def test_quantisation_aware_distillation_then_deploy_in_one_command(make_cfg, capsys):
    fast = ["model=lenet", "student=lenet_half", "distill.baseline=false", "deploy.calls=3", "deploy.warmup=1",
            "deploy.calibration=16", "deploy.onnx=false"]
    plain = distill.artifact(make_cfg(*fast))
    metrics = distill.run(make_cfg(*fast, "distill.quantize=int8", "distill.deploy=true"))
    assert distill.artifact(make_cfg(*fast, "distill.quantize=int8")).dir != plain.dir and plain.is_done()
    assert metrics["deploy_run"] and 0 <= metrics["student_int8_test_accuracy"] <= 1
    out = capsys.readouterr().out
    assert "qat_gain" in out and "than the teacher at batch 1" in out
