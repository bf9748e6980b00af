"""Running statistics and reward scaling against NumPy over the concatenated data."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from policysearch.core.normalize import NormState, RunningStats, normalize, scale_rewards, update_stats

PRIOR_COUNT = 1e-4


def _batches(seed: int, with_masks: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Several [B, 3] batches of different sizes, scales and offsets, optionally with row masks."""
    rng = np.random.default_rng(seed)
    out = []
    for b, loc, scale in [(17, 1.0, 2.0), (5, -3.0, 0.5), (40, 4.0, 3.0), (1, 0.0, 1.0), (23, 2.0, 1.5)]:
        x = rng.normal(loc, scale, size=(b, 3)).astype(np.float32)
        mask = (rng.random(b) > 0.35).astype(np.float32) if with_masks else None
        if mask is not None:
            x[mask == 0] = 1e3
        out.append((x, mask))
    if with_masks:
        out.append((rng.normal(size=(4, 3)).astype(np.float32), np.zeros(4, np.float32)))
    return out


def _run(stats: RunningStats, batches: list[tuple[np.ndarray, np.ndarray | None]]) -> RunningStats:
    for x, mask in batches:
        stats = update_stats(stats, jnp.asarray(x), None if mask is None else jnp.asarray(mask))
    return stats


def _kept_rows(batches: list[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
    return np.concatenate([x if m is None else x[m == 1] for x, m in batches]).astype(np.float64)


@pytest.mark.parametrize("with_masks", [False, True])
def test_update_stats_from_empty_matches_concatenation(with_masks: bool) -> None:
    """Starting from count 0, mean/var/count equal np.mean/np.var/len of all kept rows concatenated."""
    batches = _batches(0, with_masks)
    empty = RunningStats(jnp.zeros(3), jnp.zeros(3), jnp.asarray(0.0))
    stats = _run(empty, batches)
    rows = _kept_rows(batches)
    np.testing.assert_allclose(np.asarray(stats.mean), rows.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(stats.var), rows.var(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(stats.count), len(rows), rtol=1e-6)


@pytest.mark.parametrize("with_masks", [False, True])
def test_update_stats_from_create_matches_pooled_prior(with_masks: bool) -> None:
    """From create(), the result is the pooled mean/var of the data plus a prior of weight 1e-4 at mean 0, var 1."""
    batches = _batches(1, with_masks)
    stats = _run(RunningStats.create((3,)), batches)
    rows = _kept_rows(batches)
    total = PRIOR_COUNT + len(rows)
    mean = rows.sum(0) / total
    var = (PRIOR_COUNT * (1.0 + mean**2) + ((rows - mean) ** 2).sum(0)) / total
    np.testing.assert_allclose(np.asarray(stats.mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(stats.var), var, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(stats.count), total, rtol=1e-6)


def test_update_stats_all_masked_batch_is_a_no_op() -> None:
    """A batch whose mask is all zero leaves the statistics unchanged."""
    stats = _run(RunningStats.create((3,)), _batches(2, with_masks=False))
    after = update_stats(stats, jnp.full((6, 3), 50.0), jnp.zeros(6))
    for a, b in zip(after, stats):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-7)


def test_normalize_uses_running_stats_and_clips() -> None:
    """normalize() is clip((x - mean) / sqrt(var + 1e-8), -clip, clip) with the accumulated statistics."""
    batches = _batches(3, with_masks=False)
    stats = _run(RunningStats(jnp.zeros(3), jnp.zeros(3), jnp.asarray(0.0)), batches)
    rows = _kept_rows(batches)
    x = np.random.default_rng(4).normal(2.0, 6.0, size=(50, 3)).astype(np.float32)
    expected = np.clip((x - rows.mean(0)) / np.sqrt(rows.var(0) + 1e-8), -2.5, 2.5)
    np.testing.assert_allclose(np.asarray(normalize(stats, jnp.asarray(x), 2.5)), expected, rtol=1e-4, atol=1e-4)


T, N = 30, 4


def _reward_batch(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rewards with episode ends; the row after each end is an auto-reset row (valid 0, reward 0, not done)."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(0.5, 2.0, size=(T, N)).astype(np.float32)
    dones = np.zeros((T, N), np.float32)
    valid = np.ones((T, N), np.float32)
    for n in range(N):
        t = 0
        while t < T:
            if rng.random() < 0.12:
                dones[t, n] = 1.0
                if t + 1 < T:
                    valid[t + 1, n] = 0.0
                    rewards[t + 1, n] = 0.0
                t += 2
            else:
                t += 1
    return rewards, dones, valid


def _scale_rewards_loop(
    g0: np.ndarray, mean0: float, var0: float, count0: float, rewards: np.ndarray, dones: np.ndarray,
    valid: np.ndarray, gamma: float, clip: float,
) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Reference from the docstring: per env G_t = gamma G_{t-1} (1 - done_{t-1}) + r_t over valid rows; after
    each step the statistics take in that step's valid G values (pooled with everything seen before, including
    the initial statistics as a weighted pseudo-sample); r_t is divided by sqrt(var + 1e-8) and clipped."""
    seen: list[float] = []
    g = g0.astype(np.float64).copy()
    prev_done = np.zeros(rewards.shape[1], bool)
    scaled = np.zeros(rewards.shape, np.float64)
    mean, var, count = mean0, var0, count0
    for t in range(rewards.shape[0]):
        for n in range(rewards.shape[1]):
            if prev_done[n]:
                g[n] = 0.0
                prev_done[n] = False
            if valid[t, n] > 0:
                g[n] = gamma * g[n] + rewards[t, n]
                seen.append(g[n])
            if dones[t, n] > 0:
                prev_done[n] = True
        data = np.asarray(seen)
        count = count0 + len(data)
        mean = (count0 * mean0 + data.sum()) / count
        var = (count0 * (var0 + (mean0 - mean) ** 2) + ((data - mean) ** 2).sum()) / count
        scaled[t] = np.clip(rewards[t] / np.sqrt(var + 1e-8), -clip, clip)
    g_out = np.where(prev_done, 0.0, g)
    return scaled, g_out, mean, var, count


@pytest.mark.parametrize(("seed", "gamma", "clip"), [(0, 0.99, 10.0), (1, 0.9, 1.0), (2, 0.0, 10.0)])
def test_scale_rewards_matches_numpy_loop(seed: int, gamma: float, clip: float) -> None:
    """scale_rewards() matches an online NumPy loop: rewards, final running returns and return statistics."""
    rewards, dones, valid = _reward_batch(seed)
    assert dones.sum() >= 3 and (valid == 0).sum() >= 3
    state = NormState.create(obs_dim=2, num_envs=N)
    new_state, scaled = scale_rewards(state, jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(valid), gamma, clip)
    ref_scaled, ref_g, mean, var, count = _scale_rewards_loop(
        np.zeros(N), 0.0, 1.0, PRIOR_COUNT, rewards, dones, valid, gamma, clip
    )
    np.testing.assert_allclose(np.asarray(scaled), ref_scaled, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(new_state.discounted_return), ref_g, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(new_state.ret.mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(new_state.ret.var), var, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(new_state.ret.count), count, rtol=1e-6)
    for a, b in zip(new_state.obs, state.obs):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if clip == 1.0:
        assert np.any(np.abs(ref_scaled) == 1.0)


def test_scale_rewards_carries_state_across_calls() -> None:
    """Two consecutive calls on halves of a batch give the same result as one call on the whole batch."""
    rewards, dones, valid = _reward_batch(5)
    args = dict(gamma=0.99, clip=10.0)
    state = NormState.create(obs_dim=2, num_envs=N)
    whole_state, whole = scale_rewards(state, jnp.asarray(rewards), jnp.asarray(dones), jnp.asarray(valid), **args)
    h = T // 2
    mid_state, first = scale_rewards(state, jnp.asarray(rewards[:h]), jnp.asarray(dones[:h]), jnp.asarray(valid[:h]), **args)
    end_state, second = scale_rewards(mid_state, jnp.asarray(rewards[h:]), jnp.asarray(dones[h:]), jnp.asarray(valid[h:]), **args)
    np.testing.assert_allclose(np.concatenate([first, second]), np.asarray(whole), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(end_state.discounted_return), np.asarray(whole_state.discounted_return), rtol=1e-5)
    np.testing.assert_allclose(float(end_state.ret.var), float(whole_state.ret.var), rtol=1e-5)
