"""Log-space importance-sampling estimators against exact expectations.

The reference problem is small enough to enumerate: a horizon-3 sequence of binary actions whose
probability of action 1 at step t depends on the previous action, under a target p and a
behaviour q. Every trajectory's probability is a product of per-step probabilities, so E_p[f]
is an exact finite sum. Sampling checks draw 200k trajectories from q with a fixed seed and
allow 4 standard errors (a correct estimator fails one such check with probability ~6e-5, a
biased one by more than a few SE fails it).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import logsumexp

from policysearch.core.distributions import DiagGaussian
from policysearch.core.estimators import (
    effective_sample_size,
    is_estimate,
    log_importance_weights,
    mixture_prefix_log_probs,
    per_prefix_estimate,
    prefix_log_probs,
    self_normalized_estimate,
    self_normalized_weights,
)

H = 3
# P[t, a]: probability of action 1 at step t after previous action a (a = 0 at t = 0).
P = np.array([[0.3, 0.3], [0.7, 0.2], [0.4, 0.8]])
Q = np.array([[0.5, 0.5], [0.5, 0.4], [0.6, 0.5]])
# R[t, a_prev, a]: reward at step t, a function of the last two actions.
R = np.random.default_rng(123).normal(size=(H, 2, 2))
N_SAMPLES = 200_000


def _step_log_probs(table: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """log pi(u_t | u_{t-1}) for actions[m, H] under a probability table like P, float64."""
    prev = np.concatenate([np.zeros_like(actions[:, :1]), actions[:, :-1]], axis=1)
    p1 = table[np.arange(H)[None, :], prev]
    return np.log(np.where(actions == 1, p1, 1.0 - p1))


def _rewards(actions: np.ndarray) -> np.ndarray:
    prev = np.concatenate([np.zeros_like(actions[:, :1]), actions[:, :-1]], axis=1)
    return R[np.arange(H)[None, :], prev, actions]


def _enumerate() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All 2^H trajectories: (actions[8, H], step log p[8, H], step log q[8, H])."""
    actions = np.array(list(itertools.product([0, 1], repeat=H)))
    return actions, _step_log_probs(P, actions), _step_log_probs(Q, actions)


def _sample_q(m: int, seed: int = 0, table: np.ndarray = Q) -> np.ndarray:
    rng = np.random.default_rng(seed)
    actions = np.zeros((m, H), np.int64)
    prev = np.zeros(m, np.int64)
    for t in range(H):
        actions[:, t] = rng.random(m) < table[t, prev]
        prev = actions[:, t]
    return actions


def _exact() -> tuple[float, np.ndarray]:
    """(E_p[sum_t r_t], [E_p[r_t] for t]) by enumeration."""
    actions, lp, _ = _enumerate()
    prob = np.exp(lp.sum(axis=1))
    assert np.isclose(prob.sum(), 1.0)
    per_step = prob @ _rewards(actions)
    return float(per_step.sum()), per_step


def test_weights_are_exactly_unbiased_by_enumeration() -> None:
    """sum_tau q(tau) * estimate(tau) over the 8 trajectories is E_p[f] (float32 arithmetic on
    O(1) numbers: 1e-5 relative)."""
    actions, lp, lq = _enumerate()
    f = _rewards(actions).sum(axis=1)
    log_w = log_importance_weights(jnp.asarray(lp.sum(1), jnp.float32), jnp.asarray(lq.sum(1), jnp.float32))
    single = jax.vmap(lambda lw, fi: is_estimate(lw[None], fi[None]))(log_w, jnp.asarray(f, jnp.float32))
    q_prob = np.exp(lq.sum(axis=1))
    exact, exact_steps = _exact()
    np.testing.assert_allclose(float(np.sum(q_prob * np.asarray(single, np.float64))), exact, rtol=1e-5, atol=1e-6)
    # The expected weight is one: E_q[p/q] = 1.
    np.testing.assert_allclose(float(np.sum(q_prob * np.exp(np.asarray(log_w, np.float64)))), 1.0, rtol=1e-5)

    # Per-prefix (unnormalised) on a single sample: sum_t w_{1:t} r_t, exactly unbiased.
    lp_pre = prefix_log_probs(jnp.asarray(lp, jnp.float32))
    lq_pre = prefix_log_probs(jnp.asarray(lq, jnp.float32))
    r = jnp.asarray(_rewards(actions), jnp.float32)
    per_traj = jax.vmap(lambda a, b, c: per_prefix_estimate(a[None], b[None], c[None], self_normalized=False))(lp_pre, lq_pre, r)
    np.testing.assert_allclose(float(np.sum(q_prob * np.asarray(per_traj, np.float64))), exact_steps.sum(), rtol=1e-5, atol=1e-6)


