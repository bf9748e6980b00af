"""iLQR on a MuJoCo model: the solver loop of `ilqr.solve_model`, with the dynamics reached
through host callbacks (`jax.pure_callback`) because they are MuJoCo's. The Jacobians are finite
differences of the env step in one parallel batch (`MujocoModel.linearize`), computed only when
the nominal trajectory changes; the line search runs the closed-loop forward pass for all step
sizes at once, one batched env step per time step.

The jitted solve is built once per (cost structure, settings) and reused across calls and across
models of one robot: which model the callbacks step is a traced handle (`_register`), and a cost
that is a method of a pytree (`LocomotionCost`, whose leaves are a terrain's ground profile) has
its leaves passed as arguments (`_CostFn`). The terrains of policysearch/Walker2dTerrain-v0, each
its own MuJoCo model and ground-aware cost, thus share one compile (~12 s, once paid per terrain)."""

from __future__ import annotations

import itertools
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from policysearch.control.ilqr import ILQRConfig, Solution, Valid, line_search_alphas, solve_model, valid_prefix
from policysearch.control.receding import RecedingConfig, receding_horizon_controls
from policysearch.envs.mujoco_model import MujocoModel

_models: weakref.WeakValueDictionary[int, MujocoModel] = weakref.WeakValueDictionary()
_handles: weakref.WeakKeyDictionary[MujocoModel, int] = weakref.WeakKeyDictionary()
_next_handle = itertools.count()


def _register(model: MujocoModel) -> int:
    """The model's handle: the int the host callbacks look it up by (held weakly; a model lives as
    long as its caller keeps it, and stays registered while a solve on it runs)."""
    if model not in _handles:
        handle = next(_next_handle)
        _handles[model], _models[handle] = handle, model
    return _handles[model]


def _host(fn: Callable[..., tuple[np.ndarray, ...]], shapes: tuple[tuple[int, ...], ...], handle: jax.Array,
          *args: jax.Array) -> tuple[jax.Array, ...]:
    """fn(model, *float64 arrays) -> float64 arrays, run on the host from traced code, with model
    the one registered under handle (an int32 scalar, traced or not). The arrays cross as uint32
    words (a bit cast, exact): a host callback runs on XLA's thread, where the caller's
    `jax.enable_x64` context does not hold, and JAX would otherwise round them to float32."""
    words = tuple(jax.ShapeDtypeStruct((*shape, 2), jnp.uint32) for shape in shapes)

    def call(h: np.ndarray, *ws: np.ndarray) -> tuple[np.ndarray, ...]:
        out = fn(_models[int(h)], *(np.ascontiguousarray(w).view(np.float64)[..., 0] for w in ws))
        return tuple(np.ascontiguousarray(o, np.float64)[..., None].view(np.uint32) for o in out)

    out = jax.pure_callback(call, words, jnp.asarray(handle, jnp.int32),
                            *(jax.lax.bitcast_convert_type(jnp.asarray(a, jnp.float64), jnp.uint32) for a in args))
    return tuple(jax.lax.bitcast_convert_type(o, jnp.float64) for o in out)


