"""The importance-sampled objective of Guided Policy Search (Levine and Koltun 2013, sec. 3):

    Phi(theta) = sum_t [ (1/Z_t) sum_i w_{i,t} r_t^i + w_r log Z_t ],
    w_{i,t} = pi_theta(zeta_{i,1:t}) / q(zeta_{i,1:t}),   Z_t = sum_i w_{i,t},

in log space: log w_{i,t} = sum_{k<=t} log pi_theta(u_k^i | x_k^i) - log q(zeta_{i,1:t}), with q the
mixture over every distribution that produced samples in the set (guiding controllers and
earlier policies), a mixture of prefix products (`estimators.mixture_prefix_log_probs`).

Several training conditions (initial states, terrains) are strata: the policy does not choose
its condition, so each condition c has its own sample set, proposal and normaliser Z_{c,t}, and
the objective is the mean over conditions, Phi = (1/C) sum_c Phi_c. One normaliser over all
conditions would let the optimiser move weight onto the samples of the easiest condition, an
estimate that improves while the policy gets worse (measured on the 2-link arm: estimated
cost 27 against a true 466). Sets are padded to a fixed size with a mask so that one compiled
optimiser serves every iteration.

With w_r = 0, Phi is the per-step self-normalised importance-sampled return, the estimate that
lines 10-11 of Algorithm 1 compare policies with. The gradient is by autodiff; the closed form
grad Phi_c = sum_t (1/Z_t) sum_i w_{i,t} grad log pi_theta(zeta_{i,1:t}) (r_t^i - J_t + w_r) is a test.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from policysearch.core.estimators import prefix_log_probs, self_normalized_weights
from policysearch.core.policies import Policy, PolicyParams


class SampleSet(NamedTuple):
    """Trajectories zeta_i = (x_{1:T}, u_{1:T}) per condition, with rewards and log q of every prefix."""

    states: jax.Array  # [C, m, T, n]
    actions: jax.Array  # [C, m, T, k]
    rewards: jax.Array  # [C, m, T]
    log_q: jax.Array  # [C, m, T], log q_c(zeta_{i,1:t})
    mask: jax.Array  # [C, m], 1 for a real sample, 0 for padding


def policy_step_log_probs(policy: Policy, params: PolicyParams, states: jax.Array, actions: jax.Array) -> jax.Array:
    """log pi_theta(u_t | x_t) for states[..., T, n], actions[..., T, k]: [..., T]."""
    return policy.dist(params, states).log_prob(actions)


def log_weights(policy: Policy, params: PolicyParams, samples: SampleSet) -> jax.Array:
    """log w_{c,i,t} = log pi_theta(zeta_{c,i,1:t}) - log q_c(zeta_{c,i,1:t}), [C, m, T]; -inf on padding."""
    log_w = prefix_log_probs(policy_step_log_probs(policy, params, samples.states, samples.actions)) - samples.log_q
    return jnp.where(samples.mask[..., None] > 0, log_w, -jnp.inf)


def phi(params: PolicyParams, policy: Policy, samples: SampleSet, w_r: jax.Array) -> jax.Array:
    """Phi(theta) above, averaged over conditions (to be maximised)."""
    log_w = log_weights(policy, params, samples)  # [C, m, T]
    rewards = jnp.where(samples.mask[..., None] > 0, samples.rewards, 0.0)
    per_step = jnp.sum(self_normalized_weights(jnp.swapaxes(log_w, 0, 1)) * jnp.swapaxes(rewards, 0, 1), axis=0)  # J_{c,t}
    log_z = jax.nn.logsumexp(log_w, axis=1)  # [C, T]
    return jnp.mean(jnp.sum(per_step + w_r * log_z, axis=-1))


def estimated_return(params: PolicyParams, policy: Policy, samples: SampleSet) -> jax.Array:
    """The unregularised estimate: Phi(theta) at w_r = 0."""
    return phi(params, policy, samples, jnp.asarray(0.0))


def log_likelihood(params: PolicyParams, policy: Policy, samples: SampleSet) -> jax.Array:
    """Mean log pi_theta(u_t | x_t) over the real samples (line 3's maximum-likelihood init)."""
    lp = jnp.sum(policy_step_log_probs(policy, params, samples.states, samples.actions), axis=-1)
    return jnp.sum(lp * samples.mask) / (jnp.sum(samples.mask) * samples.actions.shape[-2])


def accept_or_reject(
    w_r: jax.Array, value_new: jax.Array, value_best: jax.Array, factor: float, w_min: float, w_max: float
) -> tuple[jax.Array, jax.Array]:
    """Lines 11-16 of Algorithm 1: accept theta_k when its estimated value beats theta*'s, then
    decrease w_r (divide by factor); otherwise increase it (multiply). w_r stays in [w_min, w_max].
    Returns (accepted, new w_r)."""
    accepted = value_new > value_best
    w_r = jnp.where(accepted, w_r / factor, w_r * factor)
    return accepted, jnp.clip(w_r, w_min, w_max)