def test_prefix_log_probs_and_per_prefix_weighting() -> None:
    """The reward at t is weighted by its prefix ratio w_{1:t}, not by the whole trajectory's
    ratio: a deterministic float64 NumPy comparison on a handful of samples (1e-5 relative)."""
    actions = _sample_q(6, seed=4)
    lp, lq, r = _step_log_probs(P, actions), _step_log_probs(Q, actions), _rewards(actions)
    lp_pre = np.asarray(prefix_log_probs(jnp.asarray(lp, jnp.float32)), np.float64)
    np.testing.assert_allclose(lp_pre, np.cumsum(lp, axis=1), rtol=1e-6, atol=1e-6)
    lq_pre = np.cumsum(lq, axis=1)
    w = np.exp(lp_pre - lq_pre)  # [m, H]
    args = (jnp.asarray(lp_pre, jnp.float32), jnp.asarray(lq_pre, jnp.float32), jnp.asarray(r, jnp.float32))
    plain = float(per_prefix_estimate(*args, self_normalized=False))
    np.testing.assert_allclose(plain, np.sum(np.mean(w * r, axis=0)), rtol=1e-5)
    sn = float(per_prefix_estimate(*args, self_normalized=True))
    np.testing.assert_allclose(sn, np.sum(np.sum(w * r, axis=0) / np.sum(w, axis=0)), rtol=1e-5)
    # Whole-trajectory weights give a different number on these samples (the test can tell).
    w_full = np.exp(lp_pre[:, -1:] - lq_pre[:, -1:])
    assert abs(np.sum(np.mean(w_full * r, axis=0)) - plain) > 1e-2


def _samples() -> dict[str, np.ndarray]:
    actions = _sample_q(N_SAMPLES, seed=0)
    lp, lq = _step_log_probs(P, actions), _step_log_probs(Q, actions)
    return dict(lp=lp, lq=lq, r=_rewards(actions))


