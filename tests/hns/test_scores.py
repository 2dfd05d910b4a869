"""src/hns/scores.py: the figures of merit, validation FII and its standard error, the
one-standard-error choice among the weights kept at every alpha, and what the history
adds to a run's metrics."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from src.hns.scores import choose, epoch_scorer, figures_of_merit, history_figures, select, validation_fii


def test_figures_of_merit_and_collapse():
    out = figures_of_merit(0.9, 0.95, 0.98)
    assert out["fidelity"] == pytest.approx(0.9 / 0.98)
    assert out["fii"] == pytest.approx(0.9 / 0.98 * 0.95)
    assert out["fir"] == pytest.approx((0.9 / 0.98) / (0.9 / 0.98 + 0.95))
    assert not out["collapsed"]
    assert figures_of_merit(0.97, 0.05, 0.98)["collapsed"]          # hides almost nothing
    assert figures_of_merit(0.25, 0.99, 0.98)["collapsed"]          # hides all, accuracy < 0.3 x baseline
    assert not figures_of_merit(0.90, 0.99, 0.98)["collapsed"]
    assert figures_of_merit(0.5, 0.5, None)["fidelity"] is None


def test_select_takes_the_lowest_alpha_within_one_standard_error_of_the_best():
    def row(alpha, fii, se=0.01):
        return {"alpha": alpha, "val_fii": fii, "val_fii_se": se}
    rows = [row(1.0, 0.2), row(0.5, 0.90), row(0.3, 0.895), row(0.2, 0.85), row(0.05, 0.4)]
    assert select(rows, "val_fii") is rows[2]  # 0.895 >= 0.90 - 0.01; 0.85 and 0.4 are not
    assert select(rows[:-1] + [row(0.05, 0.891)], "val_fii")["alpha"] == 0.05  # the final, within 1 SE
    assert select(rows, "last") is rows[-1]
    assert select(rows[:-1] + [{"alpha": 0.05, "val_fii": None, "val_fii_se": None}], "val_fii")["alpha"] == 0.05


def test_validation_fii_and_its_standard_error():
    class Fixed:
        def evaluate(self, arrays):
            return {"accuracy": 0.9, "hidden": 0.8}
    out = validation_fii(Fixed(), {"x": np.zeros((100, 2))}, 0.95)
    assert out["val_fii"] == pytest.approx(0.9 / 0.95 * 0.8)
    assert out["val_fii_se"] == pytest.approx(0.8 / 0.95 * 0.03)  # sqrt(0.9 * 0.1 / 100) = 0.03
    assert validation_fii(Fixed(), {"x": np.zeros((0, 2))}, 0.95) == {"val_fii": None, "val_fii_se": None}


class _Stub:
    """A joint model whose one weight is its accuracy: what per_alpha and choose touch."""

    def __init__(self, value: float, kept: list[tuple[float, float]]):
        self.value, self.kept, self.restored = value, kept, None

    @property
    def joint_weights(self):
        return [SimpleNamespace(numpy=lambda: self.value)]

    def kept_alphas(self):
        return [(alpha, [value]) for alpha, value in self.kept]

    def set_joint_weights(self, values):
        self.value = values[0]

    def restore_alpha(self, alpha):
        self.restored, self.value = alpha, dict(self.kept)[alpha]


def test_choose_scores_every_kept_alpha_and_loads_the_weights_it_picks():
    """Kept weights of accuracy 0.9 (alpha 1) and 0.6 (alpha 0.5), final ones 0.3, each
    hiding half: validation FII 0.45, 0.30, 0.15 with standard errors of at most 0.025,
    so val_fii picks alpha 1 and loads its weights; last keeps the final ones."""
    history = [{"epoch": 1, "alpha_end": 0.5, "test_accuracy": 0.5, "test_interpretability": 0.4, "test_fii": 0.2,
                "test_collapsed": False, "hidden": 0.45, "slope_end": 1.0},
               {"epoch": 2, "alpha_end": 0.25, "test_accuracy": 0.3, "test_interpretability": 0.5, "test_fii": 0.15,
                "test_collapsed": False, "hidden": 0.55, "slope_end": 1.0}]
    for how, alpha, value in (("val_fii", 1.0, 0.9), ("last", 0.25, 0.3)):
        model = _Stub(0.3, [(1.0, 0.9), (0.5, 0.6)])
        evaluator = SimpleNamespace(evaluate=lambda arrays, m=model: {"accuracy": m.value, "hidden": 0.5})
        chosen, rows = choose(model, evaluator, None, {"x": np.zeros(10)}, {"x": np.zeros(100)}, 1.0, history, how)
        assert [r["alpha"] for r in rows] == [1.0, 0.5, 0.25]
        assert [r["val_fii"] for r in rows] == pytest.approx([0.45, 0.30, 0.15])
        assert rows[-1]["fii"] == 0.15 and rows[0]["fii"] == pytest.approx(0.45)  # final test figures: history's
        assert chosen["alpha"] == alpha and model.value == value
        assert model.restored == (1.0 if how == "val_fii" else None)
    figures = history_figures(history, rows)
    assert figures == {"final_fii": 0.15, "final_collapsed": False, "train_hidden": 0.55,
                       "interpretability_first_epoch": 0.4, "final_alpha": 0.25, "final_slope": 1.0, "epochs": 2,
                       "oracle_test_fii": pytest.approx(0.45), "oracle_test_fii_at": "alpha 1.00"}


def test_epoch_scorer_adds_the_test_figures_alpha_and_slope_to_the_history_row():
    model = SimpleNamespace(controller=SimpleNamespace(alpha=SimpleNamespace(numpy=lambda: 0.75)),
                            slope=SimpleNamespace(numpy=lambda: 2.0))
    evaluator = SimpleNamespace(evaluate=lambda arrays: {"accuracy": 0.8, "hidden": 0.5})
    scores = epoch_scorer(model, evaluator, None, {"x": np.zeros(4)}, 0.9)(1, {"hidden": 0.4})
    assert scores["test_fidelity"] == pytest.approx(0.8 / 0.9) and scores["test_fii"] == pytest.approx(0.4 / 0.9)
    assert scores["alpha_end"] == 0.75 and scores["slope_end"] == 2.0
