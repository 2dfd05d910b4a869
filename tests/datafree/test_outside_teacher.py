"""A teacher trained elsewhere: BatchNorm layers, its own layer names, an output layer
called class_scores. Every data-free path takes it: compute_stats, each layerwise
objective of optimize_dataset, and distill on the reconstruction."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import models
from procedures import compute_stats, distill, optimize_dataset
from procedures._inputs import load_data
from src.errors import ConfigError
from tests.conftest import SMOKE, compose_config

FAST = ["optimize.per_class=16", "optimize.batch_size=8", "optimize.steps=20"]


@pytest.fixture(scope="module")
def outsider(tmp_path_factory) -> str:
    """A small BatchNorm MLP fitted for a few steps (so its BN statistics are not the
    initial ones), saved as a .keras file: fitted once per module, read by every test."""
    data = load_data(compose_config(*SMOKE, "procedure=train"))
    keras.utils.set_random_seed(0)
    inputs = keras.Input(data.input_shape, name="pixels")
    x = keras.layers.Flatten(name="flat")(inputs)
    x = keras.layers.Dense(32, name="hidden_a")(x)
    x = keras.layers.ReLU(name="act_a")(keras.layers.BatchNormalization(name="hidden_a_bn")(x))
    x = keras.layers.Dropout(0.2, name="drop")(x)
    x = keras.layers.Dense(16, name="hidden_b")(x)
    x = keras.layers.Activation("relu", name="act_b")(keras.layers.BatchNormalization(name="hidden_b_bn")(x))
    model = keras.Model(inputs, keras.layers.Dense(data.num_classes, name="class_scores")(x), name="outsider")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train, data.y_train, epochs=2, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("outsider") / "outsider.keras"
    model.save(path)
    return str(path)


def test_the_output_layer_and_the_pre_activations_are_found_by_structure(outsider):
    model = keras.saving.load_model(outsider)
    assert models.output_layer(model) == "class_scores"
    assert models.activation_layers(model) == ["hidden_a_bn", "hidden_b_bn", "class_scores"]


def test_stats_on_named_layers_add_the_output_divided_by_the_temperature(make_cfg, outsider):
    cfg = make_cfg("procedure=compute_stats", f"teacher.path={outsider}", "stats.layers=[hidden_b]", *FAST)
    compute_stats.run(cfg)
    stats = np.load(compute_stats.artifact(cfg).file("stats.npz"))
    assert list(stats["layers"]) == ["hidden_b", "class_scores"] and str(stats["output_layer"]) == "class_scores"
    data = load_data(cfg)
    logits = keras.saving.load_model(outsider)(tf.constant(data.x_train), training=False).numpy()
    members = data.y_train == 2
    np.testing.assert_allclose(stats["mean/class_scores"][2], logits[members].mean(0) / 8.0, rtol=1e-3, atol=1e-4)


def test_an_unknown_layer_lists_the_outsider_s_layers(make_cfg, outsider):
    with pytest.raises(ConfigError, match="stats.layers: the teacher outsider has no layer logits; "
                                          "its layers are: pixels, flat, hidden_a, "):
        compute_stats.run(make_cfg("procedure=compute_stats", f"teacher.path={outsider}", "stats.layers=[logits]",
                                   *FAST))


@pytest.mark.parametrize("objective", ["top_layer", "all_layers", "all_layers_dropout"])
def test_every_layerwise_objective_and_distill_take_the_outsider(make_cfg, outsider, objective):
    cfg = make_cfg("procedure=optimize_dataset", f"teacher.path={outsider}", f"optimize.objective={objective}", *FAST)
    assert optimize_dataset.run(cfg)["examples"] == 160
    run = distill.run(make_cfg("procedure=distill", f"teacher.path={outsider}", "student=hinton800",
                               "distill.data=reconstructed", f"distill.objective={objective}", "distill.baseline=false",
                               *FAST))
    assert run["train_examples"] == 144 and 0.0 <= run["test_accuracy"] <= 1.0


def test_the_batchnorm_objective_needs_no_stats_and_feeds_distill(make_cfg, outsider, tmp_path):
    cfg = make_cfg("procedure=optimize_dataset", f"teacher.path={outsider}", "optimize.objective=batchnorm",
                   "optimize.tv_l2=1e-4", *FAST)
    metrics = optimize_dataset.run(cfg)
    assert metrics["examples"] == 160 and "teacher" in optimize_dataset.artifact(cfg).key
    assert not list((tmp_path / "runs").glob("*/compute_stats/*"))  # no statistics were computed
    run = distill.run(make_cfg("procedure=distill", f"teacher.path={outsider}", "student=hinton800",
                               "distill.data=reconstructed", "distill.objective=batchnorm", "optimize.tv_l2=1e-4",
                               "distill.baseline=false", *FAST))
    assert run["train_examples"] == 144