def test_sampled_estimators_match_exact_expectation() -> None:
    """Plain, self-normalised and per-prefix (plain and self-normalised) estimates from 200k
    samples of q are within 4 standard errors of the exact E_p[sum_t r_t]. Standard errors:
    sample std / sqrt(m) for plain estimators, the delta method (influence function
    (w_i / mean w)(f_i - estimate)) for self-normalised ones."""
    s = _samples()
    exact, _ = _exact()
    f = s["r"].sum(axis=1)
    log_w64 = s["lp"].sum(1) - s["lq"].sum(1)
    w = np.exp(log_w64)
    log_w = jnp.asarray(log_w64, jnp.float32)

    plain = float(is_estimate(log_w, jnp.asarray(f, jnp.float32)))
    se_plain = np.std(w * f) / np.sqrt(N_SAMPLES)
    assert abs(plain - exact) < 4 * se_plain, (plain, exact, se_plain)

    sn = float(self_normalized_estimate(log_w, jnp.asarray(f, jnp.float32)))
    se_sn = np.std(w / w.mean() * (f - sn)) / np.sqrt(N_SAMPLES)
    assert abs(sn - exact) < 4 * se_sn, (sn, exact, se_sn)

    lp_pre, lq_pre = np.cumsum(s["lp"], 1), np.cumsum(s["lq"], 1)
    wp = np.exp(lp_pre - lq_pre)
    args = (jnp.asarray(lp_pre, jnp.float32), jnp.asarray(lq_pre, jnp.float32), jnp.asarray(s["r"], jnp.float32))
    pp = float(per_prefix_estimate(*args, self_normalized=False))
    se_pp = np.std(np.sum(wp * s["r"], axis=1)) / np.sqrt(N_SAMPLES)
    assert abs(pp - exact) < 4 * se_pp, (pp, exact, se_pp)

    pp_sn = float(per_prefix_estimate(*args, self_normalized=True))
    est_t = np.sum(wp * s["r"], 0) / np.sum(wp, 0)
    se_pp_sn = np.std(np.sum(wp / wp.mean(0) * (s["r"] - est_t), axis=1)) / np.sqrt(N_SAMPLES)
    assert abs(pp_sn - exact) < 4 * se_pp_sn, (pp_sn, exact, se_pp_sn)

    # Sanity: the standard errors are small next to the gap between E_p and E_q, so a
    # wrong-direction ratio (q/p) or no weighting at all would fail the checks above.
    e_q = float(np.mean(f))
    assert abs(e_q - exact) > 20 * max(se_plain, se_sn, se_pp, se_pp_sn)


def test_per_prefix_matches_exact_per_step_rewards() -> None:
    """Per step t, the prefix-weighted estimate of E_p[r_t] is within 4 SE of the exact value
    (self-normalised and plain), so the sum is the exact sum_t E_p[r_t] in expectation."""
    s = _samples()
    _, exact_steps = _exact()
    lp_pre, lq_pre = np.cumsum(s["lp"], 1), np.cumsum(s["lq"], 1)
    wp = np.exp(lp_pre - lq_pre)
    for t in range(H):
        # Reward only at step t: the per-prefix estimate isolates E_p[r_t].
        r_t = np.zeros_like(s["r"])
        r_t[:, t] = s["r"][:, t]
        args = (jnp.asarray(lp_pre, jnp.float32), jnp.asarray(lq_pre, jnp.float32), jnp.asarray(r_t, jnp.float32))
        plain = float(per_prefix_estimate(*args, self_normalized=False))
        se = np.std(wp[:, t] * s["r"][:, t]) / np.sqrt(N_SAMPLES)
        assert abs(plain - exact_steps[t]) < 4 * se, (t, plain, exact_steps[t], se)
        sn = float(per_prefix_estimate(*args, self_normalized=True))
        se_sn = np.std(wp[:, t] / wp[:, t].mean() * (s["r"][:, t] - sn)) / np.sqrt(N_SAMPLES)
        assert abs(sn - exact_steps[t]) < 4 * se_sn, (t, sn, exact_steps[t], se_sn)


def test_mixture_proposal_is_unbiased_by_enumeration() -> None:
    """Samples split deterministically over components (m_j from q_j), weighted by
    p / q_mix with q_mix the mixture over whole trajectories, give an exactly unbiased estimate:
    sum_j (m_j/m) sum_tau q_j(tau) w(tau) f(tau) = E_p[f] (1e-5 relative)."""
    actions, lp, lq1 = _enumerate()
    lq2 = _step_log_probs(np.array([[0.9, 0.9], [0.1, 0.9], [0.2, 0.7]]), actions)
    counts = np.array([3.0, 1.0])
    comp = jnp.asarray(np.stack([lq1, lq2]), jnp.float32)
    log_q_mix = np.asarray(mixture_prefix_log_probs(comp, jnp.asarray(counts, jnp.float32)), np.float64)
    r = _rewards(actions)
    w = np.exp(np.cumsum(lp, 1) - log_q_mix)  # prefix weights [8, H]
    total = 0.0
    for j, lq in enumerate((lq1, lq2)):
        total += counts[j] / counts.sum() * np.sum(np.exp(lq.sum(1))[:, None] * w * r)
    exact, _ = _exact()
    np.testing.assert_allclose(total, exact, rtol=1e-5, atol=1e-6)


