"""Statistics over seeds: the mean, the standard deviation and the 95% confidence interval
of the mean, so that a difference is reported with its noise, and the seeds that stand
apart from the others, so that a collapsed seed is seen rather than averaged away.

An interval respects what its metric can be (`bounds_of` reads that from the name):

- a proportion in [0, 1] (an accuracy, an agreement, a fraction hidden): the Student-t
  interval of the logits of the seeds, mapped back through the logistic function, so it
  stays inside (0, 1) and is asymmetric near a bound. A seed at exactly 0 or 1 has no
  logit: the plain Student-t interval, clipped to [0, 1], is given instead;
- a paired gain (by convention every metric named `*_gain`, e.g. kd_gain: an accuracy
  minus the accuracy of a baseline trained with the same seed) is already a per-seed
  difference in [-1, 1]: the Student-t interval of the paired difference, clipped to
  [-1, 1], and "better" means that interval excludes 0;
- a ratio to a baseline (fidelity, FII, a fraction of the teacher) is at least 0 but
  exceeds 1 when the model beats its baseline: the Student-t interval, clipped below at 0;
- anything else: the Student-t interval as it is.
"""
from __future__ import annotations

import math
from fnmatch import fnmatchcase

import numpy as np
from scipy import stats
from scipy.special import expit, logit

PROPORTION = (0.0, 1.0)
DIFFERENCE = (-1.0, 1.0)
RATIO = (0.0, math.inf)

# Metric names (fnmatch patterns) that are proportions by construction: a count of examples
# or pixels over a count. hns_train's FIR = F / (F + I) is one too.
PROPORTIONS = ("*accuracy*", "*agreement*", "*interpretability*", "*hidden*", "fir", "*_fir", "*swap_*_class")
# Ratios to a baseline: fidelity F = accuracy / the seeker's accuracy, FII = F x I, a
# student's accuracy over its teacher's. Each can exceed 1.
RATIOS = ("*fidelity*", "*fii*", "fraction_of_*", "fraction of *")

# Dixon's Q at 95% (Rorabacher 1991, two-sided) for 3..10 seeds; more seeds use the
# 10-seed value, which is then stricter than the exact one.
DIXON_Q95 = {3: 0.970, 4: 0.829, 5: 0.710, 6: 0.625, 7: 0.568, 8: 0.526, 9: 0.493, 10: 0.466}


def is_paired(metric: str) -> bool:
    """A gain over a baseline trained with the same seed: its interval is a paired difference."""
    return metric.endswith("_gain")


def bounds_of(metric: str) -> tuple[float, float] | None:
    """What the metric can be, read from its name: DIFFERENCE for a paired gain, PROPORTION
    for a name matching PROPORTIONS, RATIO for one matching RATIOS, else None (unbounded:
    e.g. gap_recovered, a loss, a count of epochs)."""
    if is_paired(metric):
        return DIFFERENCE
    if any(fnmatchcase(metric, p) for p in PROPORTIONS):
        return PROPORTION
    if any(fnmatchcase(metric, p) for p in RATIOS):
        return RATIO
    return None


def seed_interval(values, confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """{n, mean, std, low, high}: the arithmetic mean, the sample standard deviation
    (n - 1) and the two-sided interval of the mean at `confidence`. Without bounds it is
    Student's t, mean +- t_{(1+c)/2, n-1} std / sqrt(n); with bounds it stays inside them
    (the module's docstring says how). One value has no spread: std, low and high are NaN."""
    x = np.asarray(list(values), dtype=np.float64)
    n, mean = len(x), float(np.mean(x)) if len(x) else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "low": math.nan, "high": math.nan}
    if bounds == PROPORTION and np.all((x > 0) & (x < 1)):
        low, high = (float(v) for v in expit(_t_interval(logit(x), confidence)))
    else:
        low, high = _t_interval(x, confidence)
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "mean": mean, "std": float(np.std(x, ddof=1)), "low": low, "high": high}


def metric_interval(metric: str, values, confidence: float = 0.95) -> dict:
    """seed_interval within the bounds the metric's name declares (bounds_of)."""
    return seed_interval(values, confidence, bounds_of(metric))


def _t_interval(x: np.ndarray, confidence: float) -> tuple[float, float]:
    mean = float(np.mean(x))
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, len(x) - 1)) * float(np.std(x, ddof=1)) / math.sqrt(len(x))
    return mean - half, mean + half


def has_outlier(values) -> bool:
    """Whether one seed stands apart from the others, by Dixon's Q test at 95%: the gap
    between the lowest (or highest) seed and its nearest neighbour, over the range of all
    seeds, exceeds DIXON_Q95. It is made for a handful of replicates, where deviations
    from the median are too unstable to judge by. Fewer than 3 seeds, or seeds that all
    agree, have none. Two seeds collapsed to the same value mask each other; their
    interval is wide instead."""
    x = np.sort(np.asarray(list(values), dtype=np.float64))
    if len(x) < 3 or x[-1] == x[0]:
        return False
    gap = max(x[1] - x[0], x[-1] - x[-2])
    return bool(gap / (x[-1] - x[0]) > DIXON_Q95[min(len(x), 10)])


def excludes_zero(interval: dict) -> bool | None:
    """Whether the interval lies wholly above or below 0 (None when it is undefined)."""
    if math.isnan(interval["low"]):
        return None
    return interval["low"] > 0 or interval["high"] < 0
