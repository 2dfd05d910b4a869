"""Networks from outside the registry in the procedures: a student from a file
(student.path), a user's function (model=factory / student=factory) and keras.applications
(model=keras_app): built, keyed by their identity, and refused in one line before any work."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from models import app_weights
from procedures import compute_stats, distill, optimize_dataset, train, tree_distill
from procedures._inputs import build_model, load_data, network_key, network_name
from src.errors import RunnerError
from tests.conftest import SMOKE, compose_config

TINY = ["dataset.num_samples=96", "dataset.num_classes=3", "train.batch_size=32"]
FACTORY = "tests.models.factory_nets"
SMALL_CNN = ["student=factory", f"student.target={FACTORY}.small_cnn"]


@pytest.fixture
def tiny(make_cfg):
    """make_cfg on 96 synthetic 28x28 grey images of 3 classes."""
    return lambda *overrides: make_cfg(*TINY, *overrides)


def _save_small_cnn(path, width: int = 4, seed: int = 0) -> str:
    keras.utils.set_random_seed(seed)
    data = load_data(compose_config(*SMOKE, *TINY))
    from tests.models.factory_nets import small_cnn
    small_cnn(data.input_shape, data.num_classes, width=width).save(path)
    return str(path)


def _same(a: keras.Model, b: keras.Model) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_a_student_file_gives_the_architecture_with_fresh_or_its_own_weights(tiny, tmp_path):
    path = _save_small_cnn(tmp_path / "my_student.keras")
    data, saved = load_data(tiny()), keras.saving.load_model(path)
    fresh = [build_model(tiny(f"student.path={path}").student, data, 0, "student") for _ in range(2)]
    assert _same(fresh[0], fresh[1]) and not _same(fresh[0], saved)  # scratch and distilled start alike
    assert [layer.name for layer in fresh[0].layers] == [layer.name for layer in saved.layers]
    assert _same(build_model(tiny(f"student.path={path}", "student.init=weights").student, data, 0), saved)


def test_a_student_file_and_a_factory_student_distill_keyed_by_their_content(tiny, tmp_path):
    path = _save_small_cnn(tmp_path / "my_student.keras")
    cfg = tiny("procedure=distill", "model=lenet_half", f"student.path={path}")
    metrics = distill.run(cfg)
    run = distill.artifact(cfg)
    assert run.is_done() and run.dir.name.startswith("my_student-from-lenet_half-")
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and "kd_gain" in metrics  # the baseline is the same file's network
    assert set(run.key["student"]) == {"file", "init"} and run.key["student"]["init"] == "reinit"
    assert distill.artifact(tiny("procedure=distill", "model=lenet_half", f"student.path={path}",
                                 "student.init=weights")).dir != run.dir
    _save_small_cnn(path, width=5)  # the same file name, another network
    assert distill.artifact(cfg).dir != run.dir

    cfg = tiny("procedure=distill", "model=lenet_half", *SMALL_CNN, "+student.kwargs.width=6", "distill.baseline=false")
    assert distill.run(cfg)["student_params"] > 0  # from the same teacher, reused
    run = distill.artifact(cfg)
    assert run.dir.name.startswith("small_cnn-from-lenet_half-")
    assert run.key["student"]["kwargs"] == {"width": 6} and run.key["student"]["source"]
    assert distill.artifact(tiny("procedure=distill", "model=lenet_half", *SMALL_CNN, "+student.kwargs.width=7",
                                 "distill.baseline=false")).dir != run.dir


def test_a_factory_teacher_serves_train_stats_by_layer_name_and_the_tree(tiny):
    teacher = ["model=factory", f"model.target={FACTORY}.small_cnn"]
    stats = compute_stats.run(tiny("procedure=compute_stats", *teacher, "stats.layers=[conv]"))
    assert list(stats["units"]) == ["conv", "dense_1"]  # the named layer, then the (unnamed) output layer
    assert train.artifact(tiny("procedure=train", *teacher)).is_done()  # the teacher, trained first
    tree = tree_distill.run(tiny("procedure=tree_distill", *teacher, "tree.depth=2", "tree.sklearn=false",
                                 "tree.baseline=false"))
    assert "teacher_test_accuracy" in tree  # a new process loads it as evaluate does: tests/e2e/test_networks.py


def test_a_factory_module_s_source_keys_its_networks(tiny, tmp_path, monkeypatch):
    module = tmp_path / "lab_nets.py"
    module.write_text("from tests.models.factory_nets import small_cnn as net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tiny("procedure=train", "model=factory", "model.target=lab_nets.net")
    before = train.artifact(cfg).dir
    module.write_text(module.read_text() + "# the researcher edits the network\n")
    assert train.artifact(cfg).dir != before and network_name(cfg.model) == "net"


def test_this_project_s_networks_keep_their_keys(tiny):
    cfg = tiny("procedure=train", "model=lenet")
    assert network_key(cfg.model) == {"name": "lenet", "init": "default", "dropout": None, "input_dropout": None}
    app = tiny("procedure=train", "model=keras_app", "model.arch=MobileNetV3Small")
    assert network_key(app.model)["arch"] == "MobileNetV3Small" and network_name(app.model) == "MobileNetV3Small"
    assert train.artifact(app).dir != train.artifact(tiny("procedure=train", "model=keras_app",
                                                          "model.arch=EfficientNetB0")).dir
    stored = OmegaConf.create({"name": "keras_app", "arch": "ResNet50", "init": "default"})  # a run's config.yaml
    assert network_name(stored) == "ResNet50" and network_name(OmegaConf.create({"name": "lenet"})) == "lenet"


def _offline(fname, origin, **kwargs):
    raise OSError("no network")


APP = ["model=keras_app", "model.arch=MobileNetV3Small"]
BAD = {  # overrides -> what the one-line error says
    "missing student file": (["student.path=/no/such/student.keras"],
                             "student.path=/no/such/student.keras: no such file or folder"),
    "unknown student arch": (["student=keras_app", "student.arch=MobileNetV9"],
                             "student.arch=MobileNetV9: keras.applications has no such network"),
    "unknown teacher arch": (["model=keras_app", "model.arch=ResNet5"], "model.arch=ResNet5: keras.applications has"),
    "target does not import": (["student=factory", "student.target=nowhere.nets.cnn"],
                               "student.target=nowhere.nets.cnn: cannot import nowhere.nets"),
    "target not callable": (["student=factory", f"student.target={FACTORY}.NOT_CALLABLE"], "is a int, not a function"),
    "not a keras.Model": (["student=factory", f"student.target={FACTORY}.not_a_model"], "returned a str, not a keras"),
    "wrong output size": (["model=factory", f"model.target={FACTORY}.wrong_size"], "but the data has 3 classes"),
    "imagenet offline": ([*APP, "model.weights=imagenet"], "model.weights=imagenet: the ImageNet weights of "),
    "feature layer missing": ([*APP, "distill.method=fitnet", "distill.features.teacher_layers=[conv9]",
                               "distill.features.student_layers=[conv2_relu]"],
                              "distill.features.teacher_layers: the teacher MobileNetV3Small has no layer conv9"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_network_is_one_line_before_any_work(tiny, tmp_path, monkeypatch, case):
    monkeypatch.setattr(app_weights, "download", _offline)
    overrides, message = BAD[case]
    with pytest.raises(RunnerError) as error:
        distill.run(tiny("procedure=distill", "student=lenet_half", *overrides))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not list((tmp_path / "runs").rglob("key.json"))  # no run was started, finished or not


@pytest.mark.parametrize("teacher,objective,message", [
    (APP, "spectral_layer_pairs", r"optimize.objective=spectral_layer_pairs cannot make a graph of the teacher "
                                  r"MobileNetV3Small .*use optimize.objective=all_layers"),
    (["model=factory", f"model.target={FACTORY}.small_cnn"], "all_layers_dropout", r"has no Dropout layers"),
    (["model=factory", f"model.target={FACTORY}.small_cnn"], "batchnorm", r"has no BatchNormalization layers"),
])
def test_an_objective_that_cannot_read_the_teacher_is_refused_before_training_it(tiny, tmp_path, teacher, objective,
                                                                                 message):
    with pytest.raises(RunnerError, match=message):
        optimize_dataset.run(tiny("procedure=optimize_dataset", *teacher, f"optimize.objective={objective}"))
    assert not list((tmp_path / "runs").rglob("key.json"))


def test_report_names_a_network_as_its_summaries_do():
    """keras_app and factory runs show their architecture and function, not the kind."""
    from omegaconf import OmegaConf

    from procedures.report import _setting
    config = OmegaConf.create({"model": {"name": "keras_app", "arch": "MobileNetV3Small", "path": None},
                               "student": {"name": "factory", "target": "my_nets.tiny_cnn", "path": None},
                               "dataset": {"name": "folder"}})
    assert _setting(config, "model.name") == "MobileNetV3Small"
    assert _setting(config, "student.name") == "tiny_cnn"
    assert _setting(config, "dataset.name") == "folder"
    assert _setting(OmegaConf.create({"model": {"name": "lenet"}}), "model.name") == "lenet"
