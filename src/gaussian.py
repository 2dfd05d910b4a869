"""Sampling from per-class Gaussians: mean + z L^T with L the Cholesky factor.

The seed got this wrong twice (anchors/datafree.md §7.3): HEAD sampled mean + z Sigma
(covariance Sigma^2) and the paper-era code mean + z L (covariance L^T L). With rows
z ~ N(0, I), x = mean + z L^T has covariance L L^T = Sigma.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def cholesky_with_jitter(cov: np.ndarray, jitter: float = 1e-6, what: str = "covariance",
                         tries: int = 12) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of cov, adding jitter * mean(diag) * I (x10 per failure) when
    cov is not positive definite; warns with the amount used. Returns (L, jitter used)."""
    cov = np.asarray(cov, dtype=np.float64)
    try:
        return np.linalg.cholesky(cov), 0.0
    except np.linalg.LinAlgError:
        pass
    scale = float(np.mean(np.diag(cov))) or 1.0
    eye = np.eye(len(cov))
    amount = jitter
    for _ in range(tries):
        try:
            factor = np.linalg.cholesky(cov + amount * scale * eye)
            log.warning("%s is not positive definite: added %.3g x mean variance (%.3g) to its diagonal",
                        what, amount, amount * scale)
            return factor, amount * scale
        except np.linalg.LinAlgError:
            amount *= 10
    raise np.linalg.LinAlgError(f"{what} stays singular even with {amount / 10:.3g} x mean variance of jitter")


def sample(mean: np.ndarray, factor_or_std: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """count samples [count, d] of N(mean, Sigma): factor_or_std is either the lower
    Cholesky factor L of Sigma ([d, d]) or per-unit standard deviations ([d], diagonal)."""
    z = rng.standard_normal((count, mean.shape[-1]))
    if factor_or_std.ndim == 2:
        return (mean + z @ factor_or_std.T).astype(np.float32)
    return (mean + z * factor_or_std).astype(np.float32)
