"""Policy gradient with a baseline (the lecture's "Policy Gradient"; Williams 1992):

    grad J(theta) = E[ sum_k grad log pi_theta(u_k|x_k) psi_k ]

with psi chosen by `estimator`:
  "trajectory":   psi_k = r(tau) - b, the whole (discounted) return of the trajectory that step k
                  belongs to, minus a constant baseline b (the batch mean): the lecture's form;
  "reward_to_go": psi_k = sum_{j>=k} gamma^{j-k} r_j - b (causality: past rewards do not depend
                  on later actions);
  "gae":          psi_k = GAE(gamma, lambda) advantage, a learned value baseline.
A trajectory cut by a time limit or the end of the batch is completed by the value estimate of
its last state. One gradient step (Adam) on the policy per batch; V is fitted separately.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from policysearch.algos.base import Algorithm, Batch, Metrics
from policysearch.algos.configs import PGConfig
from policysearch.algos.common import critic_step, explained_variance, flatten_time, flatten_with_gae, two_halves
from policysearch.core.estimators import discounted_returns, masked_mean
from policysearch.core.policies import Policy, PolicyParams



class PGState(NamedTuple):
    params: PolicyParams
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    key: jax.Array


def trajectory_returns(returns_to_go: jax.Array, valid: jax.Array, terminated: jax.Array, truncated: jax.Array) -> jax.Array:
    """For every row [T, N], the return-to-go at the first row of its trajectory segment: r(tau)."""
    done_before = jnp.concatenate([jnp.ones_like(valid[:1]), jnp.maximum(terminated, truncated)[:-1]], axis=0)
    starts = (done_before > 0) | (jnp.concatenate([jnp.ones_like(valid[:1]), valid[:-1]], axis=0) == 0)

    def forward(carry: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        g, is_start = xs
        carry = jnp.where(is_start, g, carry)
        return carry, carry

    return jax.lax.scan(forward, returns_to_go[0], (returns_to_go, starts))[1]


def policy_gradient_surrogate(log_probs: jax.Array, psi: jax.Array, valid: jax.Array) -> jax.Array:
    """E[log pi(u|x) psi] with psi held constant: its gradient is the policy-gradient estimate."""
    return masked_mean(log_probs * jax.lax.stop_gradient(psi), valid)


def _optimizers(config: PGConfig) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    actor = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate))
    return actor, optax.adam(config.critic_learning_rate)


def make_pg(config: PGConfig, policy: Policy, num_updates: int) -> Algorithm:
    """Build the policy-gradient algorithm for `policy` (no schedule: num_updates unused)."""
    actor_opt, critic_opt = _optimizers(config)

    def init(key: jax.Array) -> PGState:
        k_params, k_state = jax.random.split(key)
        params = policy.init(k_params)
        return PGState(params, actor_opt.init((params.actor, params.log_std)), critic_opt.init(params.critic), k_state)

    return Algorithm("pg", config, policy, init, partial(pg_update, config=config, policy=policy))


def psi_of(batch: Batch, config: PGConfig) -> jax.Array:
    """psi_k of every flattened row for the configured estimator (before scaling)."""
    if config.estimator == "gae":
        return flatten_with_gae(batch, config.gamma, config.gae_lambda).advantages
    g = discounted_returns(batch.rewards, batch.last_value, batch.terminated, batch.truncated, batch.values, config.gamma)
    if config.estimator == "trajectory":
        g = trajectory_returns(g, batch.valid, batch.terminated, batch.truncated)
    g = flatten_time(g)
    return g - masked_mean(g, flatten_time(batch.valid)) if config.baseline else g


def pg_policy_step(state: PGState, batch: Batch, config: PGConfig, policy: Policy) -> tuple[tuple[dict, jax.Array], optax.OptState, Metrics]:
    """The actor's half of the update: one Adam step on the policy-gradient surrogate. Returns
    ((actor, log_std), the actor's optimiser state, metrics)."""
    actor_opt, _ = _optimizers(config)
    fb = flatten_with_gae(batch, config.gamma, config.gae_lambda)
    psi = psi_of(batch, config)
    psi_std = jnp.sqrt(masked_mean((psi - masked_mean(psi, fb.valid)) ** 2, fb.valid))
    if config.normalize_advantage:
        psi = psi / (psi_std + 1e-8)  # scale only: centring is the baseline's job
    params = state.params

    def objective(actor_and_std: tuple[dict, jax.Array]) -> jax.Array:
        actor, log_std = actor_and_std
        dist = policy.dist(params._replace(actor=actor, log_std=log_std), fb.obs)
        return -policy_gradient_surrogate(dist.log_prob(fb.actions), psi, fb.valid)

    loss, grads = jax.value_and_grad(objective)((params.actor, params.log_std))
    updates, actor_opt_state = actor_opt.update(grads, state.actor_opt_state, (params.actor, params.log_std))
    metrics = {
        "policy_loss": loss,
        "psi_std": psi_std,
        "entropy": masked_mean(policy.dist(params, fb.obs).entropy(), fb.valid),
        "explained_variance": explained_variance(fb.returns, fb.values, fb.valid),
    }
    return optax.apply_updates((params.actor, params.log_std), updates), actor_opt_state, metrics


def pg_critic_step(state: PGState, batch: Batch, config: PGConfig, policy: Policy) -> tuple[dict, optax.OptState, jax.Array, jax.Array]:
    """The critic's half: V fitted by Adam (`critic_step`)."""
    return critic_step(state, batch, config, policy, _optimizers(config)[1])


def _join(state: PGState, actor_half: tuple, critic_half: tuple) -> tuple[PGState, Metrics]:
    (actor, log_std), actor_opt_state, m = actor_half
    critic, critic_opt_state, key, value_loss = critic_half
    params = state.params._replace(actor=actor, log_std=log_std, critic=critic)
    return PGState(params, actor_opt_state, critic_opt_state, key), dict(m, value_loss=value_loss)


pg_update, pg_update_threaded = two_halves(pg_policy_step, pg_critic_step, _join)
"""pg_update(state, batch, config, policy) -> (state, metrics): one policy-gradient step and the
critic fit, as one compiled call, which is what training runs; pg_update_threaded the same as two
at once on two threads (`two_halves`). The halves are uneven (Hopper's defaults, 2026-12-04: the
actor's 1.4 ms, the critic's 6.8), so two threads save 0.5 ms of 7.4 alone and lost 0.4-0.8 ms
per update in training runs (`bench/profile_onpolicy.py`, two runs), where TRPO's even halves
(15.8 and 13.3 ms) save 6 ms there. Measured again after the shuffle's faster permutation
(`core.permutation`, which shortened the critic's half): two threads 6.4 ms against 7.0-7.1
alone, and in training 8.0 and 8.4 ms per update against 7.6 and 7.8 for the one call."""