def _closed_loop(model: MujocoModel, x_bar: np.ndarray, u_bar: np.ndarray, k: np.ndarray, K: np.ndarray, alphas: np.ndarray,
                 lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forward pass of every step size at once, one batched model step per time step."""
    xs = np.repeat(x_bar[:1], len(alphas), axis=0)
    traj_x, traj_u = [xs], []
    for t in range(len(u_bar)):
        ut = np.clip(u_bar[t] + alphas[:, None] * k[t] + (xs - x_bar[t]) @ K[t].T, lo, hi)
        xs = model.step_batch(xs, ut)
        traj_x.append(xs)
        traj_u.append(ut)
    return np.stack(traj_x, axis=1), np.stack(traj_u, axis=1)


@dataclass(frozen=True)
class MujocoDynamics:
    """A MuJoCo model as the solver loop's `Model` (float64). The model stays on the host: `handle`
    (`_register`; traced inside the compiled solve) selects it in every callback, so the compiled
    solve depends only on the state size and these settings, not on which model it steps."""

    handle: jax.Array | int
    state_dim: int
    fd_eps: float = 1e-3
    step_sizes_per_pass: int = 11

    def rollout(self, x0: jax.Array, u: jax.Array) -> jax.Array:
        T, n = u.shape[0], self.state_dim
        return _host(lambda model, x0, u: (model.rollout(x0, u),), ((T + 1, n),), self.handle, x0, u)[0]

    def closed_loop(self, x_bar: jax.Array, u_bar: jax.Array, k: jax.Array, K: jax.Array, alphas: jax.Array,
                    u_low: jax.Array | None, u_high: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        (T, m), n, A = u_bar.shape, self.state_dim, alphas.shape[0]
        lo = jnp.full((m,), -jnp.inf) if u_low is None else u_low
        hi = jnp.full((m,), jnp.inf) if u_high is None else u_high
        return _host(_closed_loop, ((A, T + 1, n), (A, T, m)), self.handle, x_bar, u_bar, k, K, alphas, lo, hi)

    def jacobians(self, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        (T, m), n = u.shape, self.state_dim
        return _host(lambda model, x, u: model.linearize(x, u, eps=self.fd_eps), ((T, n, n), (T, n, m)), self.handle, x, u)


_listeners: list[Callable[..., None]] = []


def _report(i: jax.Array, cost: jax.Array, mu: jax.Array, alpha: jax.Array, success: jax.Array) -> None:
    for listener in _listeners:
        listener(i, cost, mu, alpha, success)


@contextmanager
def _listening(on_iteration: Callable[[dict], None] | None) -> Iterator[None]:
    """Send the solve's per-iteration reports to on_iteration as dicts, with the seconds since the
    previous report (one compiled solve serves every listener)."""
    if on_iteration is None:
        yield
        return
    last = [time.perf_counter()]

    def listener(i: jax.Array, cost: jax.Array, mu: jax.Array, alpha: jax.Array, success: jax.Array) -> None:
        now = time.perf_counter()
        on_iteration({"iteration": int(i), "cost": float(cost), "mu": float(mu), "alpha": float(alpha),
                      "seconds": now - last[0], "derivatives": bool(success)})
        last[0] = now

    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@dataclass(frozen=True)
class _CostFn:
    """A cost function split into what keys the compiled solve and what is passed to it: a method
    of a pytree (`LocomotionCost.running`, `.terminal`, `.healthy`) into the tree's structure and
    the method's name (static) and the tree's array leaves (traced; a terrain's ground profile);
    any other function whole (static)."""

    fn: Callable | None = None
    treedef: Any = None
    name: str = ""

    @staticmethod
    def split(fn: Callable) -> tuple[_CostFn, tuple]:
        owner = getattr(fn, "__self__", None)
        if owner is not None:
            leaves, treedef = jax.tree.flatten(owner)
            if not jax.tree_util.treedef_is_leaf(treedef) and all(isinstance(a, (np.ndarray, jax.Array)) for a in leaves):
                return _CostFn(treedef=treedef, name=fn.__name__), tuple(leaves)
        return _CostFn(fn), ()

    def bind(self, leaves: tuple) -> Callable:
        return self.fn if self.fn is not None else getattr(jax.tree.unflatten(self.treedef, leaves), self.name)


@lru_cache(maxsize=16)
def _compiled(running: _CostFn, terminal: _CostFn, valid: _CostFn | None, extra: Callable | None, config: ILQRConfig,
              fd_eps: float, step_sizes_per_pass: int):
    """The jitted solve: l(x, u) + extra(args, x, u) with args an argument (a GPS iteration's new
    policy parameters reuse it), the model's handle and the costs' leaves arguments too."""

    def solve(handle: jax.Array, x0: jax.Array, u: jax.Array, lo: jax.Array, hi: jax.Array, leaves: tuple, args: Any) -> Solution:
        dynamics = MujocoDynamics(handle, x0.shape[-1], fd_eps, step_sizes_per_pass)
        base = running.bind(leaves[0])

        def total(x: jax.Array, u: jax.Array) -> jax.Array:
            value = base(x, u)
            return value if extra is None else value + extra(args, x, u)

        check = None if valid is None else valid.bind(leaves[2])
        return solve_model(dynamics, total, terminal.bind(leaves[1]), x0, u, lo, hi, config, check, _report)

    return jax.jit(solve)


def solve_mujoco(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray,
    config: ILQRConfig = ILQRConfig(), on_iteration: Callable[[dict], None] | None = None, fd_eps: float = 1e-3,
    valid: Valid | None = None, extra: tuple[Callable, Any] | None = None,
) -> Solution:
    """iLQR from open-loop controls u_init[T, m] on the MuJoCo model; float64 throughout.

    fd_eps is the finite-difference step of the Jacobians. 1e-3 rather than the ~1e-6 that is
    most accurate on smooth dynamics: the wider step averages over contact and joint-limit
    switches, where 1e-6 gives spurious derivatives and the line search stalls (measured: Walker2d
    at horizon 150 stalled at cost 669 with 1e-6 and 1e-4, and reached 64 with 1e-3).

    valid (a state predicate, e.g. `LocomotionCost.healthy`) keeps the line search from accepting
    a step that leaves the valid set sooner (see `ilqr.valid_prefix`).

    extra = (fn, args) adds fn(args, x, u) to the running cost (GPS's policy term); a new args
    reuses the compiled solve.

    on_iteration gets, per iteration, the iteration number, cost, mu, accepted step size (0:
    rejected), seconds since the previous iteration and whether the derivatives were recomputed.
    """
    (run_key, run_leaves), (term_key, term_leaves) = _CostFn.split(running), _CostFn.split(terminal)
    valid_key, valid_leaves = (None, ()) if valid is None else _CostFn.split(valid)
    fn_args = (None, ()) if extra is None else extra
    key = (run_key, term_key, valid_key, fn_args[0], config, fd_eps, len(line_search_alphas(config.line_search_steps)))
    with jax.enable_x64(True):
        try:
            fn = _compiled(*key)
        except TypeError:  # unhashable cost functions
            fn = _compiled.__wrapped__(*key)
        with _listening(on_iteration):  # held until the solve is done: its reports, and the model registered
            return jax.block_until_ready(fn(_register(model), jnp.asarray(x0, jnp.float64), jnp.asarray(u_init, jnp.float64),
                                            model.u_low, model.u_high, (run_leaves, term_leaves, valid_leaves), fn_args[1]))


def receding_start(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray, valid: Valid | None,
    config: RecedingConfig = RecedingConfig(), fd_eps: float = 1e-3, extra: tuple[Callable, Any] | None = None,
    on_window: Callable[[dict], None] | None = None, start: int = 0,
) -> np.ndarray:
    """`receding.receding_horizon_controls` with each window solved by `solve_mujoco` (valid in its
    line search): the controls a walker's full-horizon solve starts from. With `start`, u_init's
    first `start` controls are kept and the windows begin at the state they reach from x0."""

    def window(x: np.ndarray, u: np.ndarray, iterations: int) -> Solution:
        return solve_mujoco(model, running, terminal, x, u, ILQRConfig(max_iterations=iterations), fd_eps=fd_eps, valid=valid, extra=extra)

    x_start = model.rollout(np.asarray(x0, np.float64), np.asarray(u_init[:start], np.float64))[-1]
    return receding_horizon_controls(window, x_start, u_init, config, on_window, start)


def repair_start(
    model: MujocoModel, running: Callable, terminal: Callable, x0: np.ndarray, u_init: np.ndarray, valid: Valid,
    config: RecedingConfig = RecedingConfig(), fd_eps: float = 1e-3, extra: tuple[Callable, Any] | None = None,
    on_window: Callable[[dict], None] | None = None,
) -> np.ndarray:
    """u_init if its open-loop rollout from x0 stays valid over the whole horizon; else u_init
    repaired by receding-horizon windows from one window before the first invalid state (an
    example motion that falls part way: iLQR over the whole horizon cannot lift a fallen plan,
    README "iLQR that holds on contact-rich robots"); on_window as in `receding_start`."""
    ok = int(valid_prefix(valid, jnp.asarray(model.rollout(np.asarray(x0, np.float64), np.asarray(u_init, np.float64)))))
    if ok > len(u_init):
        return np.asarray(u_init, np.float64)
    return receding_start(model, running, terminal, x0, u_init, valid, config, fd_eps, extra, on_window, start=max(0, ok - config.window))
