"""GAE, discounted returns and masked advantage normalisation against plain NumPy loops."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.core.estimators import discounted_returns, gae, masked_mean, normalize_advantages

T, N = 37, 5
GAMMA, LAMBDA = 0.97, 0.9


def _batch(seed: int = 0) -> dict[str, np.ndarray]:
    """Random [T, N] rollout with terminations and truncations mixed in, plus hand-placed ones."""
    rng = np.random.default_rng(seed)
    ends = rng.random((T, N))
    terminated = (ends < 0.08).astype(np.float32)
    truncated = ((ends >= 0.08) & (ends < 0.16)).astype(np.float32)
    terminated[[3, 20, T - 1], 0] = 1.0
    truncated[[3, 20, T - 1], 0] = 0.0
    truncated[[5, 11, T - 1], 1] = 1.0
    terminated[[5, 11, T - 1], 1] = 0.0
    terminated[7, 2] = truncated[7, 2] = 1.0
    return dict(
        rewards=rng.normal(size=(T, N)).astype(np.float32),
        values=rng.normal(size=(T, N)).astype(np.float32),
        last_value=rng.normal(size=(N,)).astype(np.float32),
        terminated=terminated,
        truncated=truncated,
    )


def _gae_loop(
    rewards: np.ndarray, values: np.ndarray, last_value: np.ndarray, terminated: np.ndarray,
    truncated: np.ndarray, gamma: float, lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference GAE: an explicit double loop over envs and time, in float64."""
    adv = np.zeros(rewards.shape, np.float64)
    for n in range(rewards.shape[1]):
        next_adv = 0.0
        for t in reversed(range(rewards.shape[0])):
            next_v = float(last_value[n]) if t == rewards.shape[0] - 1 else float(values[t + 1, n])
            term = terminated[t, n] > 0
            done = term or truncated[t, n] > 0
            delta = float(rewards[t, n]) + (0.0 if term else gamma * next_v) - float(values[t, n])
            adv[t, n] = delta + (0.0 if done else gamma * lam * next_adv)
            next_adv = adv[t, n]
    return adv, adv + values


def _returns_loop(
    rewards: np.ndarray, values: np.ndarray, last_value: np.ndarray, terminated: np.ndarray,
    truncated: np.ndarray, gamma: float,
) -> np.ndarray:
    """Reference reward-to-go: zero after terminations, V(next) after truncations and at the end."""
    g = np.zeros(rewards.shape, np.float64)
    for n in range(rewards.shape[1]):
        for t in reversed(range(rewards.shape[0])):
            next_v = float(last_value[n]) if t == rewards.shape[0] - 1 else float(values[t + 1, n])
            if terminated[t, n] > 0:
                tail = 0.0
            elif truncated[t, n] > 0 or t == rewards.shape[0] - 1:
                tail = next_v
            else:
                tail = g[t + 1, n]
            g[t, n] = float(rewards[t, n]) + gamma * tail
    return g


def _run_gae(b: dict[str, np.ndarray], gamma: float = GAMMA, lam: float = LAMBDA) -> tuple[np.ndarray, np.ndarray]:
    adv, ret = gae(
        jnp.asarray(b["rewards"]), jnp.asarray(b["values"]), jnp.asarray(b["last_value"]),
        jnp.asarray(b["terminated"]), jnp.asarray(b["truncated"]), gamma, lam,
    )
    return np.asarray(adv), np.asarray(ret)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lam", [0.0, LAMBDA, 1.0])
def test_gae_matches_numpy_loop(seed: int, lam: float) -> None:
    """gae() equals the double-loop recursion on a batch mixing terminations and truncations."""
    b = _batch(seed)
    assert b["terminated"].sum() > 3 and b["truncated"].sum() > 3
    adv, ret = _run_gae(b, lam=lam)
    ref_adv, ref_ret = _gae_loop(**b, gamma=GAMMA, lam=lam)
    assert adv.shape == ret.shape == (T, N)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-5)


def test_gae_lambda_zero_is_one_step_td_error() -> None:
    """With lambda = 0 each advantage is its own TD error, r + gamma V' (1 - term) - V."""
    b = _batch(3)
    adv, _ = _run_gae(b, lam=0.0)
    next_v = np.concatenate([b["values"][1:], b["last_value"][None]], axis=0)
    td = b["rewards"] + GAMMA * next_v * (1.0 - b["terminated"]) - b["values"]
    np.testing.assert_allclose(adv, td, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("t", "n"), [(5, 1), (11, 1), (T - 1, 1)])
