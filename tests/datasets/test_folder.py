"""dataset=folder: both layouts, the image formats and modes, each refusal, the cache."""
from __future__ import annotations

import io
import logging

import numpy as np
import pytest
from PIL import Image

import datasets
from datasets import DatasetError, folder, images
from datasets.progress import Progress
from tests.datasets.photos import PICTURES, make_photo_folder, save


def cfg(path, **settings):
    return {"name": "folder", "path": str(path), "split_seed": 0, "image_size": [32, 32], "color_mode": "auto",
            "test_fraction": 0.25, **settings}


def load(path, store=None, val_split=0.0, **settings):
    return datasets.load(cfg(path, **settings), val_split=val_split, store=store)


def solid(size=(20, 30), mode="RGB", colour=(200, 40, 40)):
    """An image of one colour, (height, width)."""
    return Image.new(mode, (size[1], size[0]), colour if mode != "L" else colour[0])


@pytest.fixture
def photos(tmp_path):
    return make_photo_folder(tmp_path / "photos")


def error(path, **settings) -> str:
    with pytest.raises(DatasetError) as info:
        load(path, **settings)
    message = str(info.value)
    assert "\n" not in message and "fix" in message.lower()
    return message


# ------------------------------------------------------------------ layouts
def test_class_folders_give_sorted_classes_and_a_stratified_test_split(photos):
    data = load(photos, val_split=0.25)
    assert data.class_names == tuple(sorted(PICTURES)) and data.input_shape == (32, 32, 3)
    assert np.bincount(data.y_test).tolist() == [2, 2, 2, 2]  # 25% of each class of 8
    assert len(data.x_train) + len(data.x_val) == 24 and data.x_train.dtype == np.float32
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0


def test_the_split_seed_moves_the_carved_test_split(photos):
    assert not np.array_equal(load(photos).x_test, load(photos, split_seed=1).x_test)
    assert np.array_equal(load(photos).x_test, load(photos).x_test)


def test_train_test_and_val_folders_are_the_splits(tmp_path):
    root = make_photo_folder(tmp_path / "split", splits=True)
    for i, name in enumerate(PICTURES):
        save(solid(colour=(i * 60, 0, 0)), root / "val" / name / "v.png")
    data = load(root, val_split=0.5)  # val_split does not apply: val/ is the validation split
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (24, 4, 8)
    assert sorted(data.y_val.tolist()) == [0, 1, 2, 3]


def test_class_names_set_the_label_order(photos):
    order = ["coffee", "astronaut", "chelsea", "camera"]
    assert load(photos, class_names=order).class_names == tuple(order)


# ------------------------------------------------------------------ formats and modes
def test_every_format_and_mode_is_read(tmp_path):
    rgb = solid(colour=(10, 200, 30))
    files = {"a/1.jpg": rgb, "a/2.png": rgb.convert("RGBA"), "a/3.bmp": rgb, "a/4.gif": rgb.convert("P", palette=Image.ADAPTIVE),
             "b/1.png": Image.fromarray(np.full((20, 30), 40000, np.uint16)),  # 16-bit grey
             "b/2.gif": solid(mode="L", colour=(90,)), "b/3.JPEG": solid(mode="L", colour=(90,)),
             "b/sub/4.png": solid(colour=(90, 90, 90)).convert("P", palette=Image.ADAPTIVE)}
    for rel, image in files.items():
        save(image, tmp_path / "f" / rel)
    (tmp_path / "f" / "b" / "notes.txt").write_text("not an image")
    (tmp_path / "f" / "b" / ".hidden.png").write_bytes(b"")
    data = load(tmp_path / "f", image_size=None, test_fraction=0.5)
    x = np.concatenate([data.x_train, data.x_test]) * 255
    assert len(x) == 8 and data.input_shape == (20, 30, 3)
    grey = x[np.concatenate([data.y_train, data.y_test]) == 1]
    assert np.allclose(grey[..., 0], grey[..., 2]) and np.abs(np.sort(grey.mean(axis=(1, 2, 3))) - [90, 90, 90, 156]).max() < 3


def test_auto_is_grey_when_no_image_has_colour_and_the_modes_can_be_forced(tmp_path):
    for i in range(2):
        save(solid(mode="L", colour=(50 + i,)), tmp_path / "g" / f"c{i}" / "1.png")
        save(solid(mode="L", colour=(60 + i,)), tmp_path / "g" / f"c{i}" / "2.jpg")
    assert load(tmp_path / "g").input_shape == (32, 32, 1)
    assert load(tmp_path / "g", color_mode="rgb").input_shape == (32, 32, 3)
    save(solid(), tmp_path / "g" / "c0" / "3.png")
    assert load(tmp_path / "g").input_shape == (32, 32, 3)
    assert load(tmp_path / "g", color_mode="grayscale").input_shape == (32, 32, 1)


def test_image_size_resizes_big_photographs(tmp_path):
    save(Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), np.uint8)), tmp_path / "p/a/1.jpg")
    save(solid((40, 50)), tmp_path / "p/b/1.png")
    data = load(tmp_path / "p", image_size=[24, 16], test_fraction=0.5)
    assert data.input_shape == (24, 16, 3) and len(data.x_train) == 2


