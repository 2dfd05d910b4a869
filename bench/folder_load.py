"""Loading a folder of images: dataset=folder's first load (fingerprint, decode on every
core, cache) and its cached reload, against keras.utils.image_dataset_from_directory
reading the same folder once.

    python bench/folder_load.py [--images 10000] [--size 64] [--classes 10] [--repeats 3] [--folder DIR]

The bench writes --images JPEGs of --size x --size pixels (smooth colour gradients with
noise, --classes class folders) into a temporary folder, or reuses --folder. Three
contenders, timed alternately (median of --repeats rounds):
  first   what the first command on a folder does: datasets.identity (read every file,
          hash it) and datasets.load into an empty run store (decode, resize to --size,
          cache as uint8, carve the splits, float32): a new store every round;
  keras   image_dataset_from_directory(image_size=(size, size), shuffle=False) iterated
          once to the end, every batch pulled to NumPy: the same files decoded and resized;
  cached  what every later command does: identity and load from the warm store.
The files are read once before the rounds, so every contender finds them in the page
cache: the figures are decoding, not disk. keras / first is taken per round, then the
median.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Decoding workers are spawned and import this file again: TensorFlow is imported in main() only.
from bench import _timing as T  # noqa: E402


def make_folder(root: Path, images: int, size: int, classes: int) -> None:
    """`images` JPEGs in `classes` folders: per class a colour gradient, per image noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size)[None, :, None]
    for c in range(classes):
        (root / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
        base = 255 * (ramp * rng.uniform(0, 1, 3) + (1 - ramp) * rng.uniform(0, 1, 3))
        base = np.broadcast_to(base, (size, size, 3))
        for i in range(c, images, classes):
            noisy = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / f"class_{c:02d}" / f"{i:05d}.jpg", quality=90)


def main() -> None:
    # One function on purpose: a bench reads top to bottom as its recipe (setup, contenders, paired timing).
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None, help="an existing image folder instead of a new one")
    args = parser.parse_args()

    import logging

    import keras

    import datasets
    from datasets import images

    logging.basicConfig(format="  %(name)s: %(message)s")
    logging.getLogger("datasets.images").setLevel(logging.DEBUG)  # how many processes each pass used
    work = Path(tempfile.mkdtemp(prefix="folder_load-"))
    folder = args.folder or work / "images"
    if args.folder is None:
        print(f"writing {args.images} {args.size}x{args.size} JPEGs into {folder} ...", flush=True)
        make_folder(folder, args.images, args.size, args.classes)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    for p in files:  # into the page cache: every contender reads warm files
        p.read_bytes()
    cfg = {"name": "folder", "path": str(folder), "image_size": [args.size, args.size], "color_mode": "rgb"}
    T.header("folder_load: seconds to load a folder of images, dataset=folder against "
             "keras.utils.image_dataset_from_directory",
             f"{len(files)} files ({megabytes:.1f} MB) in {folder}, decoded to {args.size}x{args.size}x3; "
             f"decoded here, or on {images.cores()} processes when the first files' pace says it pays "
             f"(datasets/images.py; logged below); repeats={args.repeats}")

    def first() -> None:
        store = work / "store-first"
        shutil.rmtree(store, ignore_errors=True)
        datasets.identity(cfg, store)
        datasets.load(cfg, val_split=0.1, store=store)

    def keras_once() -> None:
        loaded = keras.utils.image_dataset_from_directory(folder, image_size=(args.size, args.size), batch_size=256,
                                                          shuffle=False, verbose=False)
        pixels = [x.numpy() for x, _ in loaded]
        assert sum(len(x) for x in pixels) == len(files)

    warm = work / "store-warm"

    def cached() -> None:
        datasets.identity(cfg, warm)
        data = datasets.load(cfg, val_split=0.1, store=warm)
        assert len(data.x_train) + len(data.x_val) + len(data.x_test) == len(files)

    print("\nwarm-up: the cached store is filled, Keras and TensorFlow start ...", flush=True)
    print(f"  fill the store {T.time_once(cached):.2f} s, keras {T.time_once(keras_once):.2f} s", flush=True)
    times = T.alternate({"first": first, "keras": keras_once, "cached": cached}, args.repeats,
                        log=lambda s: print(s, flush=True))
    ratio = T.median(T.pair_ratios(times["keras"], times["first"]))

    print(f"\n=== folder_load: {len(files)} files of {args.size}x{args.size}, median of {args.repeats} ===")
    rows = [[name, f"{T.median(times[name]):.2f}", f"{len(files) / T.median(times[name]):,.0f}"]
            for name in ("first", "keras", "cached")]
    T.print_table(["contender", "seconds", "files/s"], rows)
    print("\nraw seconds per round: " + "; ".join(f"{k}={T.fmt_list(v, '.2f')}" for k, v in times.items()))
    print(f"\nRESULT folder_load images={len(files)} size={args.size} keras_over_first={ratio:.2f} "
          f"first_s={T.median(times['first']):.2f} keras_s={T.median(times['keras']):.2f} "
          f"cached_s={T.median(times['cached']):.2f} (median of {args.repeats})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
