"""Sampling from per-class Gaussians: mean + z L^T with L the Cholesky factor.

With rows z ~ N(0, I), x = mean + z L^T has covariance L L^T = Sigma. The tempting
alternatives are wrong: mean + z Sigma has covariance Sigma^2, and mean + z L has L^T L
(docs/optimize_dataset.md, "Differences from the reference implementation").
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def cholesky_with_jitter(cov: np.ndarray, jitter: float = 1e-6, what: str | None = None,
                         tries: int = 12) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor L (L L^T = cov + j I) of a symmetric PSD matrix.

    Tries j = 0 first; when cov is not numerically positive definite, j = jitter *
    mean(diag(cov)) (relative, so one setting fits activations of any scale), times 10
    after each failure. Returns (L, j), j the absolute amount added. With `what`, a j > 0
    is logged as a warning naming it; otherwise the caller reports it.
    """
    cov = np.asarray(cov, np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"a covariance must be a square matrix, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError("the covariance has NaN or Inf entries")
    cov = 0.5 * (cov + cov.T)
    try:
        return np.linalg.cholesky(cov), 0.0
    except np.linalg.LinAlgError:
        pass
    scale = float(np.mean(np.diag(cov))) if cov.size else 1.0
    amount = jitter * (scale if scale > 0 else 1.0)
    eye = np.eye(len(cov))
    for _ in range(tries):
        try:
            factor = np.linalg.cholesky(cov + amount * eye)
            if what:
                log.warning("%s is not positive definite: added %.3g to its diagonal (%.3g of its mean variance)",
                            what, amount, amount / (scale if scale > 0 else 1.0))
            return factor, amount
        except np.linalg.LinAlgError:
            amount *= 10.0
    raise np.linalg.LinAlgError(f"{what or 'the covariance'} is not positive definite (singular) even with "
                                f"{amount / 10:.3g} * I added")


def sample(mean: np.ndarray, factor_or_std: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """count samples [count, d] of N(mean, Sigma): factor_or_std is either the lower
    Cholesky factor L of Sigma ([d, d]) or per-unit standard deviations ([d], diagonal)."""
    z = rng.standard_normal((count, mean.shape[-1]))
    if factor_or_std.ndim == 2:
        return (mean + z @ factor_or_std.T).astype(np.float32)
    return (mean + z * factor_or_std).astype(np.float32)
