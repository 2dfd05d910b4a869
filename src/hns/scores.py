"""How a Hide-and-Seek model is judged and chosen: fidelity F (accuracy relative to the
seeker alone), interpretability I (fraction hidden), FIR and FII; the test scores after
every epoch; the scores of the weights kept at every alpha; and the one-standard-error
choice among them on validation (`choose`)."""
from __future__ import annotations

import logging
import math
from typing import Callable

log = logging.getLogger(__name__)

# A run has collapsed when it hides (almost) nothing, or (almost) everything while the
# classifier falls towards chance (the reference code's thresholds).
COLLAPSE_HIDDEN_LOW = 0.10
COLLAPSE_HIDDEN_HIGH = 0.985
COLLAPSE_ACCURACY = 0.3  # x baseline


def figures_of_merit(accuracy: float, hidden: float, baseline: float | None) -> dict:
    """F = accuracy / baseline, I = fraction hidden, FIR = F / (F + I), FII = F * I, and
    whether the run collapsed. Without a baseline only I and `collapsed` by hiding are known."""
    out = {"accuracy": accuracy, "interpretability": hidden}
    if baseline is None or baseline <= 0:
        out.update(fidelity=None, fir=None, fii=None, collapsed=hidden < COLLAPSE_HIDDEN_LOW)
        return out
    f = accuracy / baseline
    out.update(fidelity=f, fir=f / (f + hidden) if f + hidden > 0 else math.nan, fii=f * hidden,
               collapsed=bool(hidden < COLLAPSE_HIDDEN_LOW
                              or (hidden > COLLAPSE_HIDDEN_HIGH and accuracy < COLLAPSE_ACCURACY * baseline)))
    return out


def score(evaluator, sampled, arrays: dict, baseline: float) -> dict:
    """Figures of merit of the current weights on `arrays`: thresholded mask, and the
    sampled mask too when `sampled` (an Evaluator of HideAndSeek.sampled_fn) is given."""
    out = evaluator.evaluate(arrays)
    row = figures_of_merit(out["accuracy"], out["hidden"], baseline)
    if sampled is not None:
        s = sampled.evaluate(arrays)
        row.update(accuracy_sampled=s["accuracy"], hidden_sampled=s["hidden"])
    return row


def epoch_scorer(model, evaluator, sampled, test: dict, baseline: float) -> Callable[[int, dict], dict]:
    """on_epoch_end for src.fit: after each epoch, the joint model's test figures (as
    test_*) and where alpha and the slope ended, for history.csv."""
    def score_epoch(epoch: int, row: dict) -> dict:
        scores = {f"test_{k}": v for k, v in score(evaluator, sampled, test, baseline).items()}
        scores.update(alpha_end=float(model.controller.alpha.numpy()), slope_end=float(model.slope.numpy()))
        log.info("epoch %d: test accuracy %.4f  F %.4f  I %.4f  FII %.4f  (train hidden %.4f, alpha %.2f)", epoch,
                 scores["test_accuracy"], scores["test_fidelity"] or 0, scores["test_interpretability"],
                 scores["test_fii"] or 0, row["hidden"], scores["alpha_end"])
        return scores
    return score_epoch


def validation_fii(evaluator, val: dict, baseline: float) -> dict:
    """Accuracy, I, F and FII of the current weights on the validation split (F against the
    same seeker baseline as on test, a constant scale) and the standard error of FII from
    the binomial spread of the accuracy: what `hns.select=val_fii` ranks by, so the test
    split never chooses the model."""
    n = len(val["x"])
    if not n:
        return {"val_fii": None, "val_fii_se": None}
    out = evaluator.evaluate(val)
    scores = figures_of_merit(out["accuracy"], out["hidden"], baseline)
    spread = math.sqrt(out["accuracy"] * (1.0 - out["accuracy"]) / n)
    return {"val_accuracy": out["accuracy"], "val_interpretability": out["hidden"], "val_fidelity": scores["fidelity"],
            "val_fii": scores["fii"], "val_fii_se": out["hidden"] / baseline * spread if baseline else None}


