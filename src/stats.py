"""Statistics over seeds: the mean, the standard deviation and the Student-t confidence
interval of the mean, so that a difference is reported with its noise.

A paired quantity (a gain over the baseline of the same seed: by convention every metric
named `*_gain`, e.g. kd_gain) is already a per-seed difference: its interval over seeds is
the interval of the paired difference, and "better" means that interval excludes 0.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats



def is_paired(metric: str) -> bool:
    """A gain over a baseline trained with the same seed: its interval is a paired difference."""
    return metric.endswith("_gain")


def seed_interval(values, confidence: float = 0.95) -> dict:
    """{n, mean, std, low, high}: the sample standard deviation (n - 1) and the two-sided
    Student-t interval mean +- t_{(1+c)/2, n-1} std / sqrt(n). One value has no spread:
    std, low and high are NaN."""
    x = np.asarray(list(values), dtype=np.float64)
    n, mean = len(x), float(np.mean(x)) if len(x) else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "low": math.nan, "high": math.nan}
    std = float(np.std(x, ddof=1))
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "low": mean - half, "high": mean + half}


def excludes_zero(interval: dict) -> bool | None:
    """Whether the interval lies wholly above or below 0 (None when it is undefined)."""
    if math.isnan(interval["low"]):
        return None
    return interval["low"] > 0 or interval["high"] < 0