# Effective sample size -----------------------------------------------------------------------


def test_ess_equal_weights_is_m() -> None:
    for m, c in [(1, 0.0), (7, 3.5), (100, -250.0), (1000, 400.0)]:
        ess = float(effective_sample_size(jnp.full((m,), c, jnp.float32)))
        np.testing.assert_allclose(ess, m, rtol=1e-4)


def test_ess_one_dominant_weight_is_one() -> None:
    """One weight e^50 (or e^1000) times the others: ESS = 1 + O(m e^-50)."""
    for m, gap in [(10, 50.0), (500, 50.0), (500, 1000.0)]:
        log_w = np.zeros(m, np.float32)
        log_w[m // 3] = gap
        ess = float(effective_sample_size(jnp.asarray(log_w)))
        assert np.isfinite(ess) and abs(ess - 1.0) < 1e-4, ess


def test_ess_matches_float64_reference() -> None:
    """Random log-weights over axis 0 of [m, T]: (sum w)^2 / sum w^2 in float64 NumPy (with
    weights shifted per column, which cancels), 1e-4 relative for float32 logsumexp."""
    rng = np.random.default_rng(1)
    log_w = rng.normal(scale=[[0.1, 1.0, 3.0, 10.0]], size=(300, 4))
    w = np.exp(log_w - log_w.max(axis=0))
    ref = w.sum(0) ** 2 / (w**2).sum(0)
    ess = np.asarray(effective_sample_size(jnp.asarray(log_w, jnp.float32)))
    np.testing.assert_allclose(ess, ref, rtol=1e-4)
    assert np.all(ess >= 1 - 1e-4) and np.all(ess <= 300 * (1 + 1e-4))
    assert ref[0] > 250 and ref[3] < 10  # the columns span near-uniform to degenerate


def test_is_estimate_survives_sums_that_overflow() -> None:
    """Weights near e^85 (each representable in float32, their sum over 1000 samples not) with
    f = O(1): the estimate ~ e^85 is representable and must match float64 to 1e-4 relative."""
    rng = np.random.default_rng(2)
    log_w = 85.0 + rng.normal(scale=0.5, size=1000)
    f = rng.uniform(0.5, 1.5, size=1000)
    ref = np.mean(np.exp(log_w) * f)
    est = float(is_estimate(jnp.asarray(log_w, jnp.float32), jnp.asarray(f, jnp.float32)))
    np.testing.assert_allclose(est, ref, rtol=1e-4)


@pytest.mark.parametrize(
    "log_w, f",
    [
        ([95.0, 90.0, 0.0], [np.exp(-10.0), 0.0, 1.0]),  # ~ e^85 / 3 = 2.7e36 < float32 max 3.4e38
        ([95.0, 90.0, 0.0], [0.0, 0.0, 0.0]),  # exactly 0
        ([-110.0, -120.0], [np.exp(80.0), 1.0]),  # ~ e^-30 / 2 = 4.7e-14, a normal float32
    ],
)
def test_is_estimate_is_exact_when_the_result_is_representable(log_w: list[float], f: list[float]) -> None:
    """The docstring's promise: "exact whenever the result itself is representable". Each
    result here is a normal float32 number, but exp(max log w) alone is not (e^95 overflows,
    e^-110 underflows), so exp(shift) * mean(...) gives inf, nan (inf * 0) and 0. 1e-4
    relative against float64."""
    ref = float(np.mean(np.exp(np.array(log_w)) * np.array(f)))
    est = float(is_estimate(jnp.asarray(log_w, jnp.float32), jnp.asarray(f, jnp.float32)))
    np.testing.assert_allclose(est, ref, rtol=1e-4, atol=0.0)


def test_unnormalised_per_prefix_with_zero_rewards_late_is_finite() -> None:
    """A sparse-reward trajectory set: rewards only at t = 0 (where all weights are 1), zero
    afterwards, while prefix log-weights grow past float32's exp range (90-100 nats). The exact
    estimate is mean(r_0) = 1.5; the late steps contribute exactly 0, not inf * 0 = nan."""
    lp = jnp.asarray([[0.0, 50.0, 100.0], [0.0, 40.0, 90.0]], jnp.float32)
    r = jnp.asarray([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]], jnp.float32)
    est = float(per_prefix_estimate(lp, jnp.zeros_like(lp), r, self_normalized=False))
    np.testing.assert_allclose(est, 1.5, rtol=1e-6)