def test_truncated_step_bootstraps_from_next_value(t: int, n: int) -> None:
    """At a truncation A_t = r_t + gamma V_{t+1} - V_t, so dA_t/dV_{t+1} = gamma and nothing earlier leaks past."""
    b = _batch(0)
    assert b["truncated"][t, n] == 1 and b["terminated"][t, n] == 0
    adv, _ = _run_gae(b)
    bumped = {k: v.copy() for k, v in b.items()}
    eps = 0.5
    if t == T - 1:
        bumped["last_value"][n] += eps
    else:
        bumped["values"][t + 1, n] += eps
    adv2, _ = _run_gae(bumped)
    np.testing.assert_allclose(adv2[t, n] - adv[t, n], GAMMA * eps, rtol=1e-4)
    next_v = b["last_value"][n] if t == T - 1 else b["values"][t + 1, n]
    np.testing.assert_allclose(adv[t, n], b["rewards"][t, n] + GAMMA * next_v - b["values"][t, n], rtol=1e-5, atol=1e-5)
    if not (b["terminated"][t - 1, n] or b["truncated"][t - 1, n]):
        np.testing.assert_allclose(adv2[t - 1, n] - adv[t - 1, n], GAMMA * LAMBDA * GAMMA * eps, rtol=1e-3)


@pytest.mark.parametrize(("t", "n"), [(3, 0), (20, 0), (T - 1, 0), (7, 2)])
def test_terminated_step_does_not_bootstrap(t: int, n: int) -> None:
    """At a termination (also when truncated at once) A_t = r_t - V_t: the next value has no effect on A_{<=t}."""
    b = _batch(0)
    assert b["terminated"][t, n] == 1
    adv, _ = _run_gae(b)
    bumped = {k: v.copy() for k, v in b.items()}
    if t == T - 1:
        bumped["last_value"][n] += 10.0
    else:
        bumped["values"][t + 1, n] += 10.0
    adv2, _ = _run_gae(bumped)
    np.testing.assert_array_equal(adv2[: t + 1, n], adv[: t + 1, n])
    np.testing.assert_allclose(adv[t, n], b["rewards"][t, n] - b["values"][t, n], rtol=1e-5, atol=1e-6)


def test_ongoing_step_depends_on_next_value() -> None:
    """Control for the perturbation tests: away from episode ends the next value does change A_t."""
    b = _batch(0)
    t, n = 9, 1
    assert not (b["terminated"][t, n] or b["truncated"][t, n])
    adv, _ = _run_gae(b)
    b["values"][t + 1, n] += 1.0
    adv2, _ = _run_gae(b)
    assert abs(adv2[t, n] - adv[t, n]) > 1e-3


@pytest.mark.parametrize("seed", [0, 4])
def test_discounted_returns_matches_reward_to_go_loop(seed: int) -> None:
    """discounted_returns() equals an explicit reward-to-go loop (cut at terminations, bootstrapped at truncations)."""
    b = _batch(seed)
    g = discounted_returns(
        jnp.asarray(b["rewards"]), jnp.asarray(b["last_value"]), jnp.asarray(b["terminated"]),
        jnp.asarray(b["truncated"]), jnp.asarray(b["values"]), GAMMA,
    )
    ref = _returns_loop(b["rewards"], b["values"], b["last_value"], b["terminated"], b["truncated"], GAMMA)
    np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-5, atol=1e-5)


def _mask_and_adv(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    adv = rng.normal(loc=1.5, scale=3.0, size=(T, N)).astype(np.float32)
    mask = (rng.random((T, N)) > 0.3).astype(np.float32)
    adv[mask == 0] = 1e4
    return adv, mask


def test_masked_mean_ignores_masked_entries() -> None:
    """masked_mean() equals np.mean over the entries with mask == 1, whatever the others hold."""
    adv, mask = _mask_and_adv()
    got = float(masked_mean(jnp.asarray(adv), jnp.asarray(mask)))
    np.testing.assert_allclose(got, adv[mask == 1].mean(), rtol=1e-5)
    assert float(masked_mean(jnp.asarray(adv), jnp.zeros_like(jnp.asarray(mask)))) == 0.0


def test_normalize_advantages_uses_valid_entries_only() -> None:
    """Valid entries come out as (A - mean) / (std + eps) of the valid entries (population std)."""
    adv, mask = _mask_and_adv()
    out = np.asarray(normalize_advantages(jnp.asarray(adv), jnp.asarray(mask)))
    valid = adv[mask == 1].astype(np.float64)
    expected = (valid - valid.mean()) / (valid.std() + 1e-8)
    np.testing.assert_allclose(out[mask == 1], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[mask == 1].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[mask == 1].std(), 1.0, rtol=1e-5)
    adv_other = adv.copy()
    adv_other[mask == 0] = -7.0
    out_other = np.asarray(normalize_advantages(jnp.asarray(adv_other), jnp.asarray(mask)))
    np.testing.assert_allclose(out_other[mask == 1], out[mask == 1], rtol=1e-6, atol=1e-6)
