"""Networks from outside the registry: any keras.applications constructor (keras_app) and
a user's function (factory), built by `models.network`; `reinitialized` and `check_logits`."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import models
from models import app_weights
from models.keras_app import input_size, preprocessing

GREY = (28, 28, 1)
APP = {"name": "keras_app", "arch": "MobileNetV3Small", "weights": None, "kwargs": {}}
TARGET = "tests.models.factory_nets"


def factory(name: str, **kwargs) -> dict:
    return {"name": "factory", "target": f"{TARGET}.{name}", "kwargs": kwargs}


@pytest.fixture(scope="module")
def app() -> keras.Model:
    """MobileNetV3Small for grey 28x28 images and 3 classes, random weights."""
    keras.utils.set_random_seed(0)
    return models.network(APP, GREY, 3)


def test_a_keras_app_is_flat_takes_the_data_as_it_is_and_returns_logits(app):
    names = [layer.name for layer in app.layers]
    assert names[:4] == ["image", "to_rgb", "resize", "preprocess"] and names[-2:] == ["head_pool", "logits"]
    assert "expanded_conv_project_bn" in names  # the network's own layers, addressable by name
    assert app.input_shape == (None, *GREY) and app.output_shape == (None, 3)
    assert app.get_layer("resize").output.shape[1:] == (32, 32, 3)  # grey to RGB, up to the minimum size
    assert models.output_layer(app) == "logits" and not app.get_layer("preprocess").trainable


def test_layer_names_do_not_depend_on_what_was_built_before(app):
    keras.layers.Activation("relu"), keras.layers.ReLU(), keras.layers.Conv2D(1, 1)  # take automatic names
    again = models.network(APP, GREY, 3)
    assert [layer.name for layer in again.layers] == [layer.name for layer in app.layers]


@pytest.mark.parametrize("arch", ["ResNet50", "DenseNet121", "MobileNetV2", "EfficientNetB0"])  # caffe, torch, tf, none
def test_the_frozen_preprocessing_is_the_network_s_own(arch):
    make = getattr(keras.applications, arch)
    layer = preprocessing(make, arch)
    pixels = np.random.default_rng(1).random((5, 3)).astype("float32")
    own = keras.ops.convert_to_numpy(layer(pixels))
    module = __import__(make.__module__, fromlist=["preprocess_input"])
    np.testing.assert_allclose(own, np.asarray(module.preprocess_input(255 * pixels)), rtol=1e-5, atol=1e-3)


def test_inputs_are_resized_up_to_the_network_s_minimum_only():
    assert input_size("MobileNetV3Small", 28, 28) == (32, 32) and input_size("InceptionV3", 28, 40) == (75, 75)
    assert input_size("ResNet50", 64, 48) == (64, 48)


def test_a_saved_keras_app_loads_without_this_project(app, tmp_path):
    app.save(tmp_path / "app.keras")
    x = np.random.default_rng(2).random((2, *GREY)).astype("float32")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "app.keras")(x), app(x), atol=1e-5)


@pytest.fixture(scope="module")
def no_top_weights(tmp_path_factory) -> tuple[str, dict]:
    """A weights file of MobileNetV3Small without its top, as Keras ships them, and its
    weights by layer name."""
    keras.utils.set_random_seed(5)
    base = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v3_small_no_top.weights.h5"
    base.save_weights(path)
    return str(path), {layer.name: layer.get_weights() for layer in base.layers if layer.weights}


def _holds(model: keras.Model, weights: dict) -> bool:
    return all(np.array_equal(a, b) for name, arrays in weights.items()
               for a, b in zip(arrays, model.get_layer(name).get_weights()))


def test_a_local_weights_file_and_imagenet_from_the_keras_cache_load(no_top_weights, monkeypatch):
    path, weights = no_top_weights
    assert _holds(models.network({**APP, "weights": path}, GREY, 3), weights)
    asked = []
    monkeypatch.setattr(app_weights, "download", lambda fname, origin, **kw: asked.append(fname) or path)
    assert _holds(models.network({**APP, "weights": "imagenet"}, GREY, 3), weights)
    assert asked == ["weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"]


def test_imagenet_weights_offline_are_one_line_naming_the_file(monkeypatch):
    def offline(fname, origin, **kw):
        raise OSError("URL fetch failure: no network")
    monkeypatch.setattr(app_weights, "download", offline)
    with pytest.raises(models.ModelError) as error:
        models.network({**APP, "weights": "imagenet"}, GREY, 3, key="student")
    message = str(error.value)
    assert "\n" not in message and message.startswith("student.weights=imagenet: the ImageNet weights of MobileNetV3Small")
    assert f"put weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5 there" in message
    assert str(app_weights.keras_cache() / "models") in message and "student.weights=null" in message


@pytest.mark.parametrize("spec,match", [
    ({**APP, "arch": "MobileNetV9"}, r"student.arch=MobileNetV9: keras.applications has no such network; it has: "
                                     r"ConvNeXtBase, .*MobileNetV3Small"),
    ({**APP, "weights": "/no/such/file.h5"}, r"student.weights=/no/such/file.h5: no such file"),
    ({**APP, "kwargs": {"depth": 3}}, r"student.arch=MobileNetV3Small cannot be built with student.kwargs=.*TypeError"),
])
def test_a_bad_keras_app_is_one_line(spec, match):
    with pytest.raises(models.ModelError, match=match) as error:
        models.network(spec, GREY, 3, key="student")
    assert "\n" not in str(error.value)


def test_a_factory_builds_the_user_s_network_with_its_kwargs():
    model = models.network(factory("small_cnn", width=6), GREY, 3)
    assert model.get_layer("conv").filters == 6 and model.output_shape == (None, 3)
    again = models.network(factory("small_cnn", width=6), GREY, 3)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]  # unnamed layers too


@pytest.mark.parametrize("target,match", [
    ("nowhere.nets.cnn", r"model.target=nowhere.nets.cnn: cannot import nowhere.nets \(ModuleNotFoundError"),
    (f"{TARGET}.missing", rf"model.target={TARGET}.missing: module {TARGET} has no missing"),
    (f"{TARGET}.NOT_CALLABLE", r"is a int, not a function \(input_shape, num_classes, \*\*kwargs\) -> keras.Model"),
    (f"{TARGET}.not_a_model", r"returned a str, not a keras.Model"),
    (f"{TARGET}.without_input", r"returned a model without a graph of layers \(subclassed, or a Sequential without"),
    (f"{TARGET}.wrong_size", r"returned a model with outputs of shape \(4,\), but the data has 3 classes"),
    (f"{TARGET}.broken", r"failed when called as broken\(input_shape=\(28, 28, 1\), num_classes=3.*RuntimeError"),
    (f"{TARGET}.softmax_head", r"applies a softmax, but the runner takes logits"),
])
def test_a_bad_factory_is_one_line(target, match):
    with pytest.raises(models.ModelError, match=match) as error:
        models.network({"name": "factory", "target": target, "kwargs": {}}, GREY, 3)
    assert "\n" not in str(error.value)


def test_reinitialized_keeps_the_architecture_and_draws_fresh_weights():
    model = models.network(factory("small_cnn"), GREY, 3)
    fresh = []
    for _ in range(2):
        keras.utils.set_random_seed(7)
        fresh.append(models.reinitialized(model))
    assert [layer.name for layer in fresh[0].layers] == [layer.name for layer in model.layers]
    assert not np.array_equal(fresh[0].get_layer("conv").kernel, model.get_layer("conv").kernel)
    np.testing.assert_array_equal(fresh[0].get_layer("conv").kernel, fresh[1].get_layer("conv").kernel)