# Long horizons ---------------------------------------------------------------------------------


def test_long_horizon_log_space_is_finite() -> None:
    """T = 1000, per-step log-ratios N(0, 1) plus a per-sample drift N(0, 1): prefix log-weights
    reach hundreds of nats either way (exp overflows even in float64), yet the self-normalised
    weights are finite and sum to 1 at every t (1e-4 for float32 softmax over 64 samples), the
    estimates are finite and match a float64 log-space reference (1e-3 relative: float32
    cumulative sums of 1000 terms carry ~1e-4 relative error in log w), and ESS is in [1, m]."""
    rng = np.random.default_rng(3)
    m, T = 64, 1000
    step_lq = rng.normal(loc=-1.0, size=(m, T))
    step_lp = step_lq + rng.normal(size=(m, T)) + rng.normal(size=(m, 1))
    lp_pre, lq_pre = np.cumsum(step_lp, 1), np.cumsum(step_lq, 1)
    log_w64 = lp_pre - lq_pre
    assert np.max(np.abs(log_w64[:, -1])) > 750  # exp() of these is inf / 0 in float64
    rewards = rng.uniform(-1.0, 2.0, size=(m, T))

    lp_j, lq_j = prefix_log_probs(jnp.asarray(step_lp, jnp.float32)), prefix_log_probs(jnp.asarray(step_lq, jnp.float32))
    log_w = log_importance_weights(lp_j, lq_j)
    sw = np.asarray(self_normalized_weights(log_w))
    assert np.all(np.isfinite(sw)) and np.all(sw >= 0)
    np.testing.assert_allclose(sw.sum(axis=0), 1.0, atol=1e-4)

    est = np.asarray(self_normalized_estimate(log_w, jnp.asarray(rewards, jnp.float32)))
    assert np.all(np.isfinite(est))
    assert np.all(est >= rewards.min(0) - 1e-4) and np.all(est <= rewards.max(0) + 1e-4)
    ref_w = np.exp(log_w64 - logsumexp(log_w64, axis=0))
    np.testing.assert_allclose(est, np.sum(ref_w * rewards, 0), rtol=1e-3, atol=1e-3)

    pp = float(per_prefix_estimate(lp_j, lq_j, jnp.asarray(rewards, jnp.float32)))
    assert np.isfinite(pp)
    np.testing.assert_allclose(pp, np.sum(ref_w * rewards), rtol=1e-3)

    ess = np.asarray(effective_sample_size(log_w))
    assert np.all(np.isfinite(ess)) and np.all(ess >= 1 - 1e-3) and np.all(ess <= m * (1 + 1e-4))
    ref_ess = np.exp(2 * logsumexp(log_w64, 0) - logsumexp(2 * log_w64, 0))
    np.testing.assert_allclose(ess, ref_ess, rtol=2e-2)  # ESS ~ 1: exp of a difference of ~1e3-nat terms
    assert ess[0] > 10 and ess[-1] < 2  # degenerates with the horizon, as it should


# Mixture proposals -------------------------------------------------------------------------------


