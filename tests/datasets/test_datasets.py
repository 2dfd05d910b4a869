"""Tests of datasets/: shapes, dtypes, reproducible splits, local file formats, offline errors."""
from __future__ import annotations

import gzip
import pickle
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import datasets
from datasets import DatasetError, download, fashion_mnist
from datasets.files import read_idx

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def make_cfg(**overrides):
    values = dict(name="mnist_sample", path=None, split_seed=0, train_limit=None, test_limit=None,
                  num_samples=2000, image_shape=[28, 28, 1], num_classes=10)
    values.update(overrides)
    return SimpleNamespace(**values)


def check_contract(ds, shape):
    """float32 images in [0, 1] of the given (H, W, C); int64 labels in range."""
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == shape and y.shape == (len(x),)
        if x.size:
            assert 0.0 <= x.min() and x.max() <= 1.0
            assert 0 <= y.min() and y.max() < ds.num_classes
    assert ds.input_shape == shape


def rows(x):
    return {row.tobytes() for row in x}


# ------------------------------------------------------------------ helpers writing files
def write_idx(file: Path, array: np.ndarray) -> None:
    """Write a uint8 IDX file (gzip when the name ends in .gz)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "wb") as f:
        f.write(data)


def make_idx_folder(folder: Path, gz: bool, n_train=20, n_test=10, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), array)
    return arrays


def failing_loader(_name):
    def load_data():
        raise OSError("simulated: no network")
    return load_data


# ------------------------------------------------------------------ package hygiene
def test_import_does_not_pull_in_tensorflow():
    code = ("import sys, datasets; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_names_are_the_public_list():
    assert datasets.NAMES == ("mnist_sample", "digits", "synthetic", "fashion_mnist", "mnist",
                              "mnist_conv", "cifar10", "cifar100", "reconstructed", "folder", "npz", "tfds")


def test_unknown_name_lists_known_names():
    with pytest.raises(DatasetError) as info:
        datasets.load(make_cfg(name="imagenet"), 0.1)
    message = str(info.value)
    assert "imagenet" in message
    assert all(name in message for name in datasets.NAMES)


# ------------------------------------------------------------------ mnist_sample
@pytest.fixture(scope="module")
def sample():
    return datasets.load(make_cfg(), 0.1)


def test_mnist_sample_shapes_and_contract(sample):
    assert len(sample.x_train) == 3600 and len(sample.x_val) == 400 and len(sample.x_test) == 1000
    check_contract(sample, (28, 28, 1))
    assert sample.class_names == tuple("0123456789")
    assert sample.x_train.max() == 1.0  # scaled by 1/255, not left at 0..255 or squashed


def test_mnist_sample_test_is_balanced_and_disjoint(sample):
    assert np.bincount(sample.y_test, minlength=10).tolist() == [100] * 10
    train_rows = rows(sample.x_train) | rows(sample.x_val)
    assert not train_rows & rows(sample.x_test)
    assert not rows(sample.x_train) & rows(sample.x_val)


def test_mnist_sample_split_depends_only_on_split_seed(sample):
    again = datasets.load(make_cfg(), 0.1)
    np.testing.assert_array_equal(again.x_test, sample.x_test)
    np.testing.assert_array_equal(again.x_val, sample.x_val)
    np.testing.assert_array_equal(again.y_train, sample.y_train)
    other = datasets.load(make_cfg(split_seed=1), 0.1)
    assert rows(other.x_test) != rows(sample.x_test)


def test_val_split_zero_gives_empty_val_with_shape():
    ds = datasets.load(make_cfg(), 0.0)
    assert ds.x_val.shape == (0, 28, 28, 1) and ds.y_val.shape == (0,)
    assert ds.x_val.dtype == np.float32 and ds.y_val.dtype == np.int64
    assert len(ds.x_train) == 4000


def test_val_count_carves_exactly_that_many_examples():
    """A reference split such as 50,000 / 10,000 of 60,000 is exact, not round(0.1667 n)."""
    ds = datasets.load(make_cfg(train_limit=600, val_count=100), 0.1667)
    assert (len(ds.x_train), len(ds.x_val)) == (500, 100)


def test_val_count_that_takes_every_example_is_refused():
    """A preset's 10,000 on a 4,000-image set would leave no training data."""
    with pytest.raises(DatasetError, match=r"dataset.val_count=4000 takes all 4000.*val_count=null"):
        datasets.load(make_cfg(val_count=4000), 0.1)


