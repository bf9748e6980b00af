"""Collect a `Batch` [T, N, ...] from a policy over a `VecEnv`: the only place where training
touches environments.

The batch's sampling noise is drawn in one JAX call (`Policy.noise`); each vector step then
normalises the observations, updates their running statistics and computes the actions of all N
envs in one call of `policy_step`, written once over an array module: NumPy by default (26 us
for 8 Hopper observations through 64x64 layers on the 2-core machine, against 275-380 us per
jitted call in a training run: `bench/rollout_vs_env.py`), with the statistics merge and the
standardisation one Numba-compiled call where Numba is installed (`core.merge_kernel`); the
same function jitted over jax.numpy is the reference (`Collector(..., step="jax")`, what the tests
compare against). The log-probabilities and values of the whole batch come after, from one jitted
call (`score_batch`), so the per-step work is the actor alone.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, ContextManager, Literal

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.algos.base import Batch
from policysearch.core import merge_kernel
from policysearch.core.forward import categorical_action, dense_layers, gaussian_action, mlp
from policysearch.core.normalize import NormConfig, NormState, RunningStats, normalize, scale_rewards, update_stats
from policysearch.core.policies import Policy, PolicyParams
from policysearch.envs import VecEnv


Timer = Callable[[str], ContextManager[None]]
"""times(phase) -> a context that times one span of `phase` (`run.timing.PhaseTimes`)."""


_NO_SPAN = nullcontext()  # reusable


def _untimed(phase: str) -> ContextManager[None]:
    return _NO_SPAN


def policy_step(
    policy: Policy, params: PolicyParams, obs_stats: RunningStats, raw_obs: Any, noise: Any,
    update: bool, clip: float | None, xp: Any = np, merge: merge_kernel.Kernel | None = None,
) -> tuple[Any, Any, RunningStats]:
    """Normalise raw_obs[N, d] (merging it into the statistics first when `update`; no
    normalisation when clip is None) and act with the given noise (`Policy.noise`; zeros give the
    deterministic action). Returns (obs as the policy saw it, action, obs_stats). `merge`
    (`merge_kernel.compiled()`, over NumPy and float32 only) does the merge and normalisation in
    one compiled call: the same numbers bit for bit."""
    if clip is not None:
        if merge is not None and update:
            mean, var, count, obs = merge(obs_stats.mean, obs_stats.var, np.float32(obs_stats.count), raw_obs, np.float32(clip))
            obs_stats = RunningStats(mean, var, np.float32(count))
        else:
            if update:
                obs_stats = update_stats(obs_stats, raw_obs, None, xp)
            obs = normalize(obs_stats, raw_obs, clip, xp)
    else:
        obs = raw_obs
    out = mlp(params.actor, obs, policy.activation, xp)
    if policy.kind == "gaussian":
        return obs, gaussian_action(out, xp.exp(params.log_std), noise), obs_stats
    return obs, categorical_action(out, noise, xp), obs_stats


jax_policy_step = jax.jit(partial(policy_step, xp=jnp), static_argnames=("policy", "update", "clip"))
"""`policy_step` over jax.numpy, jitted: the reference the NumPy step is tested against."""


@partial(jax.jit, static_argnames=("policy", "clip"))
def score_batch(policy: Policy, params: PolicyParams, obs: jax.Array, actions: jax.Array, last_raw_obs: jax.Array,
                obs_stats: RunningStats, clip: float | None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """log pi(a_t | o_t) and V(o_t) for the batch's obs[T, N, d], and V(o_T) of the raw observation
    the rollout ended on, last_raw_obs[N, d], normalised with the final statistics."""
    last_obs = last_raw_obs if clip is None else normalize(obs_stats, last_raw_obs, clip)
    return policy.dist(params, obs).log_prob(actions), policy.value(params, obs), policy.value(params, last_obs)


def host_arrays(tree: Any) -> Any:
    """The pytree's arrays as NumPy arrays on the host (one transfer per batch, not per step)."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


def host_params(params: PolicyParams) -> PolicyParams:
    """The parameters on the host, the actor as its `dense_layers`: what the NumPy step reads."""
    params = host_arrays(params)
    return params._replace(actor=dense_layers(params.actor))


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
    """Steps a VecEnv with a policy, carrying the env's last observation between batches. `step`
    chooses how `policy_step` runs: "fast" (the default: NumPy, its statistics merge compiled by
    Numba where installed), "numpy" (NumPy alone) or "jax" (jitted, the reference)."""

    def __init__(self, env: VecEnv, policy: Policy, norm: NormConfig, gamma: float,
                 step: Literal["fast", "numpy", "jax"] = "fast") -> None:
        self.env, self.policy, self.norm, self.gamma, self.step = env, policy, norm, gamma, step
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
        n, clip, policy = self.env.num_envs, (self.norm.clip_obs if self.norm.obs else None), self.policy
        obs_buf = np.zeros((num_steps, n, policy.obs_dim), np.float32)
        act_buf = np.zeros((num_steps, n, policy.action_dim) if policy.kind == "gaussian" else (num_steps, n),
                           np.float32 if policy.kind == "gaussian" else np.int32)
        rew_buf, term_buf, trunc_buf, valid_buf = (np.zeros((num_steps, n), np.float32) for _ in range(4))
        with times("policy"):
            key, sub = jax.random.split(key)
            noise = policy.noise(sub, (num_steps, n))
            if self.step != "jax":
                noise, obs_stats = host_arrays((noise, norm_state.obs))
                merge = merge_kernel.compiled() if self.step == "fast" else None
                step = partial(policy_step, policy, host_params(params), update=True, clip=clip, merge=merge)
            else:
                obs_stats = norm_state.obs
                step = partial(jax_policy_step, policy, params, update=True, clip=clip)
        for t in range(num_steps):
            with times("policy"):
                obs, action, obs_stats = step(obs_stats, self.obs, noise[t])
                obs_buf[t], act_buf[t] = obs, action
            with times("env"):
                self.obs, rew_buf[t], term_buf[t], trunc_buf[t] = self.env.step(act_buf[t])
        with times("rollout other"):  # after the loop, where the env's threads no longer compete for the cores
            done = np.maximum(term_buf, trunc_buf) > 0
            valid_buf[0], valid_buf[1:] = ~self.prev_done, ~done[:-1]
            for t in range(num_steps):
                self.episodes.record(rew_buf[t], done[t], valid_buf[t] > 0)
            self.prev_done = done[-1]
        with times("to device"):
            obs_stats = RunningStats(*(jnp.asarray(x, jnp.float32) for x in obs_stats))
            obs_all, actions = jnp.asarray(obs_buf), jnp.asarray(act_buf)
            log_probs, values, last_value = score_batch(policy, params, obs_all, actions, jnp.asarray(self.obs), obs_stats, clip)
            norm_state = norm_state._replace(obs=obs_stats)
            rewards = jnp.asarray(rew_buf)
            if self.norm.reward:
                norm_state, rewards = scale_rewards(
                    norm_state, rewards, jnp.asarray(np.maximum(term_buf, trunc_buf)), jnp.asarray(valid_buf),
                    self.gamma, self.norm.clip_reward,
                )
            batch = Batch(
                obs_all, actions, log_probs, values, rewards,
                jnp.asarray(term_buf), jnp.asarray(trunc_buf), jnp.asarray(valid_buf), last_value,
            )
            if times is not _untimed:  # profiled: this phase ends when its arrays exist
                jax.block_until_ready(batch)
        return batch, norm_state, key
