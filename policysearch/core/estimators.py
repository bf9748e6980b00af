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


# Importance sampling (the lecture's "Importance Sampling" and "Learning using off-policy
# samples"). Everything is in log space: per-step log-probs are summed over prefixes, so weights
# of long trajectories would overflow or underflow as plain numbers.


def log_importance_weights(log_p: jax.Array, log_q: jax.Array) -> jax.Array:
    """log w_i = log p(x_i) - log q(x_i)."""
    return log_p - log_q


def is_estimate(log_w: jax.Array, f: jax.Array) -> jax.Array:
    """Plain (unbiased) estimate (1/m) sum_i w_i f(x_i), over axis 0; shifted by max log w
    before exponentiating so it is exact whenever the result itself is representable."""
    shift = jax.lax.stop_gradient(jnp.max(log_w, axis=0))
    s = jnp.mean(jnp.exp(log_w - shift) * f, axis=0)
    # exp(shift) alone may overflow (or underflow to 0) where the product is representable:
    # combine the two in log space, and keep an exact 0 as 0 (never inf * 0 = nan).
    safe = jnp.where(s != 0, jnp.abs(s), 1.0)
    return jnp.where(s != 0, jnp.sign(s) * jnp.exp(shift + jnp.log(safe)), 0.0)


def self_normalized_weights(log_w: jax.Array) -> jax.Array:
    """w_i / Z with Z = sum_i w_i, over axis 0 (a softmax: finite for any finite log w)."""
    return jax.nn.softmax(log_w, axis=0)


def self_normalized_estimate(log_w: jax.Array, f: jax.Array) -> jax.Array:
    """(1/Z) sum_i w_i f(x_i): biased but consistent, and bounded by the range of f."""
    return jnp.sum(self_normalized_weights(log_w) * f, axis=0)


def effective_sample_size(log_w: jax.Array) -> jax.Array:
    """ESS = (sum w)^2 / sum w^2, over axis 0 (m for equal weights, 1 for one dominant weight)."""
    return jnp.exp(2.0 * jax.nn.logsumexp(log_w, axis=0) - jax.nn.logsumexp(2.0 * log_w, axis=0))


def prefix_log_probs(step_log_probs: jax.Array) -> jax.Array:
    """log pi(tau_{1:t}) = sum_{k<=t} log pi(u_k|x_k) for step_log_probs[m, T] (dynamics cancel
    in every ratio, so only action probabilities enter)."""
    return jnp.cumsum(step_log_probs, axis=-1)


def mixture_prefix_log_probs(component_step_log_probs: jax.Array, counts: jax.Array) -> jax.Array:
    """log q(tau_{1:t}) for the mixture q = sum_j (m_j / m) q_j over whole trajectories:

        log q(tau_{1:t}) = logsumexp_j [ log(m_j / m) + sum_{k<=t} log q_j(u_k|x_k) ]

    component_step_log_probs[J, m, T] are each sample's per-step log-probs under every
    component j; counts[J] are the samples drawn from each. A mixture of prefix products, not a
    product of per-step mixtures. Returns [m, T].
    """
    log_mix = jnp.log(counts / jnp.sum(counts))
    return jax.nn.logsumexp(prefix_log_probs(component_step_log_probs) + log_mix[:, None, None], axis=0)


def per_prefix_estimate(log_p_prefix: jax.Array, log_q_prefix: jax.Array, rewards: jax.Array, self_normalized: bool = True) -> jax.Array:
    """sum_t (1/Z_t) sum_i [pi(tau_{i,1:t}) / q(tau_{i,1:t})] r_t^i, arrays [m, T] (by causality,
    the reward at t is weighted by its prefix only). With self_normalized=False, 1/Z_t = 1/m."""
    log_w = log_p_prefix - log_q_prefix
    per_step = self_normalized_estimate(log_w, rewards) if self_normalized else is_estimate(log_w, rewards)
    return jnp.sum(per_step)
