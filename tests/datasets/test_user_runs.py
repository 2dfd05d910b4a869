"""Runs on a user's data: keyed by its content, refused before any work when the data or a
given model does not fit, and recording what was skipped."""
from __future__ import annotations

import json

import pytest

from datasets import DatasetError
from procedures import distill, train
from procedures._upstream import check_model_path
from src.errors import ArtifactError
from src.runstore import finished_runs, locate, note_data
from tests.conftest import compose_config
from tests.datasets.photos import make_photo_folder

SMALL = ["debug=smoke", "train.max_steps=1", "dataset.image_size=[16,16]"]


def folder_cfg(tmp_path, photos, *overrides):
    return compose_config("dataset=folder", f"dataset.path={photos}", *SMALL, f"paths.runs={tmp_path / 'runs'}",
                          *overrides)


@pytest.fixture(autouse=True)
def no_facts():
    yield
    note_data({})


def test_a_train_run_on_a_folder_records_its_classes_and_the_files_it_skipped(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", per_class=4)
    (photos / "coffee" / "broken.png").write_bytes(b"\x89PNG broken")
    cfg = folder_cfg(tmp_path, photos, "procedure=train", "model=lenet_half", "dataset.skip_unreadable=true")
    metrics = train.run(cfg)
    run = train.artifact(cfg)
    assert metrics["skipped_unreadable"] == 1 and json.loads((run.dir / "metrics.json").read_text())[
        "skipped_unreadable"] == 1
    key = json.loads((run.dir / "key.json").read_text())
    assert key["dataset"]["class_names"] == ["astronaut", "camera", "chelsea", "coffee"]
    assert "path" not in key["dataset"] and len(key["dataset"]["fingerprint"]) == 24


def test_bad_data_stops_a_procedure_before_any_run_is_made(tmp_path):
    photos = make_photo_folder(tmp_path / "photos", per_class=4)
    (photos / "camera" / "empty.jpg").write_bytes(b"")
    cfg = folder_cfg(tmp_path, photos, "procedure=distill", "model=lenet_half", "student=lenet_half")
    with pytest.raises(DatasetError, match="dataset.skip_unreadable=true"):
        distill.run(cfg)
    assert finished_runs(tmp_path / "runs") == [] and not (tmp_path / "runs" / "folder").exists()


def test_a_model_trained_on_other_classes_is_refused(tmp_path):
    run = locate(tmp_path / "runs", "folder", "train", "lenet", {"dataset": {"class_names": ["cat", "dog"]}})
    run.start({"dataset": {"name": "folder"}})
    run.write("model.keras", lambda tmp: tmp.write_bytes(b"not read by the check"))
    run.finish({})
    assert check_model_path(str(run.dir), "folder", "teacher", "teacher.path", ("cat", "dog"))
    for classes, expected in (((("dog", "cat")), "class 0 is 'cat' there and 'dog' here"),
                              (("cat", "dog", "eel"), "cat, dog (2) but the data has 3")):
        with pytest.raises(ArtifactError) as info:
            check_model_path(str(run.dir), "folder", "teacher", "teacher.path", classes)
        assert expected in str(info.value) and "teacher.path=" in str(info.value)
