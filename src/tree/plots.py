"""Pictures of a soft decision tree (matplotlib, no display; NumPy in, files out).

- `tree_png`: the whole tree. Every inner node's filter is drawn as an image (blue
  negative, red positive, per-filter scale centred on 0; RGB filters of colour data as
  0.5 + w / 2max|w|), above it the classes reachable below it (the argmax classes of the
  leaves of its subtree), every leaf's class distribution as bars with its argmax class.
  Given a decision path, its edges are green and each node on it shows its logit.
- `path_png`: one input's argmax path (the leaf the prediction uses, not a greedy walk):
  each node's filter with its logit beta (x.w + b) and the branch taken, and the
  correlation view x * w (summed over channels; colour scale centred on 0), then the leaf.
- `gif`: frames (one per epoch) into an animated GIF.

The whole tree is one composed image with one `imshow` (not one axes per node). A
depth-8 tree of 28x28 filters (511 nodes, an 8,704 x 508 pixel image) still takes about
6 s on a 2-core CPU, most of it matplotlib's resampling and PNG encoding of that image:
`tree.gif` (a frame per epoch) is for small trees.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from PIL import Image

from models.soft_tree import ancestors, leaves_under
from src.plots import plt, save_figure
from src.runstore import atomic_write

GAP, LABEL = 6, 12  # pixels between leaves; pixels kept for text above/below a row
DIVERGING = plt.get_cmap("RdBu_r")


def filter_rgb(weights: np.ndarray) -> np.ndarray:
    """(H, W, C) filter -> (H, W, 3) colours with 0 at the middle of the scale."""
    scale = float(np.abs(weights).max()) or 1.0
    if weights.shape[-1] == 3:
        return np.clip(0.5 + 0.5 * weights / scale, 0, 1)
    return DIVERGING(0.5 + 0.5 * weights.mean(axis=-1) / scale)[..., :3]


def leaf_rgb(distribution: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bar image of a class distribution; the most likely class in orange."""
    image = np.ones((height, width, 3))
    classes = len(distribution)
    column_class = np.minimum((np.arange(width) * classes) // width, classes - 1)
    top = int(np.argmax(distribution))
    for column, c in enumerate(column_class):
        bar = int(round(distribution[c] * (height - 1)))
        if bar:
            image[height - bar:, column] = (0.95, 0.55, 0.1) if c == top else (0.2, 0.3, 0.6)
    return image


def reachable_classes(leaves: np.ndarray, depth: int) -> list[list[int]]:
    """For every inner node, the sorted argmax classes of the leaves under it."""
    best = np.argmax(leaves, axis=-1)
    return [sorted(set(best[list(leaves_under(node, depth))].tolist())) for node in range(2 ** depth - 1)]


def _class_text(classes: list[int], num_classes: int) -> str:
    return ",".join(map(str, classes)) if len(classes) <= 6 or num_classes <= 12 else f"{len(classes)} classes"


def tree_png(snapshot: dict, input_shape, path: Path, title: str = "", decision: dict | None = None,
             max_width: int = 14000) -> Path:
    """The whole tree (see module doc). `decision` = output of `decision_path`, or None."""
    canvas, centres = _tree_canvas(snapshot, input_shape)
    height, width = canvas.shape[:2]
    scale = min(max(1.0, min(3.0, 1400 / width)), max_width / width)  # figure pixels per canvas pixel
    dpi = 100
    figure = plt.figure(figsize=(width * scale / dpi, (height * scale + 40) / dpi), dpi=dpi)
    axis = figure.add_axes([0, 0, 1, height * scale / (height * scale + 40)])
    axis.imshow(canvas, interpolation="nearest", extent=(0, width, height, 0))
    axis.set_xlim(0, width)
    axis.set_ylim(height, 0)
    axis.axis("off")
    inner = snapshot["kernel"].shape[1]
    _draw_edges(axis, centres, inner, decision)
    _draw_labels(axis, centres, snapshot["leaves"], inner, width, 72 / dpi * scale, decision)
    if title:
        figure.suptitle(title, fontsize=10, y=0.995, va="top")
    return save_figure(figure, path, dpi=None, tight=False)


def _tree_canvas(snapshot: dict, input_shape) -> tuple[np.ndarray, dict]:
    """The picture of every filter and leaf on its level (RGB canvas), and each node's
    (centre x, top, bottom) on it; leaves are numbered after the inner nodes."""
    kernel, leaves = snapshot["kernel"], snapshot["leaves"]
    inner, num_leaves = kernel.shape[1], leaves.shape[0]
    depth = int(np.log2(num_leaves))
    h, w = int(input_shape[0]), int(input_shape[1]) if len(input_shape) > 1 else 1
    cell, row = w + GAP, h + 2 * LABEL
    width, height = num_leaves * cell, (depth + 1) * row
    canvas = np.ones((height, width, 3))
    centres = {}
    for node in range(inner):
        level = int(np.floor(np.log2(node + 1)))
        cx = (node - (2 ** level - 1) + 0.5) * width / 2 ** level
        top, left = level * row + LABEL, int(round(cx - w / 2))
        canvas[top:top + h, left:left + w] = filter_rgb(kernel[:, node].reshape(h, w, -1))
        centres[node] = (cx, top, top + h)
    for leaf in range(num_leaves):
        left, top = leaf * cell + GAP // 2, depth * row + LABEL
        canvas[top:top + h, left:left + w] = leaf_rgb(leaves[leaf], h, w)
        centres[inner + leaf] = (left + w / 2, top, top + h)
    return canvas, centres


def _draw_edges(axis, centres: dict, inner: int, decision: dict | None) -> None:
    """Grey edges from every node to its children; the decision path's in green."""
    on_path = set()
    if decision is not None:
        nodes = [n for n, _ in decision["path"]] + [inner + decision["leaf"]]
        on_path = set(zip(nodes[:-1], nodes[1:]))
    segments, colours, widths = [], [], []
    for node in range(inner):
        for child in (2 * node + 1, 2 * node + 2):
            x0, _, bottom = centres[node]
            x1, child_top, _ = centres[child]
            segments.append([(x0, bottom), (x1, child_top)])
            green = (node, child) in on_path
            colours.append((0.1, 0.65, 0.2) if green else (0.6, 0.6, 0.6))
            widths.append(2.5 if green else 0.5)
    axis.add_collection(LineCollection(segments, colors=colours, linewidths=widths))


def _draw_labels(axis, centres: dict, leaves: np.ndarray, inner: int, width: int, points: float,
                 decision: dict | None) -> None:
    """Reachable classes above each inner node, the path's logits below its nodes, and
    each leaf's most likely class (`points`: font points per canvas pixel)."""
    num_leaves, num_classes = leaves.shape
    labels = reachable_classes(leaves, int(np.log2(num_leaves)))
    for node in range(inner):
        cx, top, _ = centres[node]
        level = int(np.floor(np.log2(node + 1)))
        text = _class_text(labels[node], num_classes)
        size = float(np.clip(min(width / 2 ** level / max(len(text), 1) * 1.6, LABEL * 0.9) * points, 2, 11))
        axis.text(cx, top - 2, text, ha="center", va="bottom", fontsize=size)
    logits = dict(zip([n for n, _ in decision["path"]], decision["logits"])) if decision else {}
    for node, z in logits.items():
        cx, _, bottom = centres[node]
        axis.text(cx, bottom + 1, f"{z:+.2f}", ha="center", va="top", color="darkgreen",
                  fontsize=float(np.clip(LABEL * 0.8 * points, 3, 11)))
    best = np.argmax(leaves, axis=-1)
    for leaf in range(num_leaves):
        cx, _, bottom = centres[inner + leaf]
        bold = decision is not None and leaf == decision["leaf"]
        axis.text(cx, bottom + 1, str(best[leaf]), ha="center", va="top", fontweight="bold" if bold else "normal",
                  color="darkgreen" if bold else "black", fontsize=float(np.clip(LABEL * 0.8 * points, 2, 11)))


def decision_path(routed: dict, index: int = 0) -> dict:
    """The argmax leaf of one example and the nodes on its path, from `route()` outputs
    (NumPy): {"leaf", "path": [(node, went_right)], "logits", "probability", "leaf_probability"}."""
    log_leaf = np.asarray(routed["log_leaf"])[index]
    leaf = int(np.argmax(log_leaf))
    depth = int(np.log2(len(log_leaf)))
    path = ancestors(leaf, depth)
    z = np.asarray(routed["z"])[index]
    right = np.exp(np.asarray(routed["log_right"])[index])
    return {"leaf": leaf, "path": path, "logits": [float(z[n]) for n, _ in path],
            "probability": [float(right[n] if r else 1 - right[n]) for n, r in path],
            "leaf_probability": float(np.exp(log_leaf[leaf]))}


def path_png(snapshot: dict, image: np.ndarray, decision: dict, class_names, path: Path, title: str = "",
             correlation: bool = True) -> Path:
    """The decision path of one input: filters with logits, correlation maps, the leaf."""
    steps = decision["path"]
    rows = 2 if correlation else 1
    columns = len(steps) + 2
    figure, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 2.0 * rows + 0.5), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    shown = np.clip(image, 0, 1)
    axes[0, 0].imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title("input", fontsize=8)
    for column, ((node, went_right), z, p) in enumerate(zip(steps, decision["logits"], decision["probability"]), 1):
        filt = snapshot["kernel"][:, node].reshape(image.shape)
        axes[0, column].imshow(filter_rgb(filt), interpolation="nearest")
        axes[0, column].set_title(f"node {node}\nz={z:+.2f} {'right' if went_right else 'left'}\np={p:.2f}",
                                  fontsize=7, color="darkgreen" if (z >= 0) == went_right else "darkred")
        if correlation:
            product = (image * filt).sum(axis=-1)
            limit = float(np.abs(product).max()) or 1.0
            axes[1, column].imshow(product, cmap=DIVERGING, vmin=-limit, vmax=limit, interpolation="nearest")
            axes[1, column].set_title(f"x*w (sum {product.sum():+.2f})", fontsize=7)
    if correlation:
        axes[1, 0].text(0.0, 0.5, "correlation\ninput x filter\nred +, blue -\n(0 = white)", fontsize=7,
                        va="center", transform=axes[1, 0].transAxes)
    leaf_axis = axes[0, -1]
    leaf_axis.axis("on")
    distribution = snapshot["leaves"][decision["leaf"]]
    leaf_axis.bar(range(len(distribution)), distribution,
                  color=["tab:orange" if i == np.argmax(distribution) else "tab:blue" for i in range(len(distribution))])
    best = int(np.argmax(distribution))
    name = class_names[best] if best < len(class_names) else str(best)
    leaf_axis.set_title(f"leaf {decision['leaf']} P={decision['leaf_probability']:.2f}\n-> {name}", fontsize=7)
    leaf_axis.tick_params(labelsize=6)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_figure(figure, path)


def gif(frames: list[Path], path: Path, seconds_per_frame: float = 0.5, max_width: int = 2400) -> Path:
    """Assemble PNG frames into a looping GIF (frames resized to the first one's size)."""
    images = [Image.open(frame).convert("RGB") for frame in frames]
    size = images[0].size
    if size[0] > max_width:
        size = (max_width, max(1, round(size[1] * max_width / size[0])))
    images = [im.resize(size, Image.LANCZOS) if im.size != size else im for im in images]
    images = [im.quantize(colors=128) for im in images]
    atomic_write(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                   duration=int(seconds_per_frame * 1000), loop=0))
    return path
