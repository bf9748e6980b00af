"""Collect a `Batch` [T, N, ...] from a policy over a `VecEnv`: the only place where training
touches environments. One jitted call per vector step normalises the observations, updates
their running statistics and samples the actions of all N envs."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, ContextManager

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.algos.base import Batch
from policysearch.core.normalize import NormConfig, NormState, RunningStats, normalize, scale_rewards, update_stats
from policysearch.core.policies import Policy, PolicyParams
from policysearch.envs import VecEnv


Timer = Callable[[str], ContextManager[None]]
"""times(phase) -> a context that times one span of `phase` (`run.timing.PhaseTimes`)."""


def _untimed(phase: str) -> ContextManager[None]:
    return nullcontext()


@partial(jax.jit, static_argnames=("policy", "update", "clip", "deterministic"))
def act(
    policy: Policy, params: PolicyParams, obs_stats: RunningStats, raw_obs: jax.Array, key: jax.Array,
    update: bool, clip: float | None, deterministic: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, RunningStats, jax.Array]:
    """Normalise raw_obs[N, d] (updating the statistics when `update`; no normalisation when
    clip is None), then act. Returns (obs, action, log_prob, value, obs_stats, key)."""
    if clip is not None:
        if update:
            obs_stats = update_stats(obs_stats, raw_obs)
        obs = normalize(obs_stats, raw_obs, clip)
    else:
        obs = raw_obs
    key, sub = jax.random.split(key)
    dist = policy.dist(params, obs)
    action = dist.mode() if deterministic else dist.sample(sub)
    return obs, action, dist.log_prob(action), policy.value(params, obs), obs_stats, key


@dataclass
class EpisodeTracker:
    """Raw (unscaled) returns and lengths of the episodes that finish, for logging."""

    num_envs: int
    returns: np.ndarray = field(init=False)
    lengths: np.ndarray = field(init=False)
    finished: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.returns = np.zeros(self.num_envs, np.float64)
        self.lengths = np.zeros(self.num_envs, np.int64)

    def record(self, rewards: np.ndarray, dones: np.ndarray, valid: np.ndarray) -> None:
        self.returns += rewards * valid
        self.lengths += valid.astype(np.int64)
        for i in np.flatnonzero(dones & valid):
            self.finished.append((float(self.returns[i]), int(self.lengths[i])))
            self.returns[i], self.lengths[i] = 0.0, 0

    def pop(self) -> list[tuple[float, int]]:
        done, self.finished = self.finished, []
        return done


class Collector:
    """Steps a VecEnv with a policy, carrying the env's last observation between batches."""

    def __init__(self, env: VecEnv, policy: Policy, norm: NormConfig, gamma: float) -> None:
        self.env, self.policy, self.norm, self.gamma = env, policy, norm, gamma
        self.obs = env.reset()
        self.prev_done = np.zeros(env.num_envs, bool)
        self.episodes = EpisodeTracker(env.num_envs)

    def collect(
        self, params: PolicyParams, norm_state: NormState, key: jax.Array, num_steps: int, times: Timer | None = None,
    ) -> tuple[Batch, NormState, jax.Array]:
        """Run num_steps vector steps; returns the batch, the updated statistics and the key.
        `times(phase)` (`run.timing.PhaseTimes`) times the phases "policy", "env", "rollout
        other" and "to device"."""
        times = times or _untimed
        n, clip = self.env.num_envs, (self.norm.clip_obs if self.norm.obs else None)
        obs_buf = np.zeros((num_steps, n, self.policy.obs_dim), np.float32)
        act_shape = (num_steps, n, self.policy.action_dim) if self.policy.kind == "gaussian" else (num_steps, n)
        act_buf = np.zeros(act_shape, np.float32 if self.policy.kind == "gaussian" else np.int32)
        logp_buf, val_buf, rew_buf = (np.zeros((num_steps, n), np.float32) for _ in range(3))
        term_buf, trunc_buf, valid_buf = (np.zeros((num_steps, n), np.float32) for _ in range(3))
        obs_stats = norm_state.obs
        for t in range(num_steps):
            with times("policy"):
                obs, action, logp, value, obs_stats, key = act(self.policy, params, obs_stats, self.obs, key, True, clip)
                obs, action, logp, value = jax.device_get((obs, action, logp, value))
            with times("env"):
                next_obs, reward, terminated, truncated = self.env.step(action)
            with times("rollout other"):
                valid = ~self.prev_done
                obs_buf[t], act_buf[t], logp_buf[t], val_buf[t] = obs, action, logp, value
                rew_buf[t], term_buf[t], trunc_buf[t], valid_buf[t] = reward, terminated, truncated, valid
                done = terminated | truncated
                self.episodes.record(reward, done, valid)
                self.prev_done = done
                self.obs = next_obs
        with times("policy"):
            _, _, _, last_value, _, _ = act(self.policy, params, obs_stats, self.obs, key, False, clip)
        with times("to device"):
            norm_state = norm_state._replace(obs=obs_stats)
            rewards = jnp.asarray(rew_buf)
            if self.norm.reward:
                norm_state, rewards = scale_rewards(
                    norm_state, rewards, jnp.asarray(np.maximum(term_buf, trunc_buf)), jnp.asarray(valid_buf),
                    self.gamma, self.norm.clip_reward,
                )
            batch = Batch(
                jnp.asarray(obs_buf), jnp.asarray(act_buf), jnp.asarray(logp_buf), jnp.asarray(val_buf), rewards,
                jnp.asarray(term_buf), jnp.asarray(trunc_buf), jnp.asarray(valid_buf), last_value,
            )
            if times is not _untimed:  # profiled: this phase ends when its arrays exist
                jax.block_until_ready(batch)
        return batch, norm_state, key
