"""Running observation normalisation and reward scaling as pure functions over explicit state.

Observation: o' = clip((o - mean) / sqrt(var + eps), -clip, clip), statistics updated with every
observed batch (Chan et al.'s parallel variance update).
Reward: r' = clip(r / sqrt(var(G) + eps), -clip, clip), where G_t = gamma * G_{t-1} * (1 - done_{t-1})
+ r_t is each env's running discounted return (the scaling of Engstrom et al. 2020 and SB3's
VecNormalize). The statistics are saved in checkpoints and frozen at evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from policysearch.core import forward
from policysearch.core.forward import EPS


class RunningStats(NamedTuple):
    """Mean and variance of everything seen so far, with its count."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @staticmethod
    def create(shape: tuple[int, ...]) -> "RunningStats":
        return RunningStats(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), jnp.asarray(1e-4, jnp.float32))


def update_stats(stats: RunningStats, x: jax.Array, mask: jax.Array | None = None, xp: Any = jnp) -> RunningStats:
    """Merge the rows of x[B, ...] (those with mask == 1) into the running statistics. Written over
    the array module `xp`: the rollout's NumPy step runs the same merge."""
    if mask is None:  # every row: fewer operations, for the rollout's per-step call
        n = x.shape[0]
        batch_mean = xp.sum(x, axis=0) / n
        batch_var = xp.sum((x - batch_mean) ** 2, axis=0) / n
        total = stats.count + n
        w = n / total
        delta = batch_mean - stats.mean
        m2 = stats.var * stats.count + batch_var * n + delta**2 * (stats.count * w)
        return RunningStats(stats.mean + delta * w, m2 / total, total)
    mask = mask.astype(x.dtype)
    w = mask.reshape((-1,) + (1,) * (x.ndim - 1))
    n = xp.sum(mask)
    safe_n = xp.maximum(n, 1.0)
    batch_mean = xp.sum(x * w, axis=0) / safe_n
    batch_var = xp.sum(w * (x - batch_mean) ** 2, axis=0) / safe_n
    delta = batch_mean - stats.mean
    total = stats.count + n
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + batch_var * n + delta**2 * stats.count * n / total
    return RunningStats(mean, m2 / total, total)


def normalize(stats: RunningStats, x: jax.Array, clip: float, xp: Any = jnp) -> jax.Array:
    """clip((x - mean) / sqrt(var + eps), -clip, clip) (`forward.normalize`)."""
    return forward.normalize(stats.mean, stats.var, x, clip, xp)


class NormState(NamedTuple):
    """Everything normalisation carries between steps: observation statistics, discounted-return
    statistics, and each env's running discounted return."""

    obs: RunningStats
    ret: RunningStats
    discounted_return: jax.Array

    @staticmethod
    def create(obs_dim: int, num_envs: int) -> "NormState":
        return NormState(RunningStats.create((obs_dim,)), RunningStats.create(()), jnp.zeros((num_envs,), jnp.float32))


@partial(jax.jit, static_argnames=("gamma", "clip"))
def scale_rewards(
    state: NormState, rewards: jax.Array, dones: jax.Array, valid: jax.Array, gamma: float, clip: float
) -> tuple[NormState, jax.Array]:
    """Scale rewards[T, N] step by step, as if done online; invalid (auto-reset) rows are skipped."""

    def step(carry: tuple[RunningStats, jax.Array], xs: tuple[jax.Array, jax.Array, jax.Array]):
        ret_stats, g = carry
        r, done, ok = xs
        g_new = jnp.where(ok > 0, gamma * g + r, g)
        ret_stats = update_stats(ret_stats, g_new, ok)
        scaled = jnp.clip(r / jnp.sqrt(ret_stats.var + EPS), -clip, clip)
        g_new = jnp.where(done > 0, 0.0, g_new)
        return (ret_stats, g_new), scaled

    (ret_stats, g), scaled = jax.lax.scan(
        step, (state.ret, state.discounted_return), (rewards, dones.astype(rewards.dtype), valid)
    )
    return NormState(state.obs, ret_stats, g), scaled


@dataclass(frozen=True)
class NormConfig:
    """Observation normalisation and reward scaling switches (statistics live in NormState)."""

    obs: bool = True
    reward: bool = True
    clip_obs: float = 10.0
    clip_reward: float = 10.0