def test_train_and_test_limits():
    ds = datasets.load(make_cfg(train_limit=500, test_limit=50), 0.2)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (400, 100, 50)
    assert len(np.unique(ds.y_test)) > 5  # limits take a shuffled subset, not one class


@pytest.mark.parametrize("val_split", [-0.1, 1.0])
def test_bad_val_split_is_rejected(val_split):
    with pytest.raises(DatasetError, match="val_split"):
        datasets.load(make_cfg(name="synthetic", num_samples=50), val_split)


def test_accepts_omegaconf():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"name": "synthetic", "path": None, "num_samples": 40,
                                      "image_shape": [4, 4, 2], "num_classes": 4})
    omegaconf.OmegaConf.set_struct(cfg, True)  # missing keys (split_seed...) take defaults
    ds = datasets.load(cfg, 0.25)
    assert ds.x_train.shape == (30, 4, 4, 2) and len(ds.x_test) == 10


# ------------------------------------------------------------------ digits / synthetic
def test_digits():
    ds = datasets.load(make_cfg(name="digits"), 0.1)
    check_contract(ds, (8, 8, 1))
    assert len(ds.x_test) == 360 and len(ds.x_train) + len(ds.x_val) == 1797 - 360
    assert ds.x_train.max() == 1.0
    assert np.bincount(ds.y_test).min() >= 35  # stratified


def test_synthetic_shapes_and_reproducibility():
    cfg = make_cfg(name="synthetic", num_samples=200, image_shape=[6, 5, 3], num_classes=4)
    ds = datasets.load(cfg, 0.25)
    check_contract(ds, (6, 5, 3))
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (150, 50, 50)
    assert ds.num_classes == 4
    np.testing.assert_array_equal(datasets.load(cfg, 0.25).x_train, ds.x_train)
    tiny = datasets.load(make_cfg(name="synthetic", num_samples=8, num_classes=10), 0.0)
    assert len(tiny.x_test) == 10  # at least one per class


def test_synthetic_is_learnable():
    from sklearn.linear_model import LogisticRegression

    ds = datasets.load(make_cfg(name="synthetic", num_samples=400), 0.0)
    model = LogisticRegression(max_iter=300).fit(ds.x_train.reshape(len(ds.x_train), -1),
                                                 ds.y_train)
    accuracy = model.score(ds.x_test.reshape(len(ds.x_test), -1), ds.y_test)
    assert accuracy > 0.8


# ------------------------------------------------------------------ IDX files
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_idx_folder(tmp_path, gz, name):
    arrays = make_idx_folder(tmp_path, gz)
    ds = datasets.load(make_cfg(name=name, path=str(tmp_path)), 0.25)
    check_contract(ds, (28, 28, 1))
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (15, 5, 10)
    expected = arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255
    assert rows(ds.x_test[..., 0]) == rows(expected)  # same images, shuffled
    if name == "fashion_mnist":
        assert ds.class_names[0] == "T-shirt/top" and ds.class_names[-1] == "Ankle boot"


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), array)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_idx_names_the_file(tmp_path, gz):
    make_idx_folder(tmp_path, gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) - 100])
    with pytest.raises(DatasetError, match=name):
        datasets.load(make_cfg(name="mnist", path=str(tmp_path)), 0.1)


