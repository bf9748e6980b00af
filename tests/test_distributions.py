"""DiagGaussian and Categorical against scipy.stats and closed forms computed in NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from policysearch.core.distributions import Categorical, DiagGaussian

B, D, K = 6, 3, 5


def _gaussian_params(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.normal(scale=2.0, size=(B, D)).astype(np.float32),
        rng.uniform(-1.5, 1.0, size=(B, D)).astype(np.float32),
    )


def _kl_gaussian_matrix_form(mu_p: np.ndarray, s_p: np.ndarray, mu_q: np.ndarray, s_q: np.ndarray) -> float:
    """KL(N_p || N_q) = 1/2 [tr(Sq^-1 Sp) + (mq - mp)^T Sq^-1 (mq - mp) - k + ln(det Sq / det Sp)], full matrices."""
    cov_p, cov_q = np.diag(s_p.astype(np.float64) ** 2), np.diag(s_q.astype(np.float64) ** 2)
    inv_q = np.linalg.inv(cov_q)
    diff = (mu_q - mu_p).astype(np.float64)
    _, logdet_p = np.linalg.slogdet(cov_p)
    _, logdet_q = np.linalg.slogdet(cov_q)
    return 0.5 * (np.trace(inv_q @ cov_p) + diff @ inv_q @ diff - len(mu_p) + logdet_q - logdet_p)


def test_gaussian_log_prob_matches_scipy() -> None:
    """log_prob equals scipy.stats.multivariate_normal.logpdf with diagonal covariance, row by row."""
    mean, log_std = _gaussian_params(0)
    x = np.random.default_rng(1).normal(scale=3.0, size=(B, D)).astype(np.float32)
    got = np.asarray(DiagGaussian(jnp.asarray(mean), jnp.asarray(log_std)).log_prob(jnp.asarray(x)))
    expected = [stats.multivariate_normal(mean[i], np.diag(np.exp(2.0 * log_std[i].astype(np.float64)))).logpdf(x[i])
                for i in range(B)]
    assert got.shape == (B,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    per_dim = stats.norm(mean, np.exp(log_std.astype(np.float64))).logpdf(x).sum(axis=-1)
    np.testing.assert_allclose(got, per_dim, rtol=1e-5, atol=1e-4)


def test_gaussian_entropy_matches_scipy() -> None:
    """entropy equals scipy's multivariate_normal entropy for diagonal covariance."""
    mean, log_std = _gaussian_params(2)
    got = np.asarray(DiagGaussian(jnp.asarray(mean), jnp.asarray(log_std)).entropy())
    expected = [stats.multivariate_normal(mean[i], np.diag(np.exp(2.0 * log_std[i].astype(np.float64)))).entropy()
                for i in range(B)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gaussian_shared_log_std_broadcasts() -> None:
    """A state-independent log_std of shape [D] broadcasts against mean [B, D] in every method."""
    mean, log_std = _gaussian_params(3)
    shared = log_std[0]
    full = np.broadcast_to(shared, mean.shape)
    x = np.random.default_rng(4).normal(size=(B, D)).astype(np.float32)
    d_shared = DiagGaussian(jnp.asarray(mean), jnp.asarray(shared))
    d_full = DiagGaussian(jnp.asarray(mean), jnp.asarray(full))
    other = DiagGaussian(jnp.asarray(mean[::-1].copy()), jnp.asarray(shared + 0.3))
    expected_entropy = stats.norm(0.0, np.exp(shared.astype(np.float64))).entropy().sum()
    np.testing.assert_allclose(np.asarray(d_shared.entropy()), np.full(B, expected_entropy), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(d_shared.log_prob(jnp.asarray(x))), np.asarray(d_full.log_prob(jnp.asarray(x))), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(d_shared.kl(other)), np.asarray(d_full.kl(other)), rtol=1e-6)
    assert d_shared.kl(other).shape == (B,)


def test_gaussian_kl_matches_matrix_closed_form() -> None:
    """kl(other) = KL(self || other) equals the full-covariance matrix formula, and is asymmetric."""
    mean_p, log_std_p = _gaussian_params(5)
    mean_q, log_std_q = _gaussian_params(6)
    p = DiagGaussian(jnp.asarray(mean_p), jnp.asarray(log_std_p))
    q = DiagGaussian(jnp.asarray(mean_q), jnp.asarray(log_std_q))
    s_p, s_q = np.exp(log_std_p.astype(np.float64)), np.exp(log_std_q.astype(np.float64))
    kl_pq = [_kl_gaussian_matrix_form(mean_p[i], s_p[i], mean_q[i], s_q[i]) for i in range(B)]
    kl_qp = [_kl_gaussian_matrix_form(mean_q[i], s_q[i], mean_p[i], s_p[i]) for i in range(B)]
    np.testing.assert_allclose(np.asarray(p.kl(q)), kl_pq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(q.kl(p)), kl_qp, rtol=1e-5, atol=1e-5)
    assert not np.allclose(kl_pq, kl_qp)
    np.testing.assert_allclose(np.asarray(p.kl(p)), 0.0, atol=1e-6)


def test_gaussian_kl_matches_monte_carlo() -> None:
    """KL(p || q) agrees with E_p[log p(x) - log q(x)] estimated from scipy samples of p."""
    mu_p, mu_q = np.array([0.3, -1.0], np.float32), np.array([-0.2, 0.5], np.float32)
    ls_p, ls_q = np.array([-0.5, 0.2], np.float32), np.array([0.1, -0.3], np.float32)
    x = stats.norm(mu_p, np.exp(ls_p)).rvs(size=(200_000, 2), random_state=7)
    mc = (stats.norm(mu_p, np.exp(ls_p)).logpdf(x) - stats.norm(mu_q, np.exp(ls_q)).logpdf(x)).sum(-1).mean()
    got = float(DiagGaussian(jnp.asarray(mu_p), jnp.asarray(ls_p)).kl(DiagGaussian(jnp.asarray(mu_q), jnp.asarray(ls_q))))
    np.testing.assert_allclose(got, mc, rtol=2e-2)


def test_gaussian_sample_statistics_and_mode() -> None:
    """Samples have the requested per-dimension mean and std (within sampling error); mode is the mean."""
    mean, log_std = _gaussian_params(8)
    dist = DiagGaussian(jnp.asarray(mean), jnp.asarray(log_std))
    S = 4000
    samples = np.asarray(jax.vmap(dist.sample)(jax.random.split(jax.random.PRNGKey(0), S)))
    assert samples.shape == (S, B, D)
    std = np.exp(log_std)
    assert np.all(np.abs(samples.mean(0) - mean) < 5.0 * std / np.sqrt(S))
    np.testing.assert_allclose(samples.std(0), std, rtol=0.1)
    z = (samples - mean) / std
    assert abs(np.corrcoef(z[:, 0, 0], z[:, 0, 1])[0, 1]) < 0.1
    np.testing.assert_array_equal(np.asarray(dist.mode()), mean)


def _logits(seed: int, shift: float = 0.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(scale=1.5, size=(B, K)) + shift).astype(np.float32)


def test_categorical_log_prob_and_entropy_match_scipy() -> None:
    """log_prob is log softmax at the action; entropy equals scipy.stats.entropy of the softmax."""
    logits = _logits(0, shift=30.0)
    dist = Categorical(jnp.asarray(logits))
    p = special.softmax(logits.astype(np.float64), axis=-1)
    actions = np.random.default_rng(1).integers(0, K, size=B)
    np.testing.assert_allclose(np.asarray(dist.log_prob(jnp.asarray(actions))), np.log(p[np.arange(B), actions]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dist.entropy()), stats.entropy(p, axis=-1), rtol=1e-5, atol=1e-6)
    all_actions = np.tile(np.arange(K), (B, 1)).T
    lp_all = np.asarray(jax.vmap(dist.log_prob)(jnp.asarray(all_actions)))
    np.testing.assert_allclose(np.exp(lp_all).sum(0), 1.0, rtol=1e-5)


def test_categorical_kl_matches_scipy() -> None:
    """kl(other) = KL(self || other) equals scipy.stats.entropy(p, q)."""
    lp, lq = _logits(2), _logits(3)
    p = special.softmax(lp.astype(np.float64), axis=-1)
    q = special.softmax(lq.astype(np.float64), axis=-1)
    dp, dq = Categorical(jnp.asarray(lp)), Categorical(jnp.asarray(lq))
    np.testing.assert_allclose(np.asarray(dp.kl(dq)), stats.entropy(p, q, axis=-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dq.kl(dp)), stats.entropy(q, p, axis=-1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dp.kl(Categorical(jnp.asarray(lp + 4.0)))), 0.0, atol=1e-6)


@pytest.mark.parametrize("seed", [4, 5])
def test_categorical_sample_frequencies_and_mode(seed: int) -> None:
    """Sample frequencies match the softmax probabilities (within sampling error); mode is the argmax."""
    logits = _logits(seed)
    dist = Categorical(jnp.asarray(logits))
    S = 5000
    samples = np.asarray(jax.vmap(dist.sample)(jax.random.split(jax.random.PRNGKey(seed), S)))
    assert samples.shape == (S, B)
    p = special.softmax(logits.astype(np.float64), axis=-1)
    freq = np.stack([(samples == k).mean(0) for k in range(K)], axis=-1)
    assert np.all(np.abs(freq - p) < 5.0 * np.sqrt(p * (1 - p) / S) + 1e-3)
    np.testing.assert_array_equal(np.asarray(dist.mode()), np.argmax(logits, axis=-1))
