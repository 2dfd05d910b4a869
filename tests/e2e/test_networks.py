"""`python main.py` with networks from outside the registry: keras.applications as teacher
and student (FitNets by layer name), a researcher's own module on PYTHONPATH, a student
from a .keras file, and ImageNet weights on a machine without network."""
from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e  # real `python main.py` runs: `python -m pytest -m e2e`

TINY = ["debug=smoke", "dataset=synthetic", "dataset.num_samples=96", "dataset.num_classes=3", "train.batch_size=32"]
LAB_NETS = '''
import keras


@keras.saving.register_keras_serializable(package="mylab")
class Scale(keras.layers.Layer):
    """A custom layer: the saved model loads only where this module was imported."""

    def call(self, x):
        return 0.5 * x


def tiny(input_shape, num_classes, width=4):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3, strides=2, name="conv")(Scale()(inputs))
    x = keras.layers.Flatten()(keras.layers.ReLU(name="conv_relu")(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
'''


def _store(tmp_path) -> list[str]:
    return [f"paths.runs={tmp_path}/runs", f"hydra.run.dir={tmp_path}/out"]


def test_keras_applications_teacher_and_student_distill_with_fitnets_by_layer_name(cli, tmp_path):
    app = ["model=keras_app", "model.arch=MobileNetV3Small"]
    result = cli("procedure=distill", *TINY, *_store(tmp_path), *app, "student=keras_app",
                 "student.arch=MobileNetV3Small", "+student.kwargs.minimalistic=true", "distill.method=fitnet",
                 "distill.features.teacher_layers=[expanded_conv_project_bn]",
                 "distill.features.student_layers=[expanded_conv_project_bn]", "distill.baseline=false")
    assert result.returncode == 0, result.output[-3000:]
    assert "teacher MobileNetV3Small" in result.output and "student MobileNetV3Small distilled" in result.output
    assert list((tmp_path / "runs/synthetic/distill").glob("MobileNetV3Small-from-MobileNetV3Small-*/DONE"))
    evaluated = cli("procedure=evaluate", *TINY, *_store(tmp_path), *app)  # the teacher, loaded in a new process
    assert evaluated.returncode == 0, evaluated.output[-3000:]
    assert len(list((tmp_path / "runs/synthetic/train").glob("MobileNetV3Small-*"))) == 1  # reused, not retrained


def test_a_researcher_s_module_on_the_path_is_a_teacher_and_a_student(cli, tmp_path):
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "nets.py").write_text(LAB_NETS)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    mine = ["model.target=mylab.nets.tiny", "+model.kwargs.width=6"]
    trained = cli("procedure=train", *TINY, *_store(tmp_path), "model=factory", *mine, env=env)
    assert trained.returncode == 0, trained.output[-3000:]
    distilled = cli("procedure=distill", *TINY, *_store(tmp_path), "model=factory", *mine, "student=factory",
                    "student.target=mylab.nets.tiny", "distill.method=at", "distill.features.teacher_layers=[conv]",
                    "distill.features.student_layers=[conv]", env=env)  # the teacher's model.keras holds Scale
    assert distilled.returncode == 0, distilled.output[-3000:]
    assert "student tiny distilled" in distilled.output and "kd_gain" in distilled.output
    datafree = cli("procedure=datafree_distill", *TINY, *_store(tmp_path), "model=factory", *mine, "student=factory",
                   "student.target=mylab.nets.tiny", env=env)
    assert datafree.returncode == 0 and "student tiny, dafl (no data)" in datafree.output, datafree.output[-3000:]
    rebuilt = cli("procedure=optimize_dataset", *TINY, *_store(tmp_path), "model=factory", *mine,
                  "optimize.objective=all_layers", "stats.layers=[conv]", env=env)
    assert rebuilt.returncode == 0, rebuilt.output[-3000:]
    assert list((tmp_path / "runs/synthetic/optimize_dataset").glob("tiny-all_layers-*/DONE"))


def test_a_student_file_distills_from_its_own_weights(cli, tmp_path):
    import keras
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Dense(8, name="hidden")(keras.layers.Flatten()(inputs))
    keras.Model(inputs, keras.layers.Dense(3, name="scores")(keras.layers.ReLU()(x))).save(tmp_path / "mine.keras")
    result = cli("procedure=distill", *TINY, *_store(tmp_path), "model=lenet_half",
                 f"student.path={tmp_path / 'mine.keras'}", "student.init=weights")
    assert result.returncode == 0, result.output[-3000:]
    assert "student mine distilled" in result.output and "student mine from scratch" in result.output


def test_imagenet_weights_offline_are_one_line_before_any_run(cli, tmp_path):
    offline = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "KERAS_HOME": str(tmp_path)}
    result = cli("procedure=distill", *TINY, *_store(tmp_path), "model=keras_app", "model.arch=MobileNetV3Small",
                 "model.weights=imagenet", env=offline)
    assert result.returncode == 2 and "Traceback" not in result.output
    line = next(line for line in result.output.splitlines() if "ModelError" in line)
    assert f"put weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 there" in line
    assert f"not in {tmp_path}/models" in line
    assert not list((tmp_path / "runs").rglob("key.json"))
