"""The minibatch loop's flat-vector form (`common.sgd_epochs`) against the loop over parameter
pytrees it replaced: every algorithm's whole update, same batch and state, gives the same
parameters, optimiser state and metrics to float32 rounding. And PG's and TRPO's update as two
compiled halves on two threads (`common.two_halves`, what training runs) against the one compiled
call."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import policysearch.algos.common as common
from policysearch.algos import ALGORITHMS
from policysearch.algos.base import Batch
from policysearch.core.policies import Policy


def pytree_sgd_epochs(loss_and_grad, optimizer, params, opt_state, data, key, epochs: int, minibatch_size: int):
    """The loop as it was: the optimiser over the parameter pytree, leaf by leaf."""

    def epoch(carry, _):
        params, opt_state, key = carry
        key, k_perm = jax.random.split(key)

        def step(carry, mb):
            params, opt_state = carry
            (loss, metrics), grads = loss_and_grad(params, mb)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), dict(metrics, loss=loss)

        (params, opt_state), metrics = jax.lax.scan(step, (params, opt_state), common.shuffled_minibatches(k_perm, data, minibatch_size))
        return (params, opt_state, key), metrics

    (params, opt_state, key), metrics = jax.lax.scan(epoch, (params, opt_state, key), None, length=epochs)
    return params, opt_state, key, jax.tree.map(jnp.mean, metrics)


def _batch(kind: str, T: int = 64, N: int = 4, d: int = 5, a: int = 3) -> Batch:
    rng = np.random.default_rng(0)
    f32 = lambda *shape: jnp.asarray(rng.normal(size=shape).astype(np.float32))  # noqa: E731
    actions = f32(T, N, a) if kind == "gaussian" else jnp.asarray(rng.integers(0, a, (T, N)).astype(np.int32))
    done = jnp.asarray((rng.random((T, N)) < 0.05).astype(np.float32))
    return Batch(f32(T, N, d), actions, f32(T, N) - 2.0, f32(T, N), f32(T, N), done, jnp.zeros((T, N)), jnp.ones((T, N)), f32(N))


def _update(algo_name: str, kind: str, loop: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    module = __import__(f"policysearch.algos.{algo_name}", fromlist=["_"])
    monkeypatch.setattr(common, "sgd_epochs", loop)
    if hasattr(module, "sgd_epochs"):
        monkeypatch.setattr(module, "sgd_epochs", loop)
    entry = ALGORITHMS[algo_name]
    sizes = {"minibatch_size": 32, "epochs": 3} if algo_name == "ppo" else {"critic_minibatch_size": 32, "critic_epochs": 3}
    config = entry.config(steps_per_update=256, **sizes)
    algo = entry.make(config, Policy(5, 3, kind), 10)
    state = algo.init(jax.random.key(0))
    update = getattr(module, f"{algo_name}_update").__wrapped__
    extra = {"num_updates": 10} if algo_name == "ppo" else {}
    # a new function for jit to trace, so that each loop is compiled in
    return jax.jit(lambda s, b: update(s, b, config=config, policy=algo.policy, **extra))(state, _batch(kind))


@pytest.mark.parametrize(("algo_name", "kind"), [("ppo", "gaussian"), ("trpo", "gaussian"), ("pg", "categorical")])
def test_flat_minibatch_loop_gives_the_pytree_loops_update(algo_name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    flat = _update(algo_name, kind, common.sgd_epochs, monkeypatch)
    ref = _update(algo_name, kind, pytree_sgd_epochs, monkeypatch)
    _assert_close(flat, ref)


def _numbers(x: Any) -> np.ndarray:
    """A leaf as a NumPy array (a PRNG key as its key data)."""
    return np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)


def _assert_close(got: Any, ref: Any) -> None:
    """Same structure (the metrics' names in the same order, as a compiled call returns them),
    every leaf equal to float32 rounding, and some float array among them that is not a scalar
    (the parameters were compared)."""
    assert jax.tree.structure(got) == jax.tree.structure(ref)
    assert list(got[1]) == list(ref[1])
    moved = False
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(ref)):
        x, y = _numbers(x), _numbers(y)
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
        moved = moved or x.dtype.kind == "f" and x.size > 1
    assert moved


@pytest.mark.parametrize(("algo_name", "kind"), [("trpo", "gaussian"), ("pg", "categorical"), ("pg", "gaussian")])
def test_update_on_two_threads_is_the_one_call_update(algo_name: str, kind: str) -> None:
    """The update as two compiled halves (the actor's here, the critic's on a thread of its own;
    what TRPO's training runs) gives the one compiled call's state and metrics, in the same order."""
    module = __import__(f"policysearch.algos.{algo_name}", fromlist=["_"])
    entry = ALGORITHMS[algo_name]
    config = entry.config(steps_per_update=256, critic_minibatch_size=32, critic_epochs=3)
    algo = entry.make(config, Policy(5, 3, kind), 10)
    state, batch = algo.init(jax.random.key(0)), _batch(kind)
    update = partial(getattr(module, f"{algo_name}_update_threaded"), config=config, policy=algo.policy)
    threaded = update(state, batch)
    _assert_close(threaded, getattr(module, f"{algo_name}_update")(state, batch, config=config, policy=algo.policy))
    again = update(state, batch)  # and the same numbers every time
    for x, y in zip(jax.tree.leaves(threaded), jax.tree.leaves(again)):
        np.testing.assert_array_equal(_numbers(x), _numbers(y))


def test_concurrently_returns_both_and_raises_either() -> None:
    assert common.concurrently(lambda: jnp.ones(2) * 2, lambda: "g") == (pytest.approx([2.0, 2.0]), "g")

    def boom() -> None:
        raise ValueError("critic")

    with pytest.raises(ValueError, match="critic"):
        common.concurrently(lambda: 1, boom)
    with pytest.raises(ZeroDivisionError):
        common.concurrently(lambda: 1 / 0, lambda: 2)


def test_trpo_trains_on_two_threads() -> None:
    """TRPO's `Algorithm.update` is the two-thread form; PG's is the one call (see `pg.pg_update`)."""
    from policysearch.algos import pg, trpo

    assert ALGORITHMS["trpo"].make(ALGORITHMS["trpo"].config(), Policy(5, 3, "gaussian"), 1).update.func is trpo.trpo_update_threaded
    assert ALGORITHMS["pg"].make(ALGORITHMS["pg"].config(), Policy(5, 3, "gaussian"), 1).update.func is pg.pg_update
