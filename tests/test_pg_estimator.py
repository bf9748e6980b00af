"""The score-function policy gradient of `policy_gradient_surrogate` against an analytic gradient,
and `trajectory_returns` against episodes laid out in the auto-reset convention.

Bandit: pi = N(mu, sigma^2) with fixed sigma, r(u) = -(u - c)^2, J(mu) = -((mu - c)^2 + sigma^2),
dJ/dmu = -2 (mu - c). With u = mu + sigma z and d = mu - c, the per-sample estimate is
g = (z / sigma)(r - b) = -(a / sigma) z - 2 d z^2 - sigma z^3 with a = d^2 + b, so
E[g] = -2d for any constant b and Var[g] = a^2 / sigma^2 + 8 d^2 + 15 sigma^2 + 6 a:
d^4 / sigma^2 + 14 d^2 + 15 sigma^2 without baseline, 8 d^2 + 10 sigma^2 with b = E[r].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.algos.base import Batch
from policysearch.algos.pg import PGConfig, policy_gradient_surrogate, psi_of, trajectory_returns
from policysearch.core.distributions import DiagGaussian
from policysearch.core.estimators import discounted_returns

MU, C, SIGMA = 2.0, 0.0, 0.3
N = 20_000


def _exact_variance(b: float) -> float:
    d = MU - C
    a = d**2 + b
    return a**2 / SIGMA**2 + 8 * d**2 + 15 * SIGMA**2 + 6 * a


def _bandit_samples(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    u = MU + SIGMA * np.random.default_rng(seed).normal(size=N)
    return u, -((u - C) ** 2)


def _log_prob(mu: jax.Array, u: jax.Array) -> jax.Array:
    """log N(u; mu, sigma^2) through the library's DiagGaussian, for u[n] -> [n]."""
    mean = jnp.broadcast_to(mu, u.shape)[..., None]
    return DiagGaussian(mean, jnp.full_like(mean, np.log(SIGMA))).log_prob(u[..., None])


