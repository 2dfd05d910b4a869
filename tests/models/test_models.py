"""Tests for the models registry: shapes, parameter counts, naming, init, save/load."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import models  # noqa: E402
from models import NAMES, ModelError, activation_layers, build, output_layer  # noqa: E402
from src.schema.core import MODEL_INITS  # noqa: E402

MNIST = (28, 28, 1)
EXPECTED_ACTIVATIONS = {
    "hinton1200": ["fc1", "fc2", "logits"],
    "hinton800": ["fc1", "fc2", "logits"],
    "lenet": ["conv1", "conv2", "fc1", "fc2", "logits"],
    "lenet_half": ["conv1", "conv2", "fc1", "fc2", "logits"],
    "lenet_bn": ["conv1", "conv2", "fc1", "fc2", "logits"],
    "convnet": ["conv1", "conv2", "fc1", "logits"],
}
MNIST_MODELS = tuple(EXPECTED_ACTIVATIONS)  # the CIFAR networks have tests/models/test_cifar.py


def _batch(shape, n=4, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def test_names():
    assert NAMES == ("hinton1200", "hinton800", "lenet", "lenet_half", "lenet_bn", "convnet", "resnet20",
                     "resnet56", "resnet8x4", "resnet32x4", "wrn_16_2", "wrn_40_2")


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_builds_on_mnist_and_outputs_logits(name):
    model = build(name, MNIST, 10)
    assert model.name == name
    out = np.asarray(model(_batch(MNIST), training=False))
    assert out.shape == (4, 10)
    # Logits, not probabilities: the last layer is linear.
    assert model.get_layer("logits").activation is keras.activations.linear
    assert not np.allclose(out.sum(axis=1), 1.0)


@pytest.mark.parametrize("name", ["lenet", "lenet_half", "lenet_bn", "convnet"])
@pytest.mark.parametrize("shape, classes", [((32, 32, 3), 100), ((32, 32, 1), 10), ((8, 8, 1), 10)])
def test_image_models_on_other_shapes(name, shape, classes):
    model = build(name, shape, classes)
    assert model(_batch(shape), training=False).shape == (4, classes)


def test_small_input_fallback_uses_same_padding():
    assert build("lenet", (8, 8, 1), 10).get_layer("conv1").padding == "same"
    assert build("lenet", (32, 32, 1), 10).get_layer("conv1").padding == "valid"
    # convnet's VALID stack still fits 8x8 (8 -> 6 -> 4 -> 2), so no fallback needed.
    assert build("convnet", (8, 8, 1), 10).get_layer("conv1").padding == "valid"
    assert build("convnet", (4, 4, 1), 10).get_layer("conv1").padding == "same"


def test_image_models_reject_flat_input():
    with pytest.raises(ModelError):
        build("lenet", (784,), 10)


def test_hinton_accepts_flat_input():
    assert build("hinton800", (784,), 10).count_params() == 1_276_810


@pytest.mark.parametrize(
    "name, shape, expected",
    [
        # 784*1200+1200 = 942,000; 1200*1200+1200 = 1,441,200; 1200*10+10 = 12,010
        ("hinton1200", MNIST, 2_395_210),
        # 784*800+800 = 628,000; 800*800+800 = 640,800; 800*10+10 = 8,010
        ("hinton800", MNIST, 1_276_810),
        # conv1 5*5*1*6+6 = 156; conv2 5*5*6*16+16 = 2,416; flatten 5*5*16 = 400
        # fc1 400*120+120 = 48,120; fc2 120*84+84 = 10,164; logits 84*10+10 = 850
        ("lenet", (32, 32, 1), 61_706),
        # conv1 5*5*1*3+3 = 78; conv2 5*5*3*8+8 = 608; flatten 5*5*8 = 200
        # fc1 200*120+120 = 24,120; fc2 10,164; logits 850
        ("lenet_half", (32, 32, 1), 35_820),
        # lenet's kernels without the 6+16+120+84 biases before a BN (61,480), plus each
        # BN's 4 per channel: 4 * (6+16+120+84) = 904
        ("lenet_bn", (32, 32, 1), 62_384),
    ],
)
def test_parameter_counts(name, shape, expected):
    assert build(name, shape, 10).count_params() == expected


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_activation_layers(name):
    model = build(name, MNIST, 10)
    names = activation_layers(model)
    assert names == EXPECTED_ACTIVATIONS[name]
    for layer_name in names:
        layer = model.get_layer(layer_name)
        assert layer.activation is keras.activations.linear
    for layer_name in names[:-1]:
        assert isinstance(model.get_layer(f"{layer_name}_relu"), keras.layers.ReLU)


@pytest.mark.parametrize("name", ["hinton800", "lenet"])
def test_pre_activation_taps(name):
    keras.utils.set_random_seed(0)
    model = build(name, MNIST, 10)
    x = _batch(MNIST, n=8)
    pre = np.asarray(keras.Model(model.input, model.get_layer("fc1").output)(x))
    post = np.asarray(keras.Model(model.input, model.get_layer("fc1_relu").output)(x))
    assert (pre < 0).any()
    assert (post >= 0).all()
    np.testing.assert_allclose(post, np.maximum(pre, 0.0), atol=1e-6)


def test_the_output_layer_is_the_logits_whatever_its_name():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="relu", name="inner")(inputs)  # no pre-activation to tap
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
    assert output_layer(model) == "out" and activation_layers(model) == ["out"]


def test_paper_init_hinton():
    keras.utils.set_random_seed(0)
    model = build("hinton1200", MNIST, 10, init="paper")
    for layer_name in ("fc1", "fc2", "logits"):
        kernel, bias = (np.asarray(w) for w in model.get_layer(layer_name).get_weights())
        # TruncatedNormal(stddev=1) cut at 2 sigma has std ~= 0.8796.
        assert abs(kernel.std() - 0.88) < 0.02, layer_name
        assert np.abs(kernel).max() <= 2.0 + 1e-6
        np.testing.assert_allclose(bias, 0.1)


def test_paper_init_lenet():
    keras.utils.set_random_seed(0)
    model = build("lenet", (32, 32, 1), 10, init="paper")
    for layer_name in ("conv1", "conv2", "fc1"):
        kernel, bias = model.get_layer(layer_name).get_weights()
        # conv1 has only 150 weights, hence the looser tolerance.
        assert abs(kernel.std() - 0.088) < 0.015, layer_name
        assert np.abs(kernel).max() <= 0.2 + 1e-6
        np.testing.assert_array_equal(bias, 0.0)


def test_default_init_is_glorot_zero_bias():
    model = build("hinton800", MNIST, 10)
    kernel, bias = model.get_layer("fc1").get_weights()
    limit = np.sqrt(6.0 / (784 + 800))
    assert np.abs(kernel).max() <= limit + 1e-6
    np.testing.assert_array_equal(bias, 0.0)


def test_convnet_paper_equals_default():
    keras.utils.set_random_seed(3)
    a = build("convnet", MNIST, 10, init="paper").get_weights()
    keras.utils.set_random_seed(3)
    b = build("convnet", MNIST, 10, init="default").get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("init", MODEL_INITS)
def test_build_is_deterministic_under_seed(init):
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(123)
        weights.append(build("lenet", MNIST, 10, init=init).get_weights())
    for wa, wb in zip(*weights):
        np.testing.assert_array_equal(wa, wb)
    # Layers of equal shape must not share an initialiser seed.
    keras.utils.set_random_seed(123)
    model = build("hinton800", MNIST, 800, init=init)
    assert not np.array_equal(model.get_layer("fc2").kernel, model.get_layer("logits").kernel)


def test_unknown_name():
    with pytest.raises(ModelError) as info:
        build("resnet", MNIST, 10)
    assert isinstance(info.value, ValueError)
    for name in NAMES:
        assert name in str(info.value)


def test_unknown_init():
    with pytest.raises(ModelError) as info:
        build("lenet", MNIST, 10, init="he")
    assert "default" in str(info.value) and "paper" in str(info.value)


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_save_load_round_trip(name, tmp_path):
    model = build(name, MNIST, 10, init="paper")
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    x = _batch(MNIST)
    np.testing.assert_array_equal(
        np.asarray(model(x, training=False)), np.asarray(reloaded(x, training=False))
    )
    assert reloaded.name == name
    assert activation_layers(reloaded) == EXPECTED_ACTIVATIONS[name]


def test_lenet_bn_normalises_every_hidden_layer_before_its_relu(tmp_path):
    """conv/dense (no bias) -> <name>_bn -> <name>_relu; BN statistics move in training only,
    and survive a .keras round trip (optimize.objective=batchnorm reads them)."""
    keras.utils.set_random_seed(0)
    model = build("lenet_bn", MNIST, 10)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in bns] == ["conv1_bn", "conv2_bn", "fc1_bn", "fc2_bn"]
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert not model.get_layer(name).use_bias
        bn = model.get_layer(f"{name}_bn")
        assert bn.input is model.get_layer(name).output
        assert model.get_layer(f"{name}_relu").input is bn.output
    assert model.get_layer("logits").use_bias
    before = np.asarray(model.get_layer("conv1_bn").moving_mean)
    model(_batch(MNIST, n=8), training=False)
    np.testing.assert_array_equal(before, model.get_layer("conv1_bn").moving_mean)
    model(_batch(MNIST, n=8), training=True)
    assert not np.array_equal(before, model.get_layer("conv1_bn").moving_mean)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(reloaded.get_layer("conv1_bn").moving_mean, model.get_layer("conv1_bn").moving_mean)


def test_dropout_only_in_teacher():
    x = _batch(MNIST, n=8)
    teacher = build("hinton1200", MNIST, 10)
    assert not np.allclose(teacher(x, training=True), teacher(x, training=False))
    np.testing.assert_array_equal(teacher(x, training=False), teacher(x, training=False))
    student = build("hinton800", MNIST, 10)
    np.testing.assert_allclose(student(x, training=True), student(x, training=False), atol=1e-6)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in student.layers)


def test_dropout_overrides_replace_the_architecture_rates():
    teacher = build("hinton1200", MNIST, 10, dropout=0.3, input_dropout=0.0)
    rates = {layer.name: layer.rate for layer in teacher.layers if isinstance(layer, keras.layers.Dropout)}
    assert rates == {"fc1_dropout": 0.3, "fc2_dropout": 0.3}  # rate 0 builds no layer
    student = build("hinton800", MNIST, 10, dropout=0.1)
    assert [layer.rate for layer in student.layers if isinstance(layer, keras.layers.Dropout)] == [0.1, 0.1]
    default = build("hinton1200", MNIST, 10)
    assert sorted(layer.rate for layer in default.layers if isinstance(layer, keras.layers.Dropout)) == [0.2, 0.5, 0.5]


def test_dropout_override_on_a_model_without_it_names_the_ones_with_it():
    with pytest.raises(ModelError, match="hinton1200, hinton800"):
        build("lenet", MNIST, 10, dropout=0.2)


def test_the_schema_names_exactly_the_hiders_and_seekers_that_exist():
    """The TF-free schema validates hns.hider / hns.seeker before TensorFlow starts; the
    builders are models/hns.py's registries. They must name the same networks."""
    from models import hns
    from src.schema import hns as schema
    assert set(schema.HIDERS) == set(hns.HIDERS) and set(schema.SEEKERS) == set(hns.SEEKERS)
