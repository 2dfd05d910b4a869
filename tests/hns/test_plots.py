"""src/hns/plots.py: curves.png draws every curve its history rows have (F, I, FII, alpha
and the hidden fraction of training batches, the columns hns_train writes into
history.csv); run_figures writes every figure of a joint run, with its masks thresholded
by src.hns.masks.threshold."""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from models.hns import build_hider, build_seeker
from src.hns import masks
from src.hns.alpha import AlphaController
from src.hns.model import HideAndSeek
from src.hns.plots import CURVES, curve_series, curves_png, figure_examples, run_figures


def _row(epoch: int, **values) -> dict:
    return {"epoch": epoch, "test_fidelity": 0.9, "test_interpretability": 0.5, "test_fii": 0.45,
            "alpha_end": 1.0 - 0.1 * epoch, "hidden": 0.4, **values}


def test_every_curve_of_a_full_history_is_drawn(tmp_path):
    history = [_row(1), _row(2)]
    series = curve_series(history)
    assert list(series) == list(CURVES.values())
    assert series["alpha (end of epoch)"] == [0.9, 0.8]
    assert curves_png(history, tmp_path / "curves.png", "t").stat().st_size > 1000


def test_a_curve_without_values_is_left_out_and_gaps_stay_gaps():
    history = [_row(1, test_fidelity=None, test_fii=None), _row(2, test_fidelity=None, test_fii=None)]
    assert "F (fidelity)" not in curve_series(history) and "FII = F x I" not in curve_series(history)
    gappy = curve_series([_row(1, hidden=None), _row(2)])["hidden (training batches)"]
    assert math.isnan(gappy[0]) and gappy[1] == 0.4


def _joint(seed: int = 0) -> HideAndSeek:
    tf.keras.utils.set_random_seed(seed)
    return HideAndSeek(build_hider("hider_small", (8, 8, 1)), build_seeker("seeker_small", (8, 8, 1), 3),
                       AlphaController(0.5))


def _test_split() -> dict:
    rng = np.random.default_rng(0)
    return {"x": rng.random((12, 8, 8, 1), np.float32), "y": np.array([0, 1, 2, 2, 1, 0, 0, 1, 2, 0, 1, 2])}


def test_figure_examples_are_the_first_of_each_class():
    y = np.array([2, 0, 1, 0, 2, 1, 0])
    assert figure_examples(y, 3, 2).tolist() == [1, 3, 2, 5, 0, 4]
    assert figure_examples(y, 3, 0).tolist() == []


def test_run_figures_writes_curves_masks_and_with_another_modes_hider_modes(tmp_path):
    history = [_row(1), _row(2)]
    model, names = _joint(), ("zero", "one", "two")
    written = run_figures(model, history, _test_split(), names, tmp_path / "joint", "t", per_class=2)
    assert [p.name for p in written] == ["curves.png", "masks.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    other = _joint(seed=1).hider
    written = run_figures(model, history, _test_split(), names, tmp_path / "realx", "t", per_class=2, mode="realx",
                          others={"joint": other})
    assert [p.name for p in written] == ["curves.png", "masks.png", "modes.png"]
    assert [p.name for p in run_figures(model, history, _test_split(), names, tmp_path / "none", "t", per_class=0,
                                        others={"joint": other})] == ["curves.png"]


def test_run_figures_thresholds_every_hider_with_masks_threshold(tmp_path, monkeypatch):
    """Both runs' masks, this one's and the other mode's, are masks.threshold of their
    hider's logits on the figure's images."""
    seen = []
    threshold = masks.threshold

    def spy(a):
        seen.append(np.asarray(a))
        return threshold(a)
    monkeypatch.setattr(masks, "threshold", spy)
    model, other, split = _joint(), _joint(seed=1).hider, _test_split()
    run_figures(model, [_row(1)], split, ("zero", "one", "two"), tmp_path, "t", per_class=1, others={"realx": other})
    x = split["x"][figure_examples(split["y"], 3, 1)]
    for hider in (model.hider, other):
        logits = hider(x, training=False).numpy()
        assert any(a.shape == logits.shape and np.allclose(a, logits) for a in seen)
