"""Proximal Policy Optimization (Schulman et al. 2017).

Clipped surrogate (eq. 7):  L^CLIP = E_t[ min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t) ],
r_t = pi_theta(a_t|s_t) / pi_theta_old(a_t|s_t); or the adaptive KL penalty (section 4):
L^KLPEN = E_t[ r_t A_t - beta KL(pi_old(.|s_t) || pi_theta(.|s_t)) ], with beta halved when the
mean KL after an update is below kl_target / 1.5 and doubled when above 1.5 kl_target.
Total loss (eq. 9): -L + vf_coef (V(s_t) - V_t^targ)^2 - ent_coef H[pi_theta(.|s_t)].
One call of `update` runs every epoch and minibatch, jitted.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from policysearch.algos.base import Algorithm, Batch, Metrics
from policysearch.algos.configs import PPOConfig
from policysearch.algos.common import explained_variance, flatten_with_gae, sgd_epochs
from policysearch.core.estimators import masked_mean, normalize_advantages
from policysearch.core.policies import Policy, PolicyParams


class PPOState(NamedTuple):
    params: PolicyParams
    opt_state: optax.OptState
    beta: jax.Array
    key: jax.Array


def clipped_surrogate(log_ratio: jax.Array, advantages: jax.Array, clip_coef: float) -> jax.Array:
    """Per-sample L^CLIP = min(r A, clip(r, 1 - eps, 1 + eps) A), r = exp(log_ratio)."""
    ratio = jnp.exp(log_ratio)
    return jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages)


class _Minibatch(NamedTuple):
    obs: jax.Array
    actions: jax.Array
    old_log_probs: jax.Array
    old_dist: tuple
    advantages: jax.Array
    returns: jax.Array
    valid: jax.Array


def _optimizer(config: PPOConfig, num_updates: int | jax.Array) -> optax.GradientTransformation:
    """Adam after global-norm clipping; with anneal_lr its step size falls linearly from
    learning_rate to 0 over num_updates updates' gradient steps. num_updates may be traced, so
    one compiled update serves every run length (optax.linear_schedule needs a Python int)."""
    if not config.anneal_lr:
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate, eps=1e-5))
    total = jnp.maximum(num_updates, 1) * config.epochs * (config.steps_per_update // config.minibatch_size)

    def lr(count: jax.Array) -> jax.Array:
        return config.learning_rate * (1.0 - jnp.clip(count, 0, total) / total)

    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))


def make_ppo(config: PPOConfig, policy: Policy, num_updates: int) -> Algorithm:
    """Build PPO for `policy`; `num_updates` sets the learning-rate annealing horizon."""

    def init(key: jax.Array) -> PPOState:
        k_params, k_state = jax.random.split(key)
        params = policy.init(k_params)
        return PPOState(params, _optimizer(config, num_updates).init(params), jnp.asarray(config.kl_beta, jnp.float32), k_state)

    return Algorithm("ppo", config, policy, init, partial(ppo_update, config=config, policy=policy, num_updates=num_updates))


def ppo_loss(params: PolicyParams, mb: _Minibatch, beta: jax.Array, config: PPOConfig, policy: Policy) -> tuple[jax.Array, Metrics]:
    """-L (clipped or KL-penalised) + vf_coef * 0.5 (V - V_targ)^2 - ent_coef * H on one minibatch."""
    dist = policy.dist(params, mb.obs)
    log_ratio = dist.log_prob(mb.actions) - mb.old_log_probs
    adv = normalize_advantages(mb.advantages, mb.valid)
    kl = type(dist)(*mb.old_dist).kl(dist)
    if config.loss == "clip":
        surrogate = clipped_surrogate(log_ratio, adv, config.clip_coef)
    else:
        surrogate = jnp.exp(log_ratio) * adv - beta * kl
    policy_obj = masked_mean(surrogate, mb.valid)
    value_loss = 0.5 * masked_mean((policy.value(params, mb.obs) - mb.returns) ** 2, mb.valid)
    entropy = masked_mean(dist.entropy(), mb.valid)
    loss = -policy_obj + config.vf_coef * value_loss - config.ent_coef * entropy
    clip_frac = masked_mean((jnp.abs(jnp.exp(log_ratio) - 1.0) > config.clip_coef).astype(jnp.float32), mb.valid)
    return loss, {
        "policy_objective": policy_obj,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": masked_mean(kl, mb.valid),
        "clip_fraction": clip_frac,
    }


@partial(jax.jit, static_argnames=("config", "policy"))
def ppo_update(state: PPOState, batch: Batch, config: PPOConfig, policy: Policy, num_updates: int | jax.Array) -> tuple[PPOState, Metrics]:
    """All epochs and minibatches of one PPO update (compiled once per config and policy;
    num_updates, the annealing horizon, is an ordinary argument)."""
    optimizer = _optimizer(config, num_updates)
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)
    fb = flatten_with_gae(batch, config.gamma, config.gae_lambda)
    old_dist = policy.dist(state.params, fb.obs)
    data = _Minibatch(fb.obs, fb.actions, fb.old_log_probs, tuple(old_dist), fb.advantages, fb.returns, fb.valid)
    params, opt_state, key, metrics = sgd_epochs(
        lambda p, mb: grad_fn(p, mb, state.beta, config, policy), optimizer, state.params, state.opt_state, data, state.key,
        config.epochs, config.minibatch_size,
    )
    kl_after = masked_mean(old_dist.kl(policy.dist(params, data.obs)), data.valid)
    beta = state.beta
    if config.loss == "kl_penalty":
        beta = jnp.where(kl_after < config.kl_target / 1.5, beta / 2.0, jnp.where(kl_after > config.kl_target * 1.5, beta * 2.0, beta))
    metrics.update(kl=kl_after, kl_beta=beta, explained_variance=explained_variance(fb.returns, fb.values, fb.valid))
    return PPOState(params, opt_state, beta, key), metrics