def test_bad_idx_magic_names_the_file(tmp_path):
    (tmp_path / "x-idx1-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="x-idx1-ubyte"):
        read_idx(tmp_path / "x-idx1-ubyte")


def test_incomplete_idx_folder_says_what_is_missing(tmp_path):
    make_idx_folder(tmp_path, gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="dataset.path"):
        datasets.load(make_cfg(name="mnist", path=str(tmp_path)), 0.1)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        datasets.load(make_cfg(name="mnist", path=str(tmp_path / "nope")), 0.1)


def test_mnist_conv_upscales_to_32(tmp_path):
    make_idx_folder(tmp_path, gz=True)
    ds = datasets.load(make_cfg(name="mnist_conv", path=str(tmp_path)), 0.0)
    check_contract(ds, (32, 32, 1))
    assert ds.x_val.shape == (0, 32, 32, 1)
    assert ds.x_train.std() > 0.1  # real content, not zeros


def test_mnist_conv_is_bilinear_not_padding():
    from datasets.mnist import upscale_to_32

    flat = np.full((3, 28, 28), 255, np.uint8)
    out = upscale_to_32(flat)
    assert out.shape == (3, 32, 32, 1)
    # zero padding would leave 2-pixel black borders; a bilinear upscale keeps them bright
    assert out[:, 1, 1, 0].min() > 0.9 and out[:, 16, 16, 0].min() == pytest.approx(1.0)


# ------------------------------------------------------------------ Keras .npz / CIFAR
def test_mnist_from_keras_npz(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mnist.npz",
             x_train=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
             y_train=np.arange(30, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
             y_test=np.arange(12, dtype=np.uint8) % 10)
    for path in (tmp_path / "mnist.npz", tmp_path):  # the file, or the folder holding it
        ds = datasets.load(make_cfg(name="mnist", path=str(path)), 0.1)
        check_contract(ds, (28, 28, 1))
        assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (27, 3, 12)


def test_npz_missing_keys_is_reported(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match="y_train"):
        datasets.load(make_cfg(name="mnist", path=str(tmp_path / "mnist.npz")), 0.1)


def test_cifar10_from_keras_npz(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "cifar10.npz",
             x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
             y_train=(np.arange(20) % 10).reshape(-1, 1).astype(np.uint8),  # Keras: (N, 1)
             x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
             y_test=(np.arange(10) % 10).reshape(-1, 1).astype(np.uint8))
    ds = datasets.load(make_cfg(name="cifar10", path=str(tmp_path / "cifar10.npz")), 0.2)
    check_contract(ds, (32, 32, 3))
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (16, 4, 10)
    assert ds.class_names[0] == "airplane" and ds.num_classes == 10


def _pickle(file: Path, obj) -> None:
    with open(file, "wb") as f:
        pickle.dump(obj, f)


def test_cifar10_from_pickle_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    image = np.zeros((3, 32, 32), np.uint8)
    image[0] = 255  # a pure red image stored channel-first, as in the official files
    for i in range(1, 6):
        _pickle(folder / f"data_batch_{i}",
                {b"data": np.tile(image.reshape(1, -1), (2, 1)), b"labels": [i, i + 1]})
    _pickle(folder / "test_batch", {b"data": np.tile(image.reshape(1, -1), (3, 1)),
                                    b"labels": [0, 1, 2]})
    ds = datasets.load(make_cfg(name="cifar10", path=str(tmp_path)), 0.0)  # parent folder works
    check_contract(ds, (32, 32, 3))
    assert len(ds.x_train) == 10 and len(ds.x_test) == 3
    assert ds.x_train[0, 5, 5].tolist() == [1.0, 0.0, 0.0]  # channels last after transposing


def test_cifar100_from_pickle_folder_uses_meta_names(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for split, n in (("train", 8), ("test", 4)):
        _pickle(folder / split, {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                 b"fine_labels": list(np.arange(n) * 10),
                                 b"coarse_labels": [0] * n})
    _pickle(folder / "meta", {b"fine_label_names": [f"name{i}".encode() for i in range(100)]})
    ds = datasets.load(make_cfg(name="cifar100", path=str(folder)), 0.25)
    check_contract(ds, (32, 32, 3))
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (6, 2, 4)
    assert ds.num_classes == 100 and ds.class_names[7] == "name7"


# ------------------------------------------------------------------ offline behaviour
@pytest.mark.parametrize("name", ["mnist", "mnist_conv", "cifar10", "cifar100"])
def test_offline_download_failure_explains_the_fix(monkeypatch, name):
    monkeypatch.setattr(download, "keras_loader", failing_loader)
    with pytest.raises(DatasetError) as info:
        datasets.load(make_cfg(name=name), 0.1)
    assert "dataset.path" in str(info.value) and "simulated: no network" in str(info.value)


def test_offline_fashion_mentions_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(download, "keras_loader", failing_loader)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "empty")
    with pytest.raises(DatasetError) as info:
        datasets.load(make_cfg(name="fashion_mnist"), 0.1)
    message = str(info.value)
    assert "dataset.path" in message and "dataset-fashion-mnist" in message
    assert str(tmp_path / "empty") in message  # says where it looked


def test_keras_loader_is_used_when_no_local_copy(monkeypatch):
    rng = np.random.default_rng(4)
    fake = ((rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), np.arange(10) % 10),
            (rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), np.arange(5) % 10))
    asked = []
    monkeypatch.setattr(download, "keras_loader", lambda name: asked.append(name) or (lambda: fake))
    ds = datasets.load(make_cfg(name="mnist"), 0.2)
    assert asked == ["mnist"] and ds.source == "keras.datasets.mnist"
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (8, 2, 5)


