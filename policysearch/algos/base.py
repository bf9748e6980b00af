"""What every on-policy algorithm shares: the policy/rollout part of its config, and the
interface the trainer calls (`init`, `update`). Algorithms hold no files, envs or loggers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

import jax

from policysearch.core.policies import Activation, Policy, PolicyParams
from policysearch.errors import flag, require, require_finite_fields, require_fraction, require_positive


@dataclass(frozen=True)
class OnPolicyConfig:
    """Shared fields: network shape, rollout size and return estimation."""

    steps_per_update: int = 2048
    """Environment steps collected (over all envs) before each update."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda (1 = Monte Carlo reward-to-go, 0 = one-step TD)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value MLPs."""
    activation: Activation = "tanh"
    """Hidden activation."""
    log_std_init: float = 0.0
    """Initial log standard deviation of Gaussian policies."""

    def __post_init__(self) -> None:
        require_positive("steps_per_update", self.steps_per_update)
        require_fraction("gamma", self.gamma)
        require_fraction("gae_lambda", self.gae_lambda)
        require(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), f"--hidden needs positive widths, got {self.hidden}")
        require_finite_fields(self)

    @property
    def kl_reference(self) -> float | None:
        """The KL per update the algorithm aims at or bounds (None: it has none); the trainer
        warns when an update moves the policy far beyond it."""
        return None

    def require_minibatch(self, name: str) -> None:
        """A minibatch-size field must not exceed --steps-per-update: a batch smaller than one
        minibatch gives no gradient step at all."""
        size = getattr(self, name)
        require(size <= self.steps_per_update, f"{flag(name)} ({size}) must not exceed --steps-per-update ({self.steps_per_update})")


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