def per_alpha(model, evaluator, sampled, test: dict, val: dict, baseline: float, final: dict,
              on_kept=None) -> list[dict]:
    """Test figures and validation FII of the weights kept when the schedule left each
    alpha, then of the final weights (`final`: their test figures and alpha). on_kept(alpha)
    runs while each kept alpha's weights are loaded (to save them); the model ends with
    its final weights."""
    rows = []
    kept = model.kept_alphas()
    if kept:
        current = [w.numpy() for w in model.joint_weights]
        for alpha, weights in kept:
            model.set_joint_weights(weights)
            rows.append({"alpha": alpha, **score(evaluator, sampled, test, baseline),
                         **validation_fii(evaluator, val, baseline)})
            if on_kept is not None:
                on_kept(alpha)
        model.set_joint_weights(current)
    rows.append({**final, **validation_fii(evaluator, val, baseline)})
    return rows


def choose(model, evaluator, sampled, test: dict, val: dict, baseline: float, history: list[dict], how: str,
           on_kept=None) -> tuple[dict, list[dict]]:
    """Score the weights kept at every alpha and the final ones (`per_alpha`; the final
    test figures are history's last row), pick the result (`select` by `how`) and leave
    its weights in model. Returns (the chosen row, every row)."""
    final = history[-1]
    final_scores = {"alpha": final["alpha_end"], **{k[5:]: v for k, v in final.items() if k.startswith("test_")}}
    rows = per_alpha(model, evaluator, sampled, test, val, baseline, final_scores, on_kept)
    chosen = select(rows, how)
    if chosen is not rows[-1]:
        model.restore_alpha(chosen["alpha"])
        log.info("selected the weights of alpha %.2f (validation FII %.4f; the final weights: %.4f)",
                 chosen["alpha"], chosen["val_fii"], rows[-1]["val_fii"])
    return chosen, rows


def select(rows: list[dict], how: str) -> dict:
    """The row whose weights become the run's result: the final weights (`last`), or, for
    `val_fii`, the last row (lowest alpha, the final weights last of all) whose
    validation FII is within one standard error of the best: the one-standard-error rule
    (Breiman et al. 1984). Differences smaller than that are noise of the validation split,
    and between equals the longer-trained, more hiding weights win. Without a validation
    split: the final weights."""
    if how == "last" or any(r["val_fii"] is None for r in rows):
        return rows[-1]
    best = max(rows, key=lambda r: r["val_fii"])
    return [r for r in rows if r["val_fii"] >= best["val_fii"] - (best["val_fii_se"] or 0.0)][-1]


def chosen_figures(chosen: dict, rows: list[dict]) -> dict:
    """The run's headline figures: those of the weights `select` chose."""
    return {"val_accuracy": chosen.get("val_accuracy"), "val_fidelity": chosen.get("val_fidelity"),
            "val_interpretability": chosen.get("val_interpretability"), "val_fii": chosen["val_fii"],
            "test_accuracy": chosen["accuracy"], "fidelity": chosen["fidelity"],
            "interpretability": chosen["interpretability"], "fir": chosen["fir"], "fii": chosen["fii"],
            "collapsed": chosen["collapsed"], "test_accuracy_sampled": chosen.get("accuracy_sampled"),
            "interpretability_sampled": chosen.get("hidden_sampled"),
            "selected": "final" if chosen is rows[-1] else f"alpha {chosen['alpha']:.2f}"}


def history_figures(history: list[dict], rows: list[dict]) -> dict:
    """What history.csv says beyond the chosen weights: the final weights' test FII and
    state, the hidden fraction of the last training batches, the first epoch's I, and the
    oracle (`oracle_fii`)."""
    final = history[-1]
    return {"final_fii": final["test_fii"], "final_collapsed": final["test_collapsed"], "train_hidden": final["hidden"],
            "interpretability_first_epoch": history[0]["test_interpretability"], "final_alpha": final["alpha_end"],
            "final_slope": final["slope_end"], "epochs": final["epoch"], **oracle_fii(history, rows)}


def oracle_fii(history: list[dict], rows: list[dict]) -> dict:
    """The highest test FII over every epoch and kept alpha, and where it was reached: an
    oracle chosen on the test split, stored to show how much selection could matter, never
    a result to report."""
    candidates = [(r["test_fii"], f"epoch {r['epoch']}") for r in history]
    candidates += [(r["fii"], f"alpha {r['alpha']:.2f}") for r in rows]
    fii, where = max(candidates, key=lambda c: c[0] if c[0] is not None else -1)
    return {"oracle_test_fii": fii, "oracle_test_fii_at": where}
