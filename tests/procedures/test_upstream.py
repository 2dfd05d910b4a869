"""procedures/_upstream.py: the toolkit every procedure gets its inputs with. A teacher or
file a user names is checked before any work; paired gains follow one convention."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from procedures import compute_stats, datafree_distill, distill, optimize_dataset, tree_distill
from procedures._upstream import model_display, paired_gain
from src.errors import ArtifactError
from src.runstore import finished_runs, locate


def _foreign_teacher(root, dataset: str):
    """A finished train run folder, as the store writes it, of a teacher trained on `dataset`
    (28x28x1 inputs, 10 classes: the shape of this run's data, so only the name differs)."""
    run = locate(root, dataset, "train", "hinton800", {"procedure": "train", "seed": 0})
    run.start({"dataset": {"name": dataset}, "model": {"name": "hinton800"}})
    inputs = keras.Input((28, 28, 1))
    run.save_model(keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))))
    run.finish({"test_accuracy": 0.9})
    return run.dir


@pytest.mark.parametrize("procedure", [distill, compute_stats, optimize_dataset, datafree_distill, tree_distill])
def test_a_teacher_trained_on_another_data_set_is_refused_before_any_work(make_cfg, tmp_path, procedure):
    teacher = _foreign_teacher(tmp_path / "elsewhere", "mnist_sample")
    cfg = make_cfg(f"procedure={procedure.__name__.split('.')[-1]}", f"teacher.path={teacher}")
    with pytest.raises(ArtifactError, match=r"teacher.path=.* was trained on mnist_sample, but this run uses synthetic"):
        procedure.run(cfg)
    assert finished_runs(cfg.paths.runs) == []  # no baseline, no statistics: nothing was made first


def test_the_same_teacher_s_model_file_is_taken_as_given(make_cfg, tmp_path):
    teacher = _foreign_teacher(tmp_path / "elsewhere", "mnist_sample")
    metrics = compute_stats.run(make_cfg("procedure=compute_stats", f"teacher.path={teacher / 'model.keras'}"))
    assert metrics["examples"] > 0


def test_a_broken_reconstruction_file_is_refused_before_the_teacher_trains(make_cfg, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not an npz")
    cfg = make_cfg("procedure=distill", "distill.data=reconstructed", f"distill.data_path={broken}")
    with pytest.raises(Exception, match="broken.npz"):
        distill.run(cfg)
    assert finished_runs(cfg.paths.runs) == []


def test_a_teacher_given_by_folder_is_named_by_its_model_in_summaries(make_cfg, tmp_path):
    teacher = _foreign_teacher(tmp_path / "elsewhere", "synthetic")
    shown = model_display(make_cfg("procedure=distill", f"teacher.path={teacher}"), str(teacher))
    assert shown.startswith("hinton800 (") and str(teacher) in shown


def test_paired_gain_on_both_splits_and_only_when_both_were_validated():
    metrics = {"test_accuracy": 0.90, "val_accuracy": 0.80}
    paired_gain(metrics, {"test_accuracy": 0.85, "val_accuracy": 0.82}, "kd")
    assert metrics["kd_gain"] == pytest.approx(0.05) and metrics["val_kd_gain"] == pytest.approx(-0.02)
    unvalidated = {"test_accuracy": 0.5, "val_accuracy": None}
    paired_gain(unvalidated, {"test_accuracy": 0.25, "val_accuracy": 0.3}, "distill")
    assert unvalidated["distill_gain"] == 0.25 and "val_distill_gain" not in unvalidated
    elsewhere = {"test_accuracy": 0.5, "val_accuracy": 0.4}
    paired_gain(elsewhere, {"test_accuracy": 0.5, "val_accuracy": 0.4}, "kd", validation=False)
    assert "val_kd_gain" not in elsewhere and np.isclose(elsewhere["kd_gain"], 0.0)
