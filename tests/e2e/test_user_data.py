"""A user's own data end to end: `python main.py ... dataset=folder|npz` and every procedure
on it; a tfds data set prepared in a temporary folder."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from procedures._upstream import upstream
from src.runstore import finished_runs
from src.schema import validate
from tests.conftest import as_main
from tests.datasets.photos import make_photo_folder
from tests.datasets.test_tfds import prepare

pytestmark = pytest.mark.e2e  # real `python main.py` runs and every procedure: `python -m pytest -m e2e`


def finished(store) -> dict:
    return {p: (p / "DONE").stat().st_mtime_ns for p in finished_runs(store)}


def test_a_photo_folder_is_distilled_then_reused_wherever_it_lies_and_a_changed_image_makes_new_runs(cli, tmp_path):
    photos = make_photo_folder(tmp_path / "photos")
    store = tmp_path / "runs"

    def distill(path):
        result = cli("procedure=distill", "dataset=folder", f"dataset.path={path}", "dataset.image_size=[64,64]",
                     "model=convnet", "student=lenet_half", "debug=smoke", f"paths.runs={store}",
                     f"hydra.run.dir={tmp_path}/out")
        assert result.returncode == 0, result.stderr
        return result

    first = distill(photos)
    assert "student lenet_half distilled" in first.stdout and "teacher convnet" in first.stdout
    runs = finished(store)
    assert len(runs) == 3  # the teacher, the scratch student, the distilled student
    again = distill(photos.rename(tmp_path / "moved"))
    assert "running it first" not in again.output and "reusing finished run" in again.output
    assert finished(store) == runs and "student lenet_half distilled" in again.stdout
    with Image.open(tmp_path / "moved" / "coffee" / "0.jpg") as image:
        image.transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "moved" / "coffee" / "0.jpg")
    changed = distill(tmp_path / "moved")
    assert "running it first" in changed.output and len(finished(store)) == 6


def test_an_unreadable_image_stops_the_command_in_one_line_and_finishes_no_run(cli, tmp_path):
    photos = make_photo_folder(tmp_path / "photos", per_class=4)
    (photos / "chelsea" / "cut.jpg").write_bytes((photos / "chelsea" / "0.jpg").read_bytes()[:20])
    result = cli("procedure=distill", "dataset=folder", f"dataset.path={photos}", "dataset.image_size=[32,32]",
                 "debug=smoke", f"paths.runs={tmp_path}/runs", f"hydra.run.dir={tmp_path}/out")
    assert result.returncode == 2 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "DatasetError" in line]
    assert len(lines) == 1 and "chelsea/cut.jpg" in lines[0] and "dataset.skip_unreadable=true" in lines[0]
    assert finished_runs(tmp_path / "runs") == []


def test_an_npz_file_is_distilled_from_the_command_line(cli, tmp_path, npz_file):
    result = cli("procedure=distill", "dataset=npz", f"dataset.path={npz_file}", "model=lenet", "student=lenet_half",
                 "debug=smoke", f"paths.runs={tmp_path}/runs", f"hydra.run.dir={tmp_path}/out")
    assert result.returncode == 0, result.stderr
    assert "student lenet_half distilled" in result.stdout


@pytest.fixture(scope="module")
def npz_file(tmp_path_factory):
    """Four noisy 16x16 colour prototypes, 240 examples, the test split carved."""
    rng = np.random.default_rng(0)
    protos = rng.integers(0, 256, (4, 16, 16, 3))
    y = np.arange(240) % 4
    x = np.clip(protos[y] + rng.normal(0, 40, (240, 16, 16, 3)), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("npz") / "set.npz"
    np.savez(path, x=x, y=y, class_names=["a", "b", "c", "d"])
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("user-data") / "runs"


def _run(*overrides: str) -> tuple[dict, object]:
    with as_main("debug=smoke", *overrides) as cfg:
        validate(cfg)
        return upstream(cfg.procedure.name).run(cfg), cfg


LAYERS = ["distill.features.teacher_layers=[conv2_relu]", "distill.features.student_layers=[conv2_relu]"]
ON_NPZ = {
    "train": ["procedure=train"], "evaluate": ["procedure=evaluate"], "tree_distill": ["procedure=tree_distill"],
    "compute_stats": ["procedure=compute_stats"], "optimize_dataset": ["procedure=optimize_dataset"],
    "datafree_distill": ["procedure=datafree_distill", "student=lenet_half"], "hns_train": ["procedure=hns_train"],
    **{f"distill-{m}": ["procedure=distill", "student=lenet_half", f"distill.method={m}"] for m in ("hinton", "dkd", "dist")},
    **{f"distill-{m}": ["procedure=distill", "student=lenet_half", f"distill.method={m}", *LAYERS] for m in ("fitnet", "at")},
    "distill-reconstructed": ["procedure=distill", "student=lenet_half", "distill.data=reconstructed",
                              "distill.objective=top_layer"],
}


@pytest.mark.parametrize("case", list(ON_NPZ))
def test_every_procedure_runs_on_a_users_npz(case, npz_file, store):
    metrics, cfg = _run("dataset=npz", f"dataset.path={npz_file}", "model=lenet", f"paths.runs={store}", *ON_NPZ[case])
    assert upstream(cfg.procedure.name).artifact(cfg).is_done()


def test_a_tfds_data_set_prepared_on_disk_is_distilled(tmp_path):
    data_dir = prepare(tmp_path / "tfds", shape=(16, 16, 1))
    metrics, cfg = _run("procedure=distill", "dataset=tfds", "dataset.tfds_name=tiny_shapes",
                        f"dataset.data_dir={data_dir}", "model=lenet", "student=lenet_half", f"paths.runs={tmp_path}/runs")
    assert upstream("distill").artifact(cfg).is_done() and 0.0 <= metrics["test_accuracy"] <= 1.0
