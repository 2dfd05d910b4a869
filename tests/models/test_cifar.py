"""The CIFAR networks of the KD benchmark: trainable parameter counts for 100 classes equal
the published models' (RepDistiller's table), and the blocks can be tapped by name."""
from __future__ import annotations

import numpy as np
import pytest

import models

PUBLISHED = {"resnet20": 278_324, "resnet56": 861_620, "resnet8x4": 1_233_540, "resnet32x4": 7_433_860,
             "wrn_16_2": 703_284, "wrn_40_2": 2_255_156}


@pytest.mark.parametrize("name,count", sorted(PUBLISHED.items()))
def test_parameter_count_matches_the_published_model(name, count):
    model = models.build(name, (32, 32, 3), 100)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == count


@pytest.mark.parametrize("name", ["resnet8x4", "wrn_16_2"])
def test_logits_and_named_stages(name):
    model = models.build(name, (32, 32, 3), 10)
    assert model(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 10)
    names = {layer.name for layer in model.layers}
    assert {"stage1_block0", "stage2_block0", "stage3_block0", "logits"} <= names
    assert model.get_layer("stage3_block0").output.shape[1:3] == (8, 8)  # 32 -> 16 -> 8


def test_a_saved_network_reloads_with_its_batch_statistics(tmp_path):
    import keras
    model = models.build("wrn_16_2", (16, 16, 3), 10)
    x = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    model(x, training=True)  # moves the BatchNorm statistics away from their start
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model(x, training=False), reloaded(x, training=False), rtol=1e-5, atol=1e-6)


def test_a_strided_conv_is_centred_where_its_shortcut_is():
    """A 3x3 stride-2 conv that copies its centre pixel reads rows and columns 0 and 2 of a
    4x4 input, as PyTorch's padding=1 and the 1x1 stride-2 shortcut do."""
    import keras
    import numpy as np

    from models.cifar import _conv
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, [_conv(inputs, 1, 3, 2, "main"), _conv(inputs, 1, 1, 2, "shortcut")])
    centre = np.zeros((3, 3, 1, 1), "float32")
    centre[1, 1] = 1.0
    model.get_layer("main").set_weights([centre])
    model.get_layer("shortcut").set_weights([np.ones((1, 1, 1, 1), "float32")])
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    main, shortcut = (np.asarray(out)[0, :, :, 0] for out in model(x))
    np.testing.assert_array_equal(main, [[0, 2], [8, 10]])
    np.testing.assert_array_equal(shortcut, main)
