"""mean + z L^T sampling (the reference code sampled with Sigma or with L: both wrong)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from src.datafree.gaussian import cholesky_with_jitter, sample


def test_samples_have_the_requested_covariance():
    sigma = np.array([[2.0, 1.2, 0.0], [1.2, 1.0, 0.3], [0.0, 0.3, 0.5]])
    factor, jitter = cholesky_with_jitter(sigma)
    assert jitter == 0.0
    x = sample(np.array([1.0, -2.0, 0.5]), factor, 200_000, np.random.default_rng(0)).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), [1.0, -2.0, 0.5], atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), sigma, atol=0.03)
    # the reference code's two recipes give other covariances: Sigma^2 (HEAD) and L^T L (paper era)
    assert not np.allclose(sigma @ sigma, sigma, atol=0.1)
    assert not np.allclose(factor.T @ factor, sigma, atol=0.1)


def test_diagonal_sampling_uses_standard_deviations():
    x = sample(np.zeros(2), np.array([3.0, 0.5]), 100_000, np.random.default_rng(1))
    np.testing.assert_allclose(x.std(axis=0), [3.0, 0.5], rtol=0.02)


def test_singular_covariance_gets_jitter_and_a_warning(caplog):
    v = np.array([1.0, 2.0, 3.0])
    singular = np.outer(v, v)  # rank 1
    with caplog.at_level(logging.WARNING):
        factor, jitter = cholesky_with_jitter(singular, what="class 3 covariance of fc1")
    assert jitter > 0 and "class 3 covariance of fc1" in caplog.text and "not positive definite" in caplog.text
    np.testing.assert_allclose(factor @ factor.T, singular, atol=10 * jitter)


def test_hopeless_matrix_raises():
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        cholesky_with_jitter(-np.eye(2), tries=3)
