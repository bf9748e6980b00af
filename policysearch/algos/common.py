"""Pieces the on-policy updates share: batch flattening, minibatch shuffling, critic fitting, and
the update split in two independent halves run on two threads."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any, Callable, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from policysearch.algos.base import Batch
from policysearch.core.estimators import gae, masked_mean
from policysearch.core.permutation import permutation
from policysearch.core.policies import Policy, PolicyParams

Data = TypeVar("Data")
A = TypeVar("A")
B = TypeVar("B")


def flatten_time(x: jax.Array) -> jax.Array:
    """[T, N, ...] -> [T * N, ...]."""
    return x.reshape((-1,) + x.shape[2:])


def shuffled_minibatches(key: jax.Array, data: Data, minibatch_size: int) -> Data:
    """A random permutation of the rows of every leaf of `data` (jax.random.permutation's, drawn
    without XLA:CPU's slow key-value sort: `core.permutation`), cut into [M, minibatch_size, ...]
    (the remainder of n / minibatch_size rows is left out of this epoch)."""
    n = jax.tree.leaves(data)[0].shape[0]
    m = n // minibatch_size
    perm = permutation(key, n)[: m * minibatch_size]
    return jax.tree.map(lambda x: x[perm].reshape((m, minibatch_size) + x.shape[1:]), data)


def sgd_epochs(
    loss_and_grad: Callable[[Any, Data], tuple[tuple[jax.Array, dict], Any]],
    optimizer: optax.GradientTransformation,
    params: Any, opt_state: optax.OptState, data: Data, key: jax.Array, epochs: int, minibatch_size: int,
) -> tuple[Any, optax.OptState, jax.Array, dict]:
    """`epochs` passes of minibatch gradient descent on `data` (lax.scan over both loops).
    Returns (params, opt_state, key, metrics averaged over all steps).

    Inside the loops the parameters, their gradients and the optimiser's parameter-shaped state
    (Adam's moments) are each one flat vector (`ravel_pytree`), so that the optimiser's
    element-wise arithmetic is a few kernels per step instead of a few per parameter array: on
    XLA:CPU, where a loop body with dots runs kernel by kernel, that took PPO's default update on
    Hopper from 77 to 65 ms. The same numbers to float rounding (the global norm's sum is taken in
    another order); the state keeps its layout outside. The metrics are summed in the loop's carry
    and divided once at the end, not written to a [steps] array per step and averaged: six kernels
    fewer per minibatch for PPO, whose update fell from 32.2-32.9 to 31.2 ms (2026-12-04, a probe)."""
    flat_params, unravel = ravel_pytree(params)
    is_params = partial(_shaped_like, jax.tree.structure(params), [jnp.shape(x) for x in jax.tree.leaves(params)])
    flat_state = jax.tree.map(lambda x: ravel_pytree(x)[0] if is_params(x) else x, opt_state, is_leaf=is_params)

    def epoch(carry: tuple[jax.Array, optax.OptState, jax.Array, dict], _: None):
        flat_params, flat_state, key, sums = carry
        key, k_perm = jax.random.split(key)

        def step(carry: tuple[jax.Array, optax.OptState, dict], mb: Data):
            flat_params, flat_state, sums = carry
            (loss, metrics), grads = loss_and_grad(unravel(flat_params), mb)
            updates, flat_state = optimizer.update(ravel_pytree(grads)[0], flat_state, flat_params)
            sums = jax.tree.map(jnp.add, sums, dict(metrics, loss=loss))
            return (optax.apply_updates(flat_params, updates), flat_state, sums), None

        (flat_params, flat_state, sums), _ = jax.lax.scan(step, (flat_params, flat_state, sums), shuffled_minibatches(k_perm, data, minibatch_size))
        return (flat_params, flat_state, key, sums), None

    mb0 = jax.tree.map(lambda x: x[:minibatch_size], data)
    shapes = jax.eval_shape(lambda: (lambda out: dict(out[0][1], loss=out[0][0]))(loss_and_grad(params, mb0)))
    sums = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
    (flat_params, flat_state, key, sums), _ = jax.lax.scan(epoch, (flat_params, flat_state, key, sums), None, length=epochs)
    opt_state = jax.tree.map(lambda x, f: unravel(f) if is_params(x) else f, opt_state, flat_state, is_leaf=is_params)
    steps = epochs * (jax.tree.leaves(data)[0].shape[0] // minibatch_size)
    return unravel(flat_params), opt_state, key, jax.tree.map(lambda x: x / steps, sums)


def _shaped_like(structure: Any, shapes: list[tuple[int, ...]], x: Any) -> bool:
    """Whether x is a pytree of the parameters' structure and shapes (an optimiser's moment)."""
    return jax.tree.structure(x) == structure and [jnp.shape(leaf) for leaf in jax.tree.leaves(x)] == shapes


def fit_critic(
    policy: Policy, optimizer: optax.GradientTransformation, params: PolicyParams, opt_state: optax.OptState,
    obs: jax.Array, returns: jax.Array, valid: jax.Array, key: jax.Array, epochs: int, minibatch_size: int,
) -> tuple[PolicyParams, optax.OptState, jax.Array, jax.Array]:
    """Regress V(obs) on returns (valid rows) with minibatch Adam, leaving the actor untouched.
    Returns (params, opt_state, key, mean squared error)."""

    def loss(critic: dict, mb: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, dict]:
        o, r, v = mb
        err = masked_mean((policy.value(params._replace(critic=critic), o) - r) ** 2, v)
        return err, {}

    critic, opt_state, key, metrics = sgd_epochs(
        jax.value_and_grad(loss, has_aux=True), optimizer, params.critic, opt_state, (obs, returns, valid), key, epochs, minibatch_size
    )
    return params._replace(critic=critic), opt_state, key, metrics["loss"]


def critic_step(state: Any, batch: Batch, config: Any, policy: Policy, optimizer: optax.GradientTransformation) -> tuple[dict, optax.OptState, jax.Array, jax.Array]:
    """The critic's half of an update that fits V apart from the actor (PG, TRPO): `fit_critic`
    on the batch's GAE returns from state.params, state.critic_opt_state and state.key, with the
    optimiser that state was made for and config.critic_epochs x config.critic_minibatch_size.
    It reads nothing the actor's half writes. Returns (critic parameters, optimiser state, key,
    mean squared error)."""
    fb = flatten_with_gae(batch, config.gamma, config.gae_lambda)
    params, opt_state, key, value_loss = fit_critic(
        policy, optimizer, state.params, state.critic_opt_state, fb.obs, fb.returns, fb.valid, state.key,
        config.critic_epochs, config.critic_minibatch_size,
    )
    return params.critic, opt_state, key, value_loss


def two_halves(actor: Callable[..., A], critic: Callable[..., B], join: Callable[[Any, A, B], tuple[Any, dict]]) -> tuple[Callable, Callable]:
    """An update made of two independent halves, actor(state, batch, config, policy) and
    critic(state, batch, config, policy), joined by join(state, actor's result, critic's result)
    -> (state, metrics). Returns (update, threaded):

    - `update`: the whole update as one compiled call (`jax.jit`; config and policy static);
    - `threaded`: the same update as two compiled calls, the critic's on a thread of its own while
      the actor's runs on the caller's, and the join (a few array references, outside jit).

    XLA:CPU runs the two halves of the one compiled call one after the other, though neither reads
    what the other writes, and so does it for two calls dispatched from one thread; from two
    threads it runs them at once on the cores the env workers leave idle during the update. The
    same numbers to float rounding (each half is compiled on its own; tested)."""
    static = ("config", "policy")

    def whole(state: Any, batch: Batch, config: Any, policy: Policy) -> tuple[Any, dict]:
        return join(state, actor(state, batch, config, policy), critic(state, batch, config, policy))

    actor_jit, critic_jit = jax.jit(actor, static_argnames=static), jax.jit(critic, static_argnames=static)

    def threaded(state: Any, batch: Batch, config: Any, policy: Policy) -> tuple[Any, dict]:
        actor_out, critic_out = concurrently(lambda: actor_jit(state, batch, config=config, policy=policy),
                                             lambda: critic_jit(state, batch, config=config, policy=policy))
        return jax.tree.map(lambda x: x, join(state, actor_out, critic_out))  # dicts in key order, as jit returns them

    whole.__name__ = whole.__qualname__ = f"{actor.__name__}_and_{critic.__name__}"
    return jax.jit(whole, static_argnames=static), threaded


def concurrently(f: Callable[[], A], g: Callable[[], B]) -> tuple[A, B]:
    """(f(), g()), g on a new thread while f runs on this one, both results computed (JAX's
    dispatch is asynchronous: each thread blocks until its arrays are ready). An exception in
    either is raised here; a thread per call (about 0.1 ms), so nothing outlives it or a fork."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, jax.block_until_ready(g())))
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            box.append((False, e))

    thread = threading.Thread(target=run, name="policysearch-critic", daemon=True)
    thread.start()
    try:
        a = jax.block_until_ready(f())
    finally:
        thread.join()
    ok, b = box[0]
    if not ok:
        raise b
    return a, b


def explained_variance(returns: jax.Array, values: jax.Array, valid: jax.Array) -> jax.Array:
    """1 - Var[returns - values] / Var[returns] over valid rows."""
    resid = masked_mean((returns - values) ** 2, valid)
    total = masked_mean((returns - masked_mean(returns, valid)) ** 2, valid)
    return 1.0 - resid / (total + 1e-8)


class FlatBatch(NamedTuple):
    """A rollout batch flattened over [T * N] with its advantage estimates."""

    obs: jax.Array
    actions: jax.Array
    old_log_probs: jax.Array
    advantages: jax.Array
    returns: jax.Array
    values: jax.Array
    valid: jax.Array


def flatten_with_gae(batch: Batch, gamma: float, gae_lambda: float) -> FlatBatch:
    """GAE(gamma, lambda) advantages and returns of a [T, N] batch, everything flattened."""
    advantages, returns = gae(batch.rewards, batch.values, batch.last_value, batch.terminated, batch.truncated, gamma, gae_lambda)
    return FlatBatch(*(flatten_time(x) for x in (batch.obs, batch.actions, batch.log_probs, advantages, returns, batch.values, batch.valid)))