# ------------------------------------------------------------------ refusals
def test_different_sizes_name_the_sizes_and_the_fix(photos):
    message = error(photos, image_size=None)
    assert "different sizes" in message and "dataset.image_size=[" in message and "files)" in message


def test_unreadable_and_empty_files_are_named_and_counted_and_can_be_skipped(photos, tmp_path):
    (photos / "coffee" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (photos / "camera" / "empty.png").write_bytes(b"")
    store = tmp_path / "runs"
    with pytest.raises(DatasetError) as info:
        load(photos, store=store)
    message = str(info.value)
    assert "2 of 34 files cannot be read" in message and "camera/empty.png" in message
    assert "coffee/broken.jpg" in message and "dataset.skip_unreadable=true" in message and "\n" not in message
    data = load(photos, store=store, skip_unreadable=True)
    assert data.facts == {"skipped_unreadable": 2} and len(data.x_train) + len(data.x_test) == 32


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"), ("file", "is a file, not a folder"), ("no_classes", "has no class folders"),
    ("empty_class", "has no images"), ("extra_folder", "has train/ and test/ and also the folders ['misc']"),
    ("test_only_class", "test/ has the classes ['zebra'], which train/ lacks"),
    ("wrong_names", "dataset.class_names names no folder ['dog']")])
def test_layouts_it_cannot_read_are_one_line_errors(tmp_path, case, expected):
    root = tmp_path / "d"
    if case == "file":
        root.write_text("x")
    elif case == "no_classes":
        save(solid(), root / "loose.png")
    elif case == "empty_class":
        save(solid(), root / "a" / "1.png")
        (root / "b").mkdir()
    elif case in ("extra_folder", "test_only_class"):
        for part in ("train", "test"):
            save(solid(), root / part / "a" / "1.png")
        save(solid(), root / ("misc/a/1.png" if case == "extra_folder" else "test/zebra/1.png"))
    elif case == "wrong_names":
        save(solid(), root / "cat" / "1.png")
    assert expected in error(root, **({"class_names": ["dog"]} if case == "wrong_names" else {}))


# ------------------------------------------------------------------ identity and cache
def test_identity_is_the_content_not_the_path(photos, tmp_path):
    store = tmp_path / "runs"
    first = datasets.identity(cfg(photos), store)
    moved = photos.rename(tmp_path / "elsewhere")
    assert datasets.identity(cfg(moved), store) == first and str(moved) not in str(first)
    assert first["class_names"] == sorted(PICTURES)
    save(solid(), moved / "coffee" / "0.jpg")  # one image changed
    assert datasets.identity(cfg(moved), store)["fingerprint"] != first["fingerprint"]
    assert datasets.identity(cfg(moved, image_size=[16, 16]), store) != datasets.identity(cfg(moved), store)


def test_a_folder_is_decoded_once_into_the_store(photos, tmp_path, monkeypatch):
    store = tmp_path / "runs"
    first = load(photos, store=store)
    cached = list((store / "cache" / "folder").glob("*/COMPLETE"))
    assert len(cached) == 1 and not list(store.rglob(".tmp-*"))
    assert isinstance(np.load(cached[0].parent / "x.npy", mmap_mode="r"), np.memmap)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")
    monkeypatch.setattr(images, "decode_all", no_decoding)
    monkeypatch.setattr(folder, "_fingerprint", no_decoding)  # the names, sizes and times find the content
    again = load(photos, store=store)
    assert np.array_equal(first.x_train, again.x_train) and first.class_names == again.class_names


def test_many_files_are_decoded_in_worker_processes(tmp_path, monkeypatch):
    for i in range(6):
        save(solid(colour=(i * 40, 0, 0)), tmp_path / "w" / f"c{i % 2}" / f"{i}.png")
    monkeypatch.setattr(images, "CHUNK", 2)
    monkeypatch.setattr(images, "workers_for", lambda seconds: 2)
    files = sorted((tmp_path / "w").rglob("*.png"))
    decoded = images.decode_all(files, (4, 4), 3)
    assert [int(d[0][0, 0, 0]) for d in decoded] == [int(f.stem) * 40 for f in files]


# ------------------------------------------------------------------ progress
class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_a_live_line_on_a_terminal_and_tenths_in_a_log(caplog):
    terminal = Stream(tty=True)
    bar = Progress("decoding d", 20, terminal)
    for _ in range(20):
        bar.advance(1)
    bar.close()
    assert terminal.getvalue().count("\r") == 20 and "20/20 files (" in terminal.getvalue()
    assert "files/s)" in terminal.getvalue()
    caplog.set_level(logging.INFO, logger="datasets.progress")
    bar = Progress("decoding d", 20, Stream(tty=False))
    for _ in range(20):
        bar.advance(1)
    assert len(caplog.records) == 10 and caplog.records[-1].getMessage().startswith("decoding d: 20/20 files")