def _per_sample_grads(u: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """d/dmu of the surrogate on each single sample (vmap over 1-row batches)."""

    def one(u_i: jax.Array, psi_i: jax.Array) -> jax.Array:
        return jax.grad(lambda mu: policy_gradient_surrogate(_log_prob(mu, u_i[None]), psi_i[None], jnp.ones(1)))(jnp.float32(MU))

    return np.asarray(jax.vmap(one)(jnp.asarray(u, jnp.float32), jnp.asarray(psi, jnp.float32)), np.float64)


def test_per_sample_gradient_is_score_times_psi() -> None:
    """Each sample's surrogate gradient is (u - mu) / sigma^2 * psi (float32: 1e-4 relative)."""
    u, r = _bandit_samples()
    u, r = u[:200], r[:200]
    g = _per_sample_grads(u, r)
    np.testing.assert_allclose(g, (u - MU) / SIGMA**2 * r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("baseline", ["none", "batch_mean", "exact"])
def test_bandit_gradient_is_unbiased(baseline: str) -> None:
    """The mean of 20k per-sample estimates is within 4 standard errors of dJ/dmu = -2(mu - c),
    for b = 0, the batch-mean reward (an O(1/n) bias, far below the SE) and b = E[r]; the
    measured variance is within 10% of the exact one (the relative SE of a sample variance of
    these polynomial-in-z estimates is <= 3% at n = 20k)."""
    u, r = _bandit_samples()
    b = {"none": 0.0, "batch_mean": float(np.mean(r)), "exact": -((MU - C) ** 2 + SIGMA**2)}[baseline]
    g = _per_sample_grads(u, r - b)
    se = np.std(g) / np.sqrt(N)
    analytic = -2.0 * (MU - C)
    assert abs(np.mean(g) - analytic) < 4 * se, (np.mean(g), analytic, se)
    np.testing.assert_allclose(np.var(g), _exact_variance(b), rtol=0.10)


def test_baseline_reduces_variance() -> None:
    """With mu - c = 2 and sigma = 0.3 the exact variance ratio is 235 / 33 ~ 7; the measured
    one must exceed 4, and the baselined estimate's SE must be correspondingly smaller."""
    u, r = _bandit_samples(seed=1)
    v_none = np.var(_per_sample_grads(u, r))
    v_base = np.var(_per_sample_grads(u, r - np.mean(r)))
    assert v_none / v_base > 4.0, (v_none, v_base)
    assert _exact_variance(0.0) / _exact_variance(-((MU - C) ** 2 + SIGMA**2)) > 6.0


def test_surrogate_is_a_masked_mean_with_constant_psi() -> None:
    """The batch surrogate's gradient is the mean of the per-sample ones over valid rows;
    invalid rows (huge log-probs and psi) change nothing; psi that depends on the parameter
    (here psi = r - 1000 mu) is held constant (float32: 1e-4 relative)."""
    u, r = _bandit_samples(seed=2)
    u, r = u[:500], r[:500]
    per_sample = _per_sample_grads(u, r)
    valid = np.ones(600, np.float32)
    valid[500:] = 0.0
    u_all = np.concatenate([u, np.full(100, 50.0)])
    r_all = np.concatenate([r, np.full(100, 1e6)])

    def batch_grad(psi_fn) -> float:
        def surrogate(mu: jax.Array) -> jax.Array:
            psi = psi_fn(mu)
            return policy_gradient_surrogate(_log_prob(mu, jnp.asarray(u_all, jnp.float32)), psi, jnp.asarray(valid))

        return float(jax.grad(surrogate)(jnp.float32(MU)))

    g_const = batch_grad(lambda mu: jnp.asarray(r_all, jnp.float32))
    np.testing.assert_allclose(g_const, per_sample.mean(), rtol=1e-4)
    g_dep = batch_grad(lambda mu: jnp.asarray(r_all, jnp.float32) - 1000.0 * mu + 1000.0 * MU)
    np.testing.assert_allclose(g_dep, g_const, rtol=1e-5)
    # Its value is the masked mean of log_prob * psi.
    lp = np.asarray(_log_prob(jnp.float32(MU), jnp.asarray(u, jnp.float32)), np.float64)
    val = float(policy_gradient_surrogate(_log_prob(jnp.float32(MU), jnp.asarray(u_all, jnp.float32)), jnp.asarray(r_all, jnp.float32), jnp.asarray(valid)))
    np.testing.assert_allclose(val, np.mean(lp * r), rtol=1e-4)


def test_two_step_reward_to_go_and_trajectory_agree_in_expectation() -> None:
    """Two steps of the bandit in sequence (u_1, u_2 ~ N(mu, sigma^2), rewards r_k = -(u_k - c)^2):
    dJ/dmu = -4(mu - c). Both psi_k = r_1 + r_2 (whole trajectory) and psi_k = sum_{j>=k} r_j
    (reward to go) are unbiased (4 SE); reward-to-go drops r_1 from step 2's term, so its
    variance is lower (exact: the dropped term is independent noise; require a ratio > 1.2)."""
    rng = np.random.default_rng(3)
    u = MU + SIGMA * rng.normal(size=(N, 2))
    r = -((u - C) ** 2)
    b = -((MU - C) ** 2 + SIGMA**2)
    traj = np.repeat((r.sum(1) - 2 * b)[:, None], 2, axis=1)
    rtg = np.stack([r.sum(1) - 2 * b, r[:, 1] - b], axis=1)
    analytic = -4.0 * (MU - C)
    vals = {}
    for name, psi in [("trajectory", traj), ("reward_to_go", rtg)]:
        g = _per_sample_grads(u.reshape(-1), psi.reshape(-1)).reshape(N, 2).sum(1)
        assert abs(g.mean() - analytic) < 4 * g.std() / np.sqrt(N), (name, g.mean(), analytic)
        vals[name] = g.var()
    assert vals["trajectory"] / vals["reward_to_go"] > 1.2, vals


# trajectory_returns under auto-reset ----------------------------------------------------------

T_ROWS = 20


def _column(lengths: list[int], start_invalid: bool, kinds: list[str]) -> list[tuple[int, float, str]]:
    """Rows of one env as (episode id or -1 for an auto-reset row, valid, end kind): each episode
    of the given length ends with `kinds[i]` ('term', 'trunc' or 'cut' = still running at the
    end of the batch) and is followed by one invalid auto-reset row."""
    rows: list[tuple[int, float, str]] = [(-1, 0.0, "")] if start_invalid else []
    for ep, (length, kind) in enumerate(zip(lengths, kinds)):
        for k in range(length):
            rows.append((ep, 1.0, kind if k == length - 1 else ""))
        if kind != "cut":
            rows.append((-1, 0.0, ""))
    return rows[:T_ROWS]


COLUMNS = [
    _column([3, 1, 5, 2, 30], False, ["term", "trunc", "term", "term", "cut"]),
    _column([4, 1, 1, 30], True, ["trunc", "term", "term", "cut"]),  # batch opens on an auto-reset row
    _column([5, 6, 7], False, ["term", "trunc", "term"]),  # last row ends an episode
    _column([25], False, ["cut"]),  # one episode across the whole batch
    _column([1] * 10, False, ["term", "trunc"] * 5),  # length-1 episodes
    _column([6, 4, 30], True, ["trunc", "trunc", "cut"]),
]


def _batch(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(COLUMNS)
    assert all(len(c) == T_ROWS for c in COLUMNS)
    ep = np.array([[c[t][0] for c in COLUMNS] for t in range(T_ROWS)])
    valid = np.array([[c[t][1] for c in COLUMNS] for t in range(T_ROWS)], np.float32)
    kind = np.array([[c[t][2] for c in COLUMNS] for t in range(T_ROWS)])
    assert COLUMNS[2][-1][2] == "term" and COLUMNS[1][0][1] == 0.0
    rewards = np.where(valid > 0, rng.normal(size=(T_ROWS, n)), 0.0).astype(np.float32)
    return dict(
        rewards=rewards,
        values=rng.normal(size=(T_ROWS, n)).astype(np.float32),
        last_value=rng.normal(size=n).astype(np.float32),
        terminated=(kind == "term").astype(np.float32),
        truncated=(kind == "trunc").astype(np.float32),
        valid=valid,
    ), ep


def _first_rows(ep: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each valid row, the row where its episode's segment in this batch begins (from the
    construction, not from done flags)."""
    first = np.full(ep.shape, -1)
    for n in range(ep.shape[1]):
        for t in range(ep.shape[0]):
            if valid[t, n] > 0:
                first[t, n] = min(s for s in range(ep.shape[0]) if ep[s, n] == ep[t, n] and valid[s, n] > 0)
    return first


def test_trajectory_returns_takes_the_segment_start() -> None:
    """Every valid row gets G at the first row of its episode in the batch: t = 0, or the first
    valid row after a done (the row after the auto-reset row). Exact (a gather)."""
    b, ep = _batch()
    g = np.random.default_rng(9).normal(size=ep.shape).astype(np.float32)
    out = np.asarray(trajectory_returns(jnp.asarray(g), jnp.asarray(b["valid"]), jnp.asarray(b["terminated"]), jnp.asarray(b["truncated"])))
    first = _first_rows(ep, b["valid"])
    rows, cols = np.nonzero(b["valid"] > 0)
    np.testing.assert_array_equal(out[rows, cols], g[first[rows, cols], cols])


def _episode_return(b: dict[str, np.ndarray], ep: np.ndarray, n: int, start: int, gamma: float) -> float:
    """Discounted return of the episode from `start`: terminated -> no tail; truncated -> gamma^L V
    of the final observation (held by the auto-reset row after it, or last_value at the batch
    end); still running at the batch end -> gamma^L last_value."""
    rows = [t for t in range(T_ROWS) if ep[t, n] == ep[start, n] and b["valid"][t, n] > 0 and t >= start]
    g = sum(gamma**k * float(b["rewards"][t, n]) for k, t in enumerate(rows))
    end = rows[-1]
    if b["terminated"][end, n] > 0:
        return g
    tail = float(b["last_value"][n]) if end == T_ROWS - 1 else float(b["values"][end + 1, n])
    return g + gamma ** len(rows) * tail


@pytest.mark.parametrize("seed", [0, 1])
def test_psi_trajectory_and_reward_to_go_end_to_end(seed: int) -> None:
    """psi_of(batch) for "trajectory": r(tau) of the whole episode (from its first row in the
    batch, bootstrapped at truncations and the batch end) on every valid row, minus its mean
    over valid rows; for "reward_to_go": the return from each row. Float32: 1e-5 absolute."""
    b, ep = _batch(seed)
    gamma = 0.9
    n = ep.shape[1]
    batch = Batch(
        obs=jnp.zeros((T_ROWS, n, 1)), actions=jnp.zeros((T_ROWS, n, 1)), log_probs=jnp.zeros((T_ROWS, n)),
        values=jnp.asarray(b["values"]), rewards=jnp.asarray(b["rewards"]), terminated=jnp.asarray(b["terminated"]),
        truncated=jnp.asarray(b["truncated"]), valid=jnp.asarray(b["valid"]), last_value=jnp.asarray(b["last_value"]),
    )
    first = _first_rows(ep, b["valid"])
    rows, cols = np.nonzero(b["valid"] > 0)
    expected_traj = np.array([_episode_return(b, ep, c, first[t, c], gamma) for t, c in zip(rows, cols)])
    expected_rtg = np.array([_episode_return(b, ep, c, t, gamma) for t, c in zip(rows, cols)])
    flat = rows * n + cols

    g = np.asarray(discounted_returns(batch.rewards, batch.last_value, batch.terminated, batch.truncated, batch.values, gamma))
    np.testing.assert_allclose(g[rows, cols], expected_rtg, atol=1e-5)

    for estimator, expected in [("trajectory", expected_traj), ("reward_to_go", expected_rtg)]:
        psi = np.asarray(psi_of(batch, PGConfig(estimator=estimator, gamma=gamma, baseline=False)))
        np.testing.assert_allclose(psi[flat], expected, atol=1e-5, err_msg=estimator)
        psi_b = np.asarray(psi_of(batch, PGConfig(estimator=estimator, gamma=gamma, baseline=True)))
        np.testing.assert_allclose(psi_b[flat], expected - expected.mean(), atol=1e-5, err_msg=estimator)
