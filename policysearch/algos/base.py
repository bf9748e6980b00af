"""What every on-policy algorithm shares: the policy/rollout part of its config, and the
interface the trainer calls (`init`, `update`). Algorithms hold no files, envs or loggers."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax

from policysearch.algos.configs import OnPolicyConfig
from policysearch.core.policies import Policy, PolicyParams


class Batch(NamedTuple):
    """On-policy data, time-major. `valid[t, n] == 0` marks the auto-reset row after an episode
    end (its obs is the final observation, used only for bootstrapping)."""

    obs: jax.Array  # [T, N, obs_dim], normalised as the policy saw it
    actions: jax.Array  # [T, N, action_dim] (Gaussian, unclipped) or [T, N] (categorical)
    log_probs: jax.Array  # [T, N]
    values: jax.Array  # [T, N]
    rewards: jax.Array  # [T, N], scaled when reward normalisation is on
    terminated: jax.Array  # [T, N] float
    truncated: jax.Array  # [T, N] float
    valid: jax.Array  # [T, N] float
    last_value: jax.Array  # [N], V(obs_T)


class AlgoState(Protocol):
    """Any algorithm state: a pytree (NamedTuple) with the actor-critic parameters in `.params`."""

    params: PolicyParams


Metrics = dict[str, jax.Array]


class Algorithm(NamedTuple):
    """An on-policy algorithm as two pure functions: `init(key) -> state` and a jitted
    `update(state, batch) -> (state, metrics)`."""

    name: str
    config: OnPolicyConfig
    policy: Policy
    init: Callable[[jax.Array], Any]
    update: Callable[[Any, Any], tuple[Any, Metrics]]
