"""train / evaluate / report run in-process through the compose API on tiny configs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import stored_accuracy

from procedures import evaluate, report, train
from src.errors import ArtifactError


def test_train_writes_a_finished_run(make_cfg):
    cfg = make_cfg("procedure=train", "model=lenet")
    metrics = train.run(cfg)
    run = train.artifact(cfg)
    assert run.is_done()
    for name in ("model.keras", "history.csv", "metrics.json", "config.yaml", "key.json", "DONE"):
        assert (run.dir / name).exists(), name
    assert list((run.dir / "tensorboard").iterdir())
    assert metrics["epochs"] == 1 and metrics["test_accuracy"] == pytest.approx(stored_accuracy(cfg, run.dir))
    assert json.loads((run.dir / "metrics.json").read_text())["test_accuracy"] == metrics["test_accuracy"]


def test_synthetic_data_is_learned(make_cfg):
    metrics = train.run(make_cfg("procedure=train", "model=hinton800", "train.epochs=3"))
    assert metrics["test_accuracy"] > 0.8


def test_rerun_reuses_and_force_redoes(make_cfg, caplog):
    cfg = make_cfg("procedure=train", "model=lenet_half")
    first = train.run(cfg)
    stamp = (train.artifact(cfg).dir / "DONE").stat().st_mtime_ns
    caplog.set_level("INFO")
    assert train.run(cfg) == first
    assert "reusing" in caplog.text
    assert (train.artifact(cfg).dir / "DONE").stat().st_mtime_ns == stamp
    train.run(make_cfg("procedure=train", "model=lenet_half", "force=true"))
    assert (train.artifact(cfg).dir / "DONE").stat().st_mtime_ns != stamp


def test_sweep_points_never_share_a_folder(make_cfg):
    folders = {train.artifact(make_cfg("procedure=train", f"model={m}", f"seed={s}")).dir
               for m in ("lenet", "lenet_half") for s in (0, 1)}
    assert len(folders) == 4
    # settings that do not change the artifact do not change the folder
    assert train.artifact(make_cfg("procedure=train", "report.format=csv")).dir == \
        train.artifact(make_cfg("procedure=train")).dir


def test_evaluate_trains_what_it_needs_and_draws_confusion(make_cfg):
    cfg = make_cfg("procedure=evaluate", "model=lenet")
    metrics = evaluate.run(cfg)
    assert train.artifact(cfg).is_done()  # produced as a prerequisite
    run = evaluate.artifact(cfg)
    assert (run.dir / "confusion_matrix.png").stat().st_size > 1000
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 128
    assert metrics["test_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-6)
    assert len(metrics["per_class_accuracy"]) == 10


def test_evaluate_without_prereqs_names_the_command(make_cfg):
    with pytest.raises(ArtifactError, match="procedure=train.*auto_prereqs=true"):
        evaluate.run(make_cfg("procedure=evaluate", "auto_prereqs=false"))


def test_evaluate_any_keras_file(make_cfg, tmp_path):
    train.run(make_cfg("procedure=train", "model=hinton800"))
    source = train.artifact(make_cfg("procedure=train", "model=hinton800")).dir / "model.keras"
    copy = tmp_path / "elsewhere.keras"
    copy.write_bytes(source.read_bytes())
    metrics = evaluate.run(make_cfg("procedure=evaluate", f"evaluate.path={copy}"))
    assert metrics["source"] == str(copy)


def test_corrupt_model_file_is_a_clear_error(make_cfg, tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 this is not a whole zip")
    with pytest.raises(ArtifactError, match="truncated or not a Keras model"):
        evaluate.run(make_cfg("procedure=evaluate", f"evaluate.path={broken}"))


def test_unfinished_run_folder_is_refused(make_cfg, tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="not a finished run"):
        evaluate.run(make_cfg("procedure=evaluate", f"evaluate.path={folder}"))


def test_model_that_does_not_fit_the_data_names_both_shapes(make_cfg):
    train.run(make_cfg("procedure=train", "model=hinton800"))  # 28x28x1 synthetic
    path = train.artifact(make_cfg("procedure=train", "model=hinton800")).dir
    with pytest.raises(ArtifactError, match=r"\(28, 28, 1\).*\(16, 16, 3\)"):
        evaluate.run(make_cfg("procedure=evaluate", f"evaluate.path={path}", "dataset.image_shape=[16,16,3]"))


def test_report_lists_finished_runs(make_cfg, capsys):
    train.run(make_cfg("procedure=train", "model=lenet"))
    train.run(make_cfg("procedure=train", "model=lenet_half"))
    capsys.readouterr()
    assert report.run(make_cfg("procedure=report"))["runs"] == 2
    table = capsys.readouterr().out
    assert table.startswith("| procedure |") and "lenet_half" in table and "test_accuracy" in table
    assert report.run(make_cfg("procedure=report", "report.model=lenet_half", "report.format=csv"))["runs"] == 1
    csv_text = capsys.readouterr().out
    assert csv_text.splitlines()[0].startswith("procedure,dataset,seed")
    assert report.run(make_cfg("procedure=report", "report.procedure=distill"))["runs"] == 0


def test_report_writes_output_file(make_cfg, tmp_path):
    train.run(make_cfg("procedure=train"))
    out = tmp_path / "table.md"
    report.run(make_cfg("procedure=report", f"report.output={out}"))
    assert "test_accuracy" in out.read_text()
