"""dataset=npz: the Keras mnist.npz keys and x, y; each refusal names the key and the fix."""
from __future__ import annotations

import numpy as np
import pytest

import datasets
from datasets import DatasetError

RNG = np.random.default_rng(0)


def arrays(n_train=40, n_test=12, shape=(8, 8), classes=4, dtype=np.uint8) -> dict:
    def images(n):
        x = RNG.integers(0, 256, (n, *shape)).astype(np.uint8)
        return x if dtype == np.uint8 else (x / 255.0).astype(dtype)
    return {"x_train": images(n_train), "y_train": np.arange(n_train) % classes,
            "x_test": images(n_test), "y_test": np.arange(n_test) % classes}


def write(tmp_path, name="set.npz", **content):
    path = tmp_path / name
    np.savez(path, **content)
    return path


def load(path, val_split=0.0, store=None, **settings):
    cfg = {"name": "npz", "path": str(path), "split_seed": 0, "test_fraction": 0.25, **settings}
    return datasets.load(cfg, val_split=val_split, store=store)


def test_the_keras_keys_load_as_they_are(tmp_path):
    data = load(write(tmp_path, **arrays()), val_split=0.25)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (30, 10, 12)
    assert data.input_shape == (8, 8, 1) and data.class_names == ("class_0", "class_1", "class_2", "class_3")
    assert data.x_train.dtype == np.float32 and data.x_train.max() <= 1.0


def test_x_y_carve_a_stratified_test_split_and_class_names_name_the_classes(tmp_path):
    a = arrays(shape=(6, 6, 3), dtype=np.float32)
    data = load(write(tmp_path, x=a["x_train"], y=a["y_train"], class_names=["a", "b", "c", "d"]))
    assert np.bincount(data.y_test).tolist() == [2, 2, 2, 2] and len(data.x_train) == 32
    assert data.class_names == ("a", "b", "c", "d") and data.input_shape == (6, 6, 3)


def test_a_validation_split_in_the_file_is_the_validation_split(tmp_path):
    a = arrays()
    data = load(write(tmp_path, **a, x_val=a["x_test"][:5], y_val=a["y_test"][:5]), val_split=0.5)
    assert (len(data.x_train), len(data.x_val)) == (40, 5)


def test_uint8_and_float_give_the_same_images(tmp_path):
    a = arrays()
    as_float = {k: (v / 255.0 if k.startswith("x") else v) for k, v in a.items()}
    assert np.allclose(load(write(tmp_path, **a)).x_test, load(write(tmp_path, "f.npz", **as_float)).x_test)


def bad(**changes):
    a = arrays()
    a.update(changes)
    return {k: v for k, v in a.items() if v is not None}


@pytest.mark.parametrize("content, key, expected", [
    (bad(y_test=None), "y_test", "lacks the key y_test"),
    ({"images": np.zeros((2, 4, 4))}, "x_train", "has neither x_train, y_train, x_test, y_test nor x, y"),
    ({"x": np.zeros((4, 4, 4), np.uint8)}, "y", "lacks the key y"),
    (bad(y_train=np.arange(40) % 4 - 1), "y_train", "outside 0..3"),
    (bad(y_test=np.arange(12) % 4 + 4, class_names=np.array(["a", "b", "c", "d"])), "y_test", "outside 0..3"),
    (bad(x_train=np.full((40, 8, 8), np.nan, np.float32)), "x_train", "NaN or infinite"),
    (bad(x_test=np.full((12, 8, 8), np.inf)), "x_test", "NaN or infinite"),
    (bad(x_test=np.full((12, 8, 8), 2.0)), "x_test", "outside [0, 1]"),
    (bad(x_test=np.zeros((12, 9, 8), np.uint8)), "x_test", "but x_train of (8, 8, 1)"),
    (bad(x_train=np.zeros((40, 8, 8), np.int64)), "x_train", "has dtype int64"),
    (bad(y_train=np.zeros(39, np.int64)), "y_train", "has 39 labels but x_train has 40 images"),
    (bad(y_train=np.zeros(40, np.float32)), "y_train", "integer class indices"),
    (bad(x_train=np.zeros((40, 8), np.uint8)), "x_train", "(N, H, W) or (N, H, W, C)"),
])
def test_each_bad_input_is_one_line_naming_the_key_and_the_fix(tmp_path, content, key, expected):
    with pytest.raises(DatasetError) as info:
        load(write(tmp_path, **content))
    message = str(info.value)
    assert key in message and expected in message and "fix:" in message and "\n" not in message


def test_the_path_must_be_an_npz_file(tmp_path):
    for path, expected in ((tmp_path / "missing.npz", "does not exist"), (tmp_path, "is a folder")):
        with pytest.raises(DatasetError, match=expected):
            load(path)


def test_identity_is_the_arrays_not_the_file(tmp_path):
    a = arrays()
    first = datasets.identity({"name": "npz", "path": str(write(tmp_path, "one.npz", **a))}, tmp_path / "runs")
    resaved = datasets.identity({"name": "npz", "path": str(write(tmp_path, "two.npz", **a))}, tmp_path / "runs")
    assert first == resaved and "one.npz" not in str(first) and first["class_names"][0] == "class_0"
    a["x_test"][0, 0, 0] ^= 1
    changed = datasets.identity({"name": "npz", "path": str(write(tmp_path, "one.npz", **a))}, tmp_path / "runs")
    assert changed["fingerprint"] != first["fingerprint"]
