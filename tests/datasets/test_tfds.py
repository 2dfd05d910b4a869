"""dataset=tfds: a tiny data set prepared in a temporary data_dir with tfds' own writer,
read back without a download; the errors when it or tensorflow-datasets is missing."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import datasets
from datasets import DatasetError
from datasets import tfds as source


def prepare(data_dir, name="tiny_shapes", splits=("train", "test"), shape=(8, 8, 1), sizes=None):
    """Write `name` (3 classes) into data_dir the way `tfds build` would."""
    tfds = pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets is not installed: "
                                                              "pip install -e '.[tfds]'")
    import tensorflow as tf

    rng = np.random.default_rng(0)
    counts = {"train": 24, "test": 9, "validation": 6}

    def split(part):
        n = counts[part]
        x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        return tf.data.Dataset.from_tensor_slices({"image": x, "label": np.arange(n) % 3})

    features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=shape),
                                           "label": tfds.features.ClassLabel(names=["circle", "square", "star"])})
    tfds.dataset_builders.store_as_tfds_dataset(name=name, version="1.0.0", features=features, data_dir=str(data_dir),
                                                split_datasets={p: split(p) for p in splits})
    return data_dir


def cfg(data_dir, name="tiny_shapes", **settings):
    return {"name": "tfds", "tfds_name": name, "data_dir": str(data_dir), "split_seed": 0, "color_mode": "auto",
            "test_fraction": 0.25, **settings}


@pytest.fixture(autouse=True)
def fresh_builders():
    source._builders.clear()
    yield
    source._builders.clear()


def test_a_prepared_data_set_is_read_with_its_splits_and_class_names(tmp_path):
    data_dir = prepare(tmp_path / "tfds", splits=("train", "test", "validation"))
    data = datasets.load(cfg(data_dir), val_split=0.5, store=tmp_path / "runs")
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (24, 6, 9)
    assert data.class_names == ("circle", "square", "star") and data.input_shape == (8, 8, 1)
    assert list((tmp_path / "runs" / "cache" / "tfds").glob("*/COMPLETE"))


def test_without_a_test_split_one_is_carved_and_images_can_be_resized(tmp_path):
    data_dir = prepare(tmp_path / "tfds", name="no_test", splits=("train",))
    data = datasets.load(cfg(data_dir, name="no_test", image_size=[4, 6], color_mode="rgb"), val_split=0.0)
    assert np.bincount(data.y_test).tolist() == [2, 2, 2] and data.input_shape == (4, 6, 3)


def test_the_identity_is_the_prepared_files_content(tmp_path):
    first = datasets.identity(cfg(prepare(tmp_path / "a")), tmp_path / "runs")
    source._builders.clear()
    again = datasets.identity(cfg(prepare(tmp_path / "b")), tmp_path / "runs")
    assert first == again and "data_dir" not in first and first["class_names"] == ["circle", "square", "star"]


def test_a_data_set_not_prepared_names_the_data_dir(tmp_path):
    pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets is not installed: pip install -e '.[tfds]'")
    for name, expected in (("mnist", "is not prepared in dataset.data_dir="), ("no_such_set_xyz", "no such data set")):
        with pytest.raises(DatasetError) as info:
            datasets.load(cfg(tmp_path / "empty", name=name), val_split=0.0)
        message = str(info.value)
        assert expected in message and "never downloads" in message or "fix: prepare it" in message
        assert "\n" not in message and str(tmp_path / "empty") in message


def test_without_tensorflow_datasets_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(DatasetError, match=r'pip install -e "\.\[tfds\]"'):
        datasets.load(cfg(tmp_path), val_split=0.0)
