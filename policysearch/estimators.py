"""Return and advantage estimators over a rollout batch laid out as [T, N].

Auto-reset convention (EnvPool and Gymnasium >= 1.0, "next-step"): the step that ends an
episode returns its final observation; the step after it ignores its action and returns the
first observation of the next episode with reward 0. Row t of a batch therefore holds
obs_t, and `values[t+1]` is V(final obs) right after an episode ended at t. That row t+1 is not
a real transition (`valid == 0`) and is masked out of every loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    last_value: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16), all arrays [T, N].

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},  done = terminated | truncated

    A truncated step bootstraps from the value of its final observation; a terminated one
    does not. Returns (advantages, returns = advantages + values).
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    not_term = 1.0 - terminated.astype(values.dtype)
    not_done = 1.0 - jnp.maximum(terminated, truncated).astype(values.dtype)
    deltas = rewards + gamma * next_values * not_term - values

    def backward(carry: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, nd = xs
        adv = delta + gamma * gae_lambda * nd * carry
        return adv, adv

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas, not_done), reverse=True)
    return advantages, advantages + values


def discounted_returns(
    rewards: jax.Array, last_value: jax.Array, terminated: jax.Array, truncated: jax.Array,
    values: jax.Array, gamma: float,
) -> jax.Array:
    """Reward-to-go G_t = r_t + gamma * G_{t+1}, cut at episode ends and bootstrapped from V at
    truncations and at the end of the batch: GAE with lambda = 1."""
    return gae(rewards, values, last_value, terminated, truncated, gamma, 1.0)[1]


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of x over entries where mask == 1."""
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def normalize_advantages(adv: jax.Array, mask: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(A - mean) / (std + eps) over the valid entries."""
    mean = masked_mean(adv, mask)
    std = jnp.sqrt(masked_mean((adv - mean) ** 2, mask))
    return (adv - mean) / (std + eps)
