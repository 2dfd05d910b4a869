"""dataset.stream: splits written once into the store and memory-mapped, the same examples
in the same order as in memory; the budget that `auto` compares with; the refusals."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import datasets
from datasets import DatasetError, stream
from datasets.stream import budget_bytes
from tests.datasets.photos import make_photo_folder


def make_cfg(**overrides):
    values = dict(name="mnist_sample", path=None, split_seed=0, train_limit=600, test_limit=200, val_count=None,
                  num_samples=2000, image_shape=[28, 28, 1], num_classes=10, stream="auto", memory_budget=None)
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.mark.parametrize("text, expected", [("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), ("1.5 kb", 1500),
                                            ("1000", 1000), (4096, 4096)])
def test_a_budget_is_bytes_or_a_size_with_its_unit(text, expected):
    assert budget_bytes(text) == expected


def test_no_budget_is_a_quarter_of_the_machine():
    assert budget_bytes(None) == stream.machine_memory() // 4 > 0


@pytest.mark.parametrize("bad", ["lots", "-5MB", "0", "3 parsecs"])
def test_a_budget_that_is_no_size_is_refused_in_one_line(bad):
    with pytest.raises(DatasetError, match="dataset.memory_budget.*fix: a byte count or a size such as 512MB"):
        budget_bytes(bad)


def test_streamed_splits_are_the_in_memory_splits_memory_mapped(tmp_path):
    store = tmp_path / "runs"
    held = datasets.load(make_cfg(stream="false"), 0.1, store)
    streamed = datasets.load(make_cfg(stream="true"), 0.1, store)
    for split in ("train", "val", "test"):
        x, y = getattr(streamed, f"x_{split}"), getattr(streamed, f"y_{split}")
        assert isinstance(x, np.memmap) and not isinstance(getattr(held, f"x_{split}"), np.memmap)
        assert np.array_equal(x, getattr(held, f"x_{split}")) and np.array_equal(y, getattr(held, f"y_{split}"))
    assert len(streamed.x_train) == 540 and len(streamed.x_val) == 60 and len(streamed.x_test) == 200
    assert datasets.identity(make_cfg(stream="true"), store) == datasets.identity(make_cfg(stream="false"), store)


def test_auto_streams_exactly_when_the_decoded_splits_exceed_the_budget(tmp_path):
    size = 800 * 28 * 28 * 4  # 600 train-pool and 200 test images as float32
    below = datasets.load(make_cfg(memory_budget=str(size)), 0.1, tmp_path)
    above = datasets.load(make_cfg(memory_budget=str(size - 1)), 0.1, tmp_path)
    assert not isinstance(below.x_train, np.memmap) and isinstance(above.x_train, np.memmap)


def test_streamed_splits_are_written_once(tmp_path, monkeypatch):
    first = datasets.load(make_cfg(stream="true"), 0.1, tmp_path)

    def no_writing(*args):
        raise AssertionError("written again")
    monkeypatch.setattr(stream, "_write", no_writing)
    again = datasets.load(make_cfg(stream="true"), 0.1, tmp_path)
    assert np.array_equal(first.x_train, again.x_train)


def test_a_write_that_fails_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def broken(plan, folder):
        np.save(folder / "x_train.npy", np.zeros(3))
        raise OSError("disk full")
    monkeypatch.setattr(stream, "_write", broken)
    with pytest.raises(OSError):
        datasets.load(make_cfg(stream="true"), 0.1, tmp_path)
    assert not [p for p in (tmp_path / "cache" / "stream").iterdir() if p.suffix != ".lock"]
    assert not list(tmp_path.rglob(".tmp-*"))


def test_streaming_needs_a_store():
    with pytest.raises(DatasetError, match="dataset.stream=true writes the splits into the run store.*fix: set "
                                           "paths.runs"):
        datasets.load(make_cfg(stream="true"), 0.1, None)
    assert not isinstance(datasets.load(make_cfg(memory_budget="1"), 0.1, None).x_train, np.memmap)


def test_a_procedure_that_holds_its_data_refuses_a_stream_before_writing_it(tmp_path):
    with pytest.raises(DatasetError, match=r"procedure=tree_distill holds the whole data set in memory.*decoded "
                                           r"splits \(3 MB\) exceed dataset.memory_budget \(1 MB\); fix: "):
        datasets.load(make_cfg(memory_budget="1MB"), 0.1, tmp_path, in_memory_for="tree_distill")
    assert not (tmp_path / "cache" / "stream").exists()


def test_a_folder_streams_from_its_memory_mapped_cache(tmp_path):
    root = make_photo_folder(tmp_path / "photos", per_class=6)
    cfg = make_cfg(name="folder", path=str(root), train_limit=None, test_limit=None, image_size=[16, 16],
                   color_mode="auto", class_names=None, test_fraction=0.25, skip_unreadable=False, stream="true")
    streamed = datasets.load(cfg, 0.1, tmp_path / "runs")
    held = datasets.load(SimpleNamespace(**{**vars(cfg), "stream": "false"}), 0.1, tmp_path / "runs")
    assert isinstance(streamed.x_train, np.memmap) and streamed.x_train.shape[1:] == (16, 16, 3)
    assert np.array_equal(streamed.x_train, held.x_train) and np.array_equal(streamed.y_test, held.y_test)


def test_a_killed_writers_leftovers_are_cleared_by_the_next_write(tmp_path):
    """A writer killed mid-way leaves its temporary folder; the next writer of the entry
    removes it and writes the entry whole."""
    stale = tmp_path / "cache" / "stream" / ".tmp-99999-somekey"
    stale.mkdir(parents=True)
    (stale / "x_train.npy").write_bytes(b"half")
    from datasets.cache import Cache
    Cache(tmp_path).folder("stream", "somekey", lambda folder: np.save(folder / "x.npy", np.arange(3)))
    assert not stale.exists() and (tmp_path / "cache" / "stream" / "somekey" / "COMPLETE").is_file()