def test_fetch_takes_the_loader_as_a_parameter():
    with pytest.raises(DatasetError, match="looked in /somewhere"):
        download.fetch("mnist", looked_in="/somewhere", fix="dataset.path=...",
                       loader=failing_loader("mnist"))


@pytest.mark.skipif(not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_folder():
    ds = datasets.load(make_cfg(name="fashion_mnist"), 0.1)
    assert len(ds.x_train) + len(ds.x_val) == 60000 and len(ds.x_test) == 10000
    assert len(ds.x_val) == 6000
    check_contract(ds, (28, 28, 1))
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert "fashion-mnist" in ds.source


# ------------------------------------------------------------------ reconstructed
def test_reconstructed_loads_npz_with_empty_test(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.random((30, 8, 8, 1), dtype=np.float32)
    names = np.array(["a", "b", "c"])
    np.savez(tmp_path / "data.npz", x=x, y=np.arange(30) % 3, class_names=names)
    for path in (tmp_path / "data.npz", tmp_path):
        ds = datasets.load(make_cfg(name="reconstructed", path=str(path)), 0.2)
        check_contract(ds, (8, 8, 1))
        assert (len(ds.x_train), len(ds.x_val)) == (24, 6)
        assert ds.x_test.shape == (0, 8, 8, 1) and ds.y_test.shape == (0,)
        assert ds.class_names == ("a", "b", "c")
        assert rows(np.concatenate([ds.x_train, ds.x_val])) == rows(x)


def test_reconstructed_needs_a_path_and_finite_values(tmp_path):
    with pytest.raises(DatasetError, match="dataset.path"):
        datasets.load(make_cfg(name="reconstructed"), 0.1)
    # optimised inputs may leave [0, 1]: they are kept unchanged
    np.savez(tmp_path / "data.npz", x=np.full((4, 2, 2, 1), -1.5, np.float32), y=np.zeros(4, int))
    assert datasets.load(make_cfg(name="reconstructed", path=str(tmp_path)), 0.0).x_train.min() == -1.5
    np.savez(tmp_path / "data.npz", x=np.full((4, 2, 2, 1), np.nan, np.float32), y=np.zeros(4, int))
    with pytest.raises(DatasetError, match="NaN"):
        datasets.load(make_cfg(name="reconstructed", path=str(tmp_path)), 0.0)