def _gaussian_components(rng: np.random.Generator, counts: list[int], T: int) -> np.ndarray:
    """Per-step log-probs [J, m, T] of actions u ~ q_j = N(mean_j(x), 0.7^2) for the m_j samples
    of each component, evaluated under every component (state x_k ~ N(0, 1), mean_j(x) = a_j x +
    b_j with components that disagree strongly)."""
    a, b, s = np.array([1.0, -1.0]), np.array([-2.0, 2.0]), 0.7
    m = sum(counts)
    x = rng.normal(size=(m, T))
    src = np.repeat(np.arange(len(counts)), counts)
    u = a[src, None] * x + b[src, None] + s * rng.normal(size=(m, T))
    out = []
    for j in range(len(counts)):
        d = DiagGaussian(jnp.asarray((a[j] * x + b[j])[..., None], jnp.float32), jnp.full((m, T, 1), np.log(s), jnp.float32))
        out.append(np.asarray(d.log_prob(jnp.asarray(u[..., None], jnp.float32)), np.float64))
    return np.stack(out)


def _discrete_components(rng: np.random.Generator, counts: list[int], T: int) -> np.ndarray:
    """Two categorical policies over 3 actions (state-independent, strongly disagreeing)."""
    probs = np.array([[0.8, 0.15, 0.05], [0.05, 0.15, 0.8]])
    src = np.repeat(np.arange(len(counts)), counts)
    u = np.stack([rng.choice(3, size=T, p=probs[j]) for j in src])
    return np.log(probs[:, u])  # [J, m, T]


@pytest.mark.parametrize("make", [_gaussian_components, _discrete_components])
def test_mixture_prefix_log_probs(make) -> None:
    """Against log(sum_j (m_j/m) prod_{k<=t} q_j) computed by direct products in float64 (T = 5,
    products stay far from under/overflow); 1e-4 absolute in log space for float32. It must
    differ from the product of per-step mixtures by a clear margin: for a sample that one
    component explains, the gap grows like (t - 1) * log(m / m_j), over 1 nat at t = 5 here."""
    rng = np.random.default_rng(5)
    counts, T = [30, 10], 5
    comp = make(rng, counts, T)
    w = np.array(counts, np.float64) / sum(counts)
    ref = np.log(np.einsum("j,jmt->mt", w, np.exp(np.cumsum(comp, axis=-1))))
    got = np.asarray(mixture_prefix_log_probs(jnp.asarray(comp, jnp.float32), jnp.asarray(counts, jnp.float32)), np.float64)
    assert got.shape == (sum(counts), T)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-5)
    # At t = 0 both forms coincide.
    per_step_mix = np.cumsum(np.log(np.einsum("j,jmt->mt", w, np.exp(comp))), axis=-1)
    np.testing.assert_allclose(got[:, 0], per_step_mix[:, 0], atol=1e-4)
    gap = got[:, -1] - per_step_mix[:, -1]
    assert np.max(gap) > 1.0 and np.mean(np.abs(gap)) > 0.5, gap
    # Only the proportions m_j / m matter: counts (3, 1) give the same mixture as (30, 10).
    got2 = np.asarray(mixture_prefix_log_probs(jnp.asarray(comp, jnp.float32), jnp.asarray([3, 1], jnp.float32)))
    np.testing.assert_allclose(got2, got, atol=1e-5)


def test_mixture_prefix_long_horizon_is_finite() -> None:
    """At T = 1000 the component prefixes are ~ -1000 nats: the mixture is still finite and at
    least the best component's log(m_j/m) + prefix (logsumexp lower bound, 1e-3 slack)."""
    rng = np.random.default_rng(6)
    comp = _discrete_components(rng, [5, 5], 1000)
    got = np.asarray(mixture_prefix_log_probs(jnp.asarray(comp, jnp.float32), jnp.asarray([5.0, 5.0])))
    assert np.all(np.isfinite(got))
    lower = np.max(np.log(0.5) + np.cumsum(comp, -1), axis=0)
    assert np.all(got >= lower - 1e-3 * np.abs(lower) - 1e-3)
    np.testing.assert_allclose(got, logsumexp(np.log(0.5) + np.cumsum(comp, -1), axis=0), rtol=1e-4, atol=1e-3)
