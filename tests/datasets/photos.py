"""A small folder of real photographs for tests, cut from scikit-image's bundled pictures:
one class per picture, crops of different sizes saved as JPEG and PNG, one class grey."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PICTURES = ("astronaut", "camera", "chelsea", "coffee")  # camera is grey


def picture(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def crops(name: str, count: int, seed: int = 0) -> list[Image.Image]:
    """`count` crops of the picture at random places, shrunk to sizes between 24 and 48 pixels."""
    rng = np.random.default_rng([seed, len(name)])
    whole = picture(name)
    images = []
    for _ in range(count):
        side = int(rng.integers(120, 200))
        top, left = (int(rng.integers(0, whole.shape[d] - side)) for d in (0, 1))
        crop = Image.fromarray(whole[top:top + side, left:left + side])
        height, width = (int(v) for v in rng.integers(24, 49, size=2))
        images.append(crop.resize((width, height), Image.BILINEAR))
    return images


def save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_photo_folder(root: Path, per_class: int = 8, splits: bool = False, seed: int = 0) -> Path:
    """root/<picture>/<i>.jpg|png (or root/train|test/<picture>/... with splits=True): JPEG
    and PNG in turn, sizes that differ, grey and colour."""
    for name in PICTURES:
        for i, image in enumerate(crops(name, per_class, seed)):
            part = ("test" if i % 4 == 3 else "train") if splits else ""
            save(image, root / part / name / f"{i}.{'jpg' if i % 2 == 0 else 'png'}")
    return root
