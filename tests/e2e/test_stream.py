"""Data bigger than its memory budget, end to end: a folder of photographs four times
dataset.memory_budget trains and distils from the store (dataset.stream=auto), the
teacher's outputs stored once; a procedure that holds its data refuses it in one line."""
from __future__ import annotations

import json

import pytest

from tests.datasets.photos import make_photo_folder

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """4 classes x 40 photographs; at 32 x 32 RGB each decodes to 12,288 float32 bytes: 1.97 MB in all."""
    return make_photo_folder(tmp_path_factory.mktemp("photos"), per_class=40)


def test_a_folder_four_times_the_budget_trains_and_distils_streamed(photos, cli, tmp_path):
    runs = tmp_path / "runs"
    common = ["dataset=folder", f"dataset.path={photos}", "dataset.image_size=[32,32]", "dataset.memory_budget=480KB",
              "model=lenet_half", "student=lenet_half", "student.name=lenet_x0.25", "train.epochs=2",
              "train.batch_size=16", f"paths.runs={runs}", f"hydra.run.dir={tmp_path}/out", "logger=none"]
    result = cli("procedure=distill", *common)
    assert result.returncode == 0, result.output[-3000:]
    assert "streams from" in result.output and "streamed" in result.output
    (stream,) = runs.glob("cache/stream/*/COMPLETE")
    on_disk = sum(f.stat().st_size for f in stream.parent.glob("x_*.npy"))
    assert on_disk >= 4 * 480_000
    distilled = json.loads(next(runs.glob("*/distill/*/metrics.json")).read_text())
    assert distilled["streamed"] and distilled["teacher_outputs"] == "stored (float16)"
    assert all(json.loads(m.read_text())["streamed"] for m in runs.glob("*/train/*/metrics.json"))
    assert len(list(runs.glob("cache/teacher_outputs/*/COMPLETE"))) == 1
    reported = cli("procedure=report", f"paths.runs={runs}", "report.procedure=distill", f"hydra.run.dir={tmp_path}/r")
    assert reported.returncode == 0 and "stored (float16)" in reported.stdout, reported.output[-2000:]


def test_a_procedure_that_holds_its_data_refuses_it_in_one_line(photos, cli, tmp_path):
    result = cli("procedure=tree_distill", "dataset=folder", f"dataset.path={photos}", "dataset.image_size=[32,32]",
                 "dataset.memory_budget=480KB", f"paths.runs={tmp_path}/runs", f"hydra.run.dir={tmp_path}/out")
    assert result.returncode != 0
    errors = [line for line in result.output.splitlines() if "Error" in line]
    assert len(errors) == 1 and "procedure=tree_distill holds the whole data set in memory" in errors[0]
    assert "fix: dataset.stream=false" in errors[0]
    assert not list((tmp_path / "runs").glob("*/tree_distill/*"))
