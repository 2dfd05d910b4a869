"""The tree pictures: grey and colour inputs, the argmax decision path, the GIF."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.tree import plots as tree_plots


def snapshot(depth, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    leaves = rng.random((2 ** depth, classes))
    return {"kernel": rng.normal(size=(int(np.prod(shape)), 2 ** depth - 1)), "bias": np.zeros(2 ** depth - 1),
            "beta": np.ones(2 ** depth - 1), "leaves": leaves / leaves.sum(axis=1, keepdims=True)}


def routed_for(z: np.ndarray) -> dict:
    """route()-like arrays of one example from its node logits (depth 2)."""
    log_right, log_left = -np.log1p(np.exp(-z)), -np.log1p(np.exp(z))
    leaf = np.array([log_left[0] + log_left[1], log_left[0] + log_right[1],
                     log_right[0] + log_left[2], log_right[0] + log_right[2]])
    return {"z": z[None], "log_right": log_right[None], "log_leaf": leaf[None]}


def test_decision_path_is_the_argmax_path():
    """Greedy would go right at the root (z > 0), but leaf 1 (left, right) has the largest mass."""
    z = np.array([0.4, 3.0, 0.0])
    decision = tree_plots.decision_path(routed_for(z))
    assert decision["leaf"] == 1
    assert decision["path"] == [(0, False), (1, True)]
    assert decision["logits"] == pytest.approx([0.4, 3.0])
    p_right_root = 1 / (1 + np.exp(-0.4))
    assert decision["probability"][0] == pytest.approx(1 - p_right_root)
    assert decision["leaf_probability"] == pytest.approx((1 - p_right_root) / (1 + np.exp(-3.0)))


@pytest.mark.parametrize("shape", [(28, 28, 1), (8, 8, 3)])
def test_tree_and_path_pictures(tmp_path, shape):
    depth = 2
    snap = snapshot(depth, shape, 10)
    decision = tree_plots.decision_path(routed_for(np.array([0.4, 3.0, -1.0])))
    image = np.random.default_rng(1).random(shape).astype("float32")
    names = [f"c{i}" for i in range(10)]
    for path in (tree_plots.tree_png(snap, shape, tmp_path / "tree.png", title="t"),
                 tree_plots.tree_png(snap, shape, tmp_path / "tree-path.png", decision=decision),
                 tree_plots.path_png(snap, image, decision, names, tmp_path / "path.png")):
        with Image.open(path) as picture:
            assert picture.size[0] > 100 and picture.size[1] > 50


def test_reachable_classes_and_colours():
    leaves = np.eye(4)[[0, 1, 1, 3]]
    assert tree_plots.reachable_classes(leaves, 2) == [[0, 1, 3], [0, 1], [1, 3]]
    colours = tree_plots.filter_rgb(np.array([[[-1.0], [0.0], [1.0]]]))[0]
    assert colours[0, 2] > colours[0, 0] and colours[2, 0] > colours[2, 2]  # negative blue, positive red
    np.testing.assert_allclose(colours[1], colours[1].mean(), atol=0.03)  # zero is (near) white/grey


def test_gif_from_frames(tmp_path):
    frames = []
    for i in range(3):
        frames.append(tree_plots.tree_png(snapshot(2, (6, 6, 1), 3, seed=i), (6, 6, 1), tmp_path / f"f{i}.png"))
    out = tree_plots.gif(frames, tmp_path / "learning.gif")
    with Image.open(out) as animation:
        assert animation.n_frames == 3
